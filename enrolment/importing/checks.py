"""Row checks in Python (the SQL path flags the same rows and asks these functions for the
messages, so both report the same words)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from itertools import islice

from milestones.models import Organisation

from ..identifiers import country_of
from ..models import Customer
from .reader import CsvStream, Row
from .spec import (
    ImportSpec,
    RowError,
    identifier_check,
    msg_columns,
    msg_duplicate,
    msg_unknown,
    parse_value,
    resolve_header,
    value_error,
)

CheckedRow = tuple[int, str | None, dict[int, Decimal | None] | None, list[RowError]]


def batched(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


@contextmanager
def job_rows(job) -> Iterator[tuple[ImportSpec, Iterator[Row]]]:
    """An import's stored file, opened once by either backend: its header checked against the
    job's options (raises FileRefused) and its data rows streamed; closed on the way out."""
    job.file.open("rb")
    try:
        header, rows = CsvStream(job.file.file if hasattr(job.file, "file") else job.file).open()
        spec = resolve_header(
            group=job.target_group,
            header=header,
            identifier_type=job.identifier_type,
            identifier_column=job.identifier_column or None,
            mapping=job.mapping,
        )
        yield spec, rows
    finally:
        job.file.close()


class ErrorSink:
    """Keeps the first `cap` errors and counts them all."""

    def __init__(self, cap: int):
        self.cap = cap
        self.items: list[dict] = []
        self.count = 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.items) < self.cap:
            item = error.as_dict()
            for key in ("column", "message"):  # PostgreSQL's jsonb cannot hold a NUL
                item[key] = item[key].replace("\x00", "\\x00")
            self.items.append(item)


class RowChecker:
    def __init__(self, *, organisation_id: int, spec: ImportSpec, create_customers: bool):
        self.organisation_id = organisation_id
        self.spec = spec
        self.create_customers = create_customers
        self.first_row: dict[str, int] = {}
        # identifiers are read in the organisation's country (mobiles in E.164 with one)
        self.country = country_of(Organisation.objects.filter(pk=organisation_id).first())

    def check(self, batch: list[Row]) -> list[CheckedRow]:
        spec = self.spec
        kind, id_col = spec.identifier_type, spec.identifier_column
        out: list[CheckedRow] = []
        for rowno, cells, problem in batch:
            if problem is None and len(cells) != spec.columns:
                problem = msg_columns(len(cells), spec.columns)
            if problem is not None:
                out.append((rowno, None, None, [RowError(rowno, "", problem)]))
                continue
            errors: list[RowError] = []
            ident, message = identifier_check(
                kind, cells[spec.identifier_index], country=self.country
            )
            if message:
                errors.append(RowError(rowno, id_col, message))
            values: dict[int, Decimal | None] = {}
            for col in spec.value_columns:
                raw = cells[col.index]
                message = value_error(raw)
                if message:
                    errors.append(RowError(rowno, col.name, message))
                else:
                    values[col.ordinal] = parse_value(raw)
            if ident is not None:
                first = self.first_row.get(ident)
                if first is not None:
                    errors.append(RowError(rowno, id_col, msg_duplicate(kind, ident, first)))
                    ident = None
                else:
                    self.first_row[ident] = rowno
            out.append((rowno, ident, values, errors))
        if not self.create_customers:
            wanted = [ident for _, ident, _, _ in out if ident is not None]
            known = set(
                Customer.objects.filter(
                    organisation_id=self.organisation_id, **{f"{kind}__in": wanted}
                ).values_list(kind, flat=True)
            )
            for rowno, ident, _, errors in out:
                if ident is not None and ident not in known:
                    errors.append(RowError(rowno, id_col, msg_unknown(kind, ident)))
        return out
