"""The rules of a custom-list CSV and their messages, shared by every import path.

A file has one identifier column (mobile, email or external id) and value columns, each
mapped to a cycle of the milestone (its period name, or the shorthand "P1".."Pn") or to
"do_not_import". A blank value cell means "use the target's default" for that cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from milestones.models import TargetGroup, TargetValueMode

from ..identifiers import IDENTIFIER_TYPES

DO_NOT_IMPORT = "do_not_import"
VALUE_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"
_VALUE_RE = re.compile(VALUE_PATTERN)
MAX_VALUE = Decimal("1e14")
QUANTUM = Decimal("0.0001")
OTHER_DELIMITERS = (";", "\t", "|")


def max_bytes() -> int:
    return int(getattr(settings, "CSV_UPLOAD_MAX_BYTES", 25 * 1024 * 1024))


@dataclass(frozen=True)
class RowError:
    row: int  # the file's line number (the header is row 1); 0 for the whole file
    column: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


class FileRefused(Exception):
    """The file cannot be imported at all (size, encoding, header, mapping)."""

    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


class RowsRefused(Exception):
    """Rows of a synchronous upload are bad: `errors` [{"row", "column", "message"}]."""

    def __init__(self, errors: list[dict], count: int):
        super().__init__(f"{count} problems in the file")
        self.errors = errors
        self.count = count


@dataclass(frozen=True)
class ValueColumn:
    index: int
    name: str
    ordinal: int


@dataclass
class ImportSpec:
    identifier_type: str
    identifier_column: str
    identifier_index: int
    columns: int
    value_columns: list[ValueColumn] = field(default_factory=list)


# --- messages ----------------------------------------------------------------------------------


def msg_too_big(size: int) -> str:
    limit = max_bytes() // (1024 * 1024)
    return f"The file is {size / 1024 / 1024:.1f} MB: files over {limit} MB are refused."


MSG_EMPTY = "The file is empty."
MSG_NO_ROWS = "The file has a header row but no customer rows."
MSG_UTF16 = "The file is UTF-16 text: save it as CSV UTF-8 (comma-separated)."
MSG_NUL = "This line has NUL bytes: the file is not CSV text (save it as CSV UTF-8)."
MSG_ENCODING = "This row is not UTF-8 text: save the file as CSV UTF-8 (comma-separated)."


def msg_columns(found: int, expected: int) -> str:
    return (
        f"This row has {found} columns where the header has {expected}: "
        "check the delimiter (commas) and quoting."
    )


def msg_duplicate(kind: str, value: str, first_row: int) -> str:
    return (
        f"The customer with {kind} {value} is already in row {first_row}: "
        "each customer may appear once in a file."
    )


def msg_unknown(kind: str, value: str) -> str:
    return f"No customer with {kind} {value} in this organisation."


def value_error(raw: str) -> str | None:
    """The message for a bad value cell, or None when it is valid (blank is valid)."""
    text = raw.strip()
    if text == "":
        return None
    if not _VALUE_RE.match(text):
        return f"{raw!r} is not a number."
    number = Decimal(text)
    if number < 0:
        return f"{raw!r} is negative: target values cannot be negative."
    if number >= MAX_VALUE:
        return f"{raw!r} is too large: target values are below 100,000,000,000,000."
    if number != number.quantize(QUANTUM):
        return f"{raw!r} has more than 4 decimal places."
    return None


def parse_value(raw: str) -> Decimal | None:
    """A valid cell's value; None for a blank cell (the default applies)."""
    text = raw.strip()
    return Decimal(text).quantize(QUANTUM) if text else None


# --- cycles and the header ---------------------------------------------------------------------


def cycle_keys(group: TargetGroup) -> tuple[dict[str, int], int]:
    """Accepted mapping values (lower-cased) -> cycle ordinal, and the number of cycles."""
    keys: dict[str, int] = {}
    periods = list(group.periods.order_by("ordinal").values_list("ordinal", "name"))
    count = len(periods) if group.has_fixed_periods else int(group.cycle_count or 0)
    for ordinal, name in periods:
        keys[name.strip().lower()] = ordinal
    for n in range(1, count + 1):
        keys.setdefault(f"p{n}", n)
    return keys, count


def _cycle_hint(count: int) -> str:
    if count <= 0:
        return "this milestone has no cycles"
    return "P1" if count == 1 else f"P1..P{count}"


def detect_delimiter(header_line: str) -> str | None:
    """A delimiter other than a comma that the header seems to use, if any."""
    if "," in header_line:
        return None
    for delimiter in OTHER_DELIMITERS:
        if delimiter in header_line:
            return delimiter
    return None


def _unescape(name: str) -> str:
    from common.csv_safe import FORMULA_STARTS

    return name[1:] if name.startswith("'") and name[1:].startswith(FORMULA_STARTS) else name


