"""What a custom-list upload will do, read before anything is written.

The care upload page (`membercare/views.py`) walks a configurer through the reference's
steps: upload the file, map each column (to the customer identifier, to a cycle of the
milestone's targets, or "Do not import"), preview, confirm. This module is the reading side of
those steps; confirming hands the file to `jobs.import_job_create` like every other upload.

- `file_sample`: the header and the first rows of an uploaded file (a file that is not CSV
  text, or has no customer rows, is refused with the reason).
- `cycle_choices` / `guess_mapping`: what a column can be mapped to, and a first guess from
  the headers (identifier names, period names, "P1".."Pn") and the first rows.
- `import_preview`: the file read with a mapping, as the import will read it (the same
  `spec` rules and `RowChecker`): rows, new customers, problems by row and column, and the
  first rows. It writes nothing.
- `job_problems`: a finished import's stored problems with the cell each one names, read
  back from the job's file, so a failure says what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from common.numbers import grouped
from milestones.models import TargetGroup, TargetValueMode

from ..identifiers import IDENTIFIER_TYPES
from ..models import Customer, ImportJob
from .checks import RowChecker, batched
from .reader import CsvStream
from .spec import (
    DO_NOT_IMPORT,
    MSG_NO_ROWS,
    FileRefused,
    ImportSpec,
    RowError,
    column_names,
    cycle_keys,
    resolve_header,
    value_error,
)

IDENTIFIER = "identifier"  # a mapping choice: this column identifies the customer
# A preview checks this many rows in full (identifiers normalised, values parsed, customers
# looked up; a mobile read in the organisation's country costs ~0.1 ms) and counts the rest:
# the import itself checks every row.
PREVIEW_CHECK_ROWS = 10_000
FIRST_ROWS = 10
MAX_PROBLEMS = 200
CHUNK = 2000

IDENTIFIER_LABELS = {"mobile": "Mobile", "email": "Email", "external_id": "External id"}
_HEADER_NAMES = {
    "mobile": {"mobile", "mobile number", "mobile no", "mobileno", "phone", "phone number",
               "msisdn", "cell", "mobile phone"},
    "email": {"email", "e mail", "email address", "email id", "mail"},
    "external_id": {"external id", "externalid", "customer id", "customerid", "external customer id",
                    "customer external id"},
}  # fmt: skip
_CYCLE_WORDS = re.compile(r"^(?:p|cycle|period)\s*(\d+)$")


def _header_key(name: str) -> str:
    return " ".join(re.sub(r"[_\-.]+", " ", name.strip().lower()).split())


# --- the file ---------------------------------------------------------------------------------


@dataclass
class FileSample:
    header: list[str]  # the column names as the rules name them (spec.column_names)
    rows: list[list[str]]  # the first rows' cells (rows the reader could split)
    raw_header: list[str] = field(default_factory=list)  # as in the file (resolve_header's)


def file_sample(binary_file, *, rows: int = 3) -> FileSample:
    """The header and the first `rows` data rows; FileRefused when the file is not CSV text
    (UTF-16, NUL bytes, not UTF-8 in the header) or has no customer rows."""
    header, stream = CsvStream(binary_file).open()
    sample: list[list[str]] = []
    seen = 0
    for _, cells, _ in stream:
        seen += 1
        if cells is not None:
            sample.append(cells)
        if len(sample) >= rows:
            break
    if not seen:
        raise FileRefused([RowError(0, "", MSG_NO_ROWS)])
    return FileSample(header=column_names(header), rows=sample, raw_header=header)


# --- the mapping step -------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleChoice:
    key: str  # the mapping's value: "P1"
    ordinal: int
    label: str  # "P1 · January (01 Jan 2026 – 31 Jan 2026)"


def cycle_choices(group: TargetGroup) -> list[CycleChoice]:
    """The cycles a value column can be mapped to, by name and dates (calendar dates of the
    organisation's time zone); none when the milestone has the same target for everyone."""
    if group.target_value_mode != TargetValueMode.PER_CUSTOMER:
        return []
    _, count = cycle_keys(group)
    periods = {p.ordinal: p for p in group.periods.order_by("ordinal")}
    out = []
    for n in range(1, count + 1):
        period = periods.get(n)
        if period is not None:
            label = f"P{n} · {period.name} ({period.start:%d %b %Y} – {period.end:%d %b %Y})"
        else:
            label = f"P{n} · cycle {n} (its dates start at each customer's first activity)"
        out.append(CycleChoice(f"P{n}", n, label))
    return out


def target_names(group: TargetGroup) -> str:
    """The targets a cycle's value sets: every target of the milestone (a value applies to
    each, `services.custom_list_rows_apply`): "Litres", "Spend and Visits"."""
    names = [t.name for t in group.targets.order_by("ordinal", "id")]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def targets_label(group: TargetGroup) -> str:
    """The heading of the cycles in a column's select."""
    several = group.targets.count() > 1
    return f"Target value of {target_names(group)}{' (one value sets each)' if several else ''}"


def _looks_numeric(values: list[str]) -> bool:
    """At least half the filled cells are numbers: a typo in a value column still maps it
    (the preview then shows the bad cell) rather than leaving the column out unseen."""
    filled = [v for v in values if v.strip()]
    numbers = sum(1 for v in filled if value_error(v) is None)
    return bool(filled) and numbers * 2 >= len(filled)


def _identifier_kind_of(values: list[str]) -> str | None:
    filled = [v.strip() for v in values if v.strip()]
    if not filled:
        return None
    if all("@" in v for v in filled):
        return "email"
    if all(re.fullmatch(r"\+?[\d\s\-().]{6,20}", v) for v in filled):
        return "mobile"
    return None


def guess_mapping(
    *, group: TargetGroup, header: list[str], rows: list[list[str]]
) -> tuple[str, dict[str, str]]:
    """(identifier type, {column: IDENTIFIER | "P1".."Pn" | DO_NOT_IMPORT}) guessed from the
    header and the first rows: a column named like an identifier identifies the customer
    (else the first column); a column named like a cycle (its period's name, "P2", "Cycle 2")
    takes it; other numeric columns take the next free cycles in order; the rest, and any
    column past the milestone's cycles, are not imported (as the reference's note asks)."""

    def column(index: int) -> list[str]:
        return [r[index] for r in rows if index < len(r)]

    keys = [_header_key(h) for h in header]
    id_index, kind = None, None
    for index, key in enumerate(keys):
        kind = next((k for k, names in _HEADER_NAMES.items() if key in names), None)
        if kind is not None:
            id_index = index
            break
    if id_index is None and header:
        id_index = 0
        kind = _identifier_kind_of(column(0))
    kind = kind or "mobile"

    choices = {c.ordinal: c.key for c in cycle_choices(group)}
    by_name, _ = cycle_keys(group)
    mapping: dict[str, str] = {}
    taken: set[int] = set()
    pending: list[int] = []
    for index, name in enumerate(header):
        if index == id_index:
            mapping[name] = IDENTIFIER
            continue
        match = _CYCLE_WORDS.match(keys[index])
        ordinal = by_name.get(name.strip().lower()) or (int(match.group(1)) if match else None)
        if ordinal in choices and ordinal not in taken:
            mapping[name] = choices[ordinal]
            taken.add(ordinal)
        else:
            mapping[name] = DO_NOT_IMPORT
            if _looks_numeric(column(index)):
                pending.append(index)
    free = (n for n in sorted(choices) if n not in taken)
    for index in pending:
        ordinal = next(free, None)
        if ordinal is None:
            break
        mapping[header[index]] = choices[ordinal]
    return kind, mapping


# --- the preview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    row: int  # the file's line (the header is row 1); 0 for the whole file
    column: str  # "" for the whole row
    value: str  # the cell as written ("" when the problem is the row's shape)
    message: str


@dataclass
class PreviewRow:
    row: int
    identifier: str  # in its stored form; the cell as written when it is bad
    state: str  # "new" | "existing" | "problem"
    values: list[str]  # one per value column, as read ("" for a blank: the default applies)
    problems: dict[str, str]  # column ("" for the row) -> why


@dataclass
class ImportPreview:
    spec: ImportSpec
    rows: int = 0  # customer rows in the file (blank lines are not rows)
    checked: int = 0  # rows checked in full (all of them, up to PREVIEW_CHECK_ROWS)
    new_customers: int = 0
    existing_customers: int = 0
    bad_rows: int = 0
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS
    first_rows: list[PreviewRow] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.checked == self.rows

    @property
    def good_rows(self) -> int:
        return self.checked - self.bad_rows


def _shown(value: Decimal | None) -> str:
    return "" if value is None else grouped(value)


def _cell_of(spec: ImportSpec, cells: list[str] | None, column: str) -> str:
    if not cells:
        return ""
    if column == spec.identifier_column:
        return cells[spec.identifier_index] if spec.identifier_index < len(cells) else ""
    for col in spec.value_columns:
        if col.name == column:
            return cells[col.index] if col.index < len(cells) else ""
    return ", ".join(cells)[:200]  # the row's own problem (its shape): show what was read


def import_preview(
    *,
    target_group: TargetGroup,
    binary_file,
    identifier_type: str,
    identifier_column: str,
    mapping: dict,
    create_customers: bool = True,
    check_rows: int | None = None,
) -> ImportPreview:
    """The file read with this mapping, as the import would read it; nothing is written.
    Checks the first `check_rows` rows (PREVIEW_CHECK_ROWS) and counts the others. Raises
    FileRefused (with every header problem) when the import would refuse the file."""
    if check_rows is None:
        check_rows = PREVIEW_CHECK_ROWS
    header, stream = CsvStream(binary_file).open()
    spec = resolve_header(
        group=target_group,
        header=header,
        identifier_type=identifier_type,
        identifier_column=identifier_column or None,
        mapping=mapping,
    )
    org_id = target_group.organisation_id
    checker = RowChecker(organisation_id=org_id, spec=spec, create_customers=create_customers)
    kind = spec.identifier_type
    out = ImportPreview(spec=spec)
    for batch in batched(stream, CHUNK):
        out.rows += len(batch)
        room = max(0, check_rows - out.checked)
        batch = batch[:room]
        if not batch:
            continue  # past the rows checked here: counted only
        out.checked += len(batch)
        checked = checker.check(batch)
        known: set[str] = set()
        if create_customers:
            wanted = [ident for _, ident, _, errors in checked if ident and not errors]
            known = set(
                Customer.objects.filter(
                    organisation_id=org_id, **{f"{kind}__in": wanted}
                ).values_list(kind, flat=True)
            )
        for (rowno, ident, values, errors), (_, cells, _) in zip(checked, batch, strict=True):
            if errors:
                out.bad_rows += 1
                state = "problem"
                for error in errors:
                    out.problem_count += 1
                    if len(out.problems) < MAX_PROBLEMS:
                        value = _cell_of(spec, cells, error.column)
                        out.problems.append(Problem(rowno, error.column, value, error.message))
            elif create_customers and ident not in known:
                out.new_customers += 1
                state = "new"
            else:
                out.existing_customers += 1
                state = "existing"
            if len(out.first_rows) < FIRST_ROWS:
                out.first_rows.append(
                    PreviewRow(
                        row=rowno,
                        identifier=ident or _cell_of(spec, cells, spec.identifier_column),
                        state=state,
                        values=[
                            _shown((values or {}).get(c.ordinal))
                            if values is not None and c.ordinal in values
                            else _cell_of(spec, cells, c.name)
                            for c in spec.value_columns
                        ],
                        problems={e.column: e.message for e in errors},
                    )
                )
    if out.rows == 0:
        raise FileRefused([RowError(0, "", MSG_NO_ROWS)])
    return out


# --- a finished import's problems -------------------------------------------------------------


def job_problems(job: ImportJob, *, limit: int = 50) -> list[Problem]:
    """The first `limit` problems an import stored, each with the cell it names read back
    from the import's file (a file that cannot be read back leaves the values blank)."""
    errors = [e for e in (job.errors or [])[:limit] if isinstance(e, dict)]
    wanted = {int(e.get("row") or 0) for e in errors if int(e.get("row") or 0) >= 2}
    cells_of: dict[int, list[str]] = {}
    names: list[str] = []
    if wanted and job.file:
        try:
            job.file.open("rb")
            try:
                handle = job.file.file if hasattr(job.file, "file") else job.file
                header, stream = CsvStream(handle).open()
                names = column_names(header)
                last = max(wanted)
                for rowno, cells, _ in stream:
                    if rowno in wanted and cells is not None:
                        cells_of[rowno] = cells
                    if rowno >= last:
                        break
            finally:
                job.file.close()
        except (FileRefused, OSError, ValueError):
            cells_of = {}
    out = []
    for error in errors:
        row, column = int(error.get("row") or 0), str(error.get("column") or "")
        cells = cells_of.get(row)
        value = ""
        if cells is not None:
            if column in names and names.index(column) < len(cells):
                value = cells[names.index(column)]
            elif not column:
                value = ", ".join(cells)[:200]
        out.append(Problem(row, column, value, str(error.get("message") or "")))
    return out


def identifier_choices() -> list[tuple[str, str]]:
    return [(k, IDENTIFIER_LABELS.get(k, k)) for k in IDENTIFIER_TYPES]