def column_names(header: list[str]) -> list[str]:
    """The header's column names as the rules and their messages name them (trimmed; a
    sample CSV's escaped formula-like period name `'=x` read back as `=x`)."""
    return [_unescape(h.strip()) for h in header]


def resolve_header(
    *,
    group: TargetGroup,
    header: list[str],
    identifier_type: str,
    identifier_column: str | None,
    mapping: dict | None,
) -> ImportSpec:
    """Check the header against the configurer's choices; raise FileRefused listing every problem."""
    errors: list[RowError] = []

    def refuse(column: str, message: str) -> None:
        errors.append(RowError(1, column, message))

    # a sample CSV escapes a formula-like period name as '=x (common.csv_safe): read back
    names = column_names(header)
    if identifier_type not in IDENTIFIER_TYPES:
        refuse(
            "", f"Unknown identifier type {identifier_type!r}: use mobile, email or external_id."
        )
        raise FileRefused(errors)
    if len(names) == 1:
        delimiter = detect_delimiter(header[0])
        if delimiter is not None:
            shown = {"\t": "tabs"}.get(delimiter, repr(delimiter))
            refuse(
                "",
                f"The header is one column {header[0]!r}: the file seems to be separated by "
                f"{shown}; save it as comma-separated CSV.",
            )
            raise FileRefused(errors)
    if all(n == "" for n in names):
        refuse("", "The header row is empty: the first row must name the columns.")
        raise FileRefused(errors)
    seen: set[str] = set()
    for n in names:
        if n in seen:
            refuse(n, f"The column {n!r} appears twice in the header.")
        seen.add(n)
    id_column = (identifier_column or identifier_type).strip()
    if id_column not in names:
        refuse(
            id_column,
            f"The identifier column {id_column!r} is not in the file (its columns: "
            f"{', '.join(names)}).",
        )
    keys, count = cycle_keys(group)
    mapping = {str(k).strip(): v for k, v in (mapping or {}).items()}
    value_columns: list[ValueColumn] = []
    used: dict[int, str] = {}
    for column in mapping:
        if column not in names:
            refuse(column, f"The mapping names the column {column!r}, which is not in the file.")
    per_customer = group.target_value_mode == TargetValueMode.PER_CUSTOMER
    for index, name in enumerate(names):
        if name == id_column:
            if name in mapping and str(mapping[name]).strip().lower() != DO_NOT_IMPORT:
                refuse(name, "The identifier column cannot also be a cycle's value column.")
            continue
        if name in mapping:
            target = str(mapping[name] if mapping[name] is not None else "").strip()
            if target.lower().replace(" ", "_") == DO_NOT_IMPORT:
                continue
            ordinal = keys.get(target.lower())
            if ordinal is None:
                refuse(
                    name,
                    f"The column {name!r} is mapped to {target!r}, which is not a cycle of this "
                    f"milestone: use {_cycle_hint(count)}, a period's name, or do_not_import.",
                )
                continue
        else:
            ordinal = keys.get(name.lower())
            if ordinal is None:
                refuse(
                    name,
                    f"The column {name!r} is not mapped: map it to a cycle "
                    f"({_cycle_hint(count)}) or to do_not_import.",
                )
                continue
        if ordinal in used:
            refuse(
                name,
                f"The columns {used[ordinal]!r} and {name!r} are both mapped to cycle P{ordinal}.",
            )
            continue
        used[ordinal] = name
        value_columns.append(ValueColumn(index, name, ordinal))
    if value_columns and not per_customer:
        refuse(
            value_columns[0].name,
            "This milestone has the same target for all customers: map the value columns to "
            "do_not_import, or create the milestone with per-customer targets.",
        )
    if errors:
        raise FileRefused(errors)
    return ImportSpec(
        identifier_type=identifier_type,
        identifier_column=id_column,
        identifier_index=names.index(id_column),
        columns=len(names),
        value_columns=value_columns,
    )


def identifier_check(kind: str, raw: str, *, country: str = "") -> tuple[str | None, str | None]:
    """(the identifier in its stored form, None) for a valid cell, (None, why) for a bad one
    (`country`: the organisation's, see enrolment.identifiers). One normalisation per cell:
    a mobile read by `phonenumbers` is most of a row's cost."""
    from ..identifiers import IdentifierError, normalise, visible_text

    if visible_text(raw) == "":  # blank, or only invisible characters
        return None, f"The {kind.replace('_', ' ')} is missing."
    try:
        return normalise(kind, raw, country=country), None
    except IdentifierError as exc:
        return None, str(exc)


def identifier_error(kind: str, raw: str, *, country: str = "") -> str | None:
    """The message for a bad identifier cell, or None when it is valid."""
    return identifier_check(kind, raw, country=country)[1]
