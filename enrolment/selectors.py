"""Reads about customers and enrolment that tracking and the API share."""

from decimal import Decimal

from django.db.models import Q

from .identifiers import IDENTIFIER_TYPES, IdentifierError, country_of, normalise
from .models import Customer, CustomerTargetValue

LOOKUP_CHUNK = 2000


def customer_lookup(*, organisation, identifiers: dict) -> Customer | None:
    """The customer matching any given identifier (mobile, email, external_id), or None.

    Raises IdentifierError for a malformed identifier or when none is given.
    """
    given = {
        k: v
        for k, v in (identifiers or {}).items()
        if k in IDENTIFIER_TYPES and v not in (None, "")
    }
    if not given:
        raise IdentifierError("Identify the customer by mobile, email or external_id.")
    country = country_of(organisation)
    for kind in IDENTIFIER_TYPES:
        if kind in given:
            value = normalise(kind, given[kind], country=country)
            customer = Customer.objects.filter(organisation=organisation, **{kind: value}).first()
            if customer is not None:
                return customer
    return None


def customers_lookup_many(*, organisation, items: list) -> tuple[list[int], list[str]]:
    """`customer_lookup` for a list of identifier objects at once (audience lists): one
    query per identifier type and chunk, not one per item.

    Returns (customer ids in the items' order, one "Item n: ..." message per item that is
    malformed or names no customer of this organisation).
    """
    wanted: list[dict[str, str] | None] = []
    errors: list[str] = []
    country = country_of(organisation)
    for i, item in enumerate(items, start=1):
        given = {
            k: v
            for k, v in (item.items() if isinstance(item, dict) else ())
            if k in IDENTIFIER_TYPES and v not in (None, "")
        }
        try:
            if not given:
                raise IdentifierError("Identify the customer by mobile, email or external_id.")
            wanted.append({k: normalise(k, v, country=country) for k, v in given.items()})
        except IdentifierError as exc:
            errors.append(f"Item {i}: {exc}")
            wanted.append(None)
    found: dict[str, dict[str, int]] = {}
    for kind in IDENTIFIER_TYPES:
        values = sorted({w[kind] for w in wanted if w and kind in w})
        found[kind] = {}
        for start in range(0, len(values), LOOKUP_CHUNK):
            found[kind].update(
                Customer.objects.filter(
                    organisation=organisation,
                    **{f"{kind}__in": values[start : start + LOOKUP_CHUNK]},
                ).values_list(kind, "id")
            )
    ids: list[int] = []
    for i, w in enumerate(wanted, start=1):
        if w is None:
            continue
        # the first identifier type, in IDENTIFIER_TYPES order, that names a customer
        match = next((found[k][w[k]] for k in IDENTIFIER_TYPES if w.get(k) in found[k]), None)
        if match is None:
            errors.append(f"Item {i}: no such customer in this organisation.")
        else:
            ids.append(match)
    errors.sort(key=lambda message: int(message.split(":", 1)[0].removeprefix("Item ")))
    return ids, errors


def customers_find(*, organisation, query: str, kind: str = "any", limit: int = 20) -> list:
    """Member care's search: an exact match on the stored form of the query read as a
    mobile, an email or an external id (`kind`, or "any" of them), so "+91 90000 00002",
    "09000000002" and "9000000002" find the same customer. One query."""
    kinds = IDENTIFIER_TYPES if kind == "any" else (kind,)
    country = country_of(organisation)
    condition = Q()
    for k in kinds:
        try:
            condition |= Q(**{k: normalise(k, query, country=country)})
        except IdentifierError:
            continue
    if not condition:
        return []
    return list(
        Customer.objects.filter(condition, organisation=organisation).order_by("id")[:limit]
    )


def target_value_for(*, target, customer_id: int, cycle_ordinal: int) -> Decimal:
    """The customer's own value for the cycle, else the target's per-cycle value, else its default."""
    row = (
        CustomerTargetValue.objects.filter(
            target=target, customer_id=customer_id, cycle_ordinal=cycle_ordinal
        )
        .values_list("value", flat=True)
        .first()
    )
    return row if row is not None else target.value_for_cycle(cycle_ordinal)


def audience_list_identifiers(
    *, organisation, file, identifier_type: str, identifier_column: str, skip_bad_rows: bool
) -> list[int]:
    """Customer ids of an audience list CSV (an identifier column; other columns ignored).

    Malformed or unknown identifiers and duplicates are reported by row (RowsRefused with
    [{"row", "column", "message"}]) unless `skip_bad_rows`.
    """
    from .importing.checks import ErrorSink, batched
    from .importing.reader import CsvStream
    from .importing.spec import (
        MSG_NO_ROWS,
        FileRefused,
        RowError,
        RowsRefused,
        identifier_error,
        max_bytes,
        msg_duplicate,
        msg_too_big,
        msg_unknown,
    )

    sink = ErrorSink(1000)
    ids: list[int] = []
    country = country_of(organisation)
    try:
        if (getattr(file, "size", 0) or 0) > max_bytes():
            raise FileRefused([RowError(0, "", msg_too_big(file.size))])
        file.seek(0)
        header, rows = CsvStream(file).open()
        names = [h.strip() for h in header]
        if identifier_column not in names:
            raise FileRefused(
                [
                    RowError(
                        1,
                        identifier_column,
                        f"The identifier column {identifier_column!r} is not in the file "
                        f"(its columns: {', '.join(names)}).",
                    )
                ]
            )
        index = names.index(identifier_column)
        first: dict[str, int] = {}
        total = 0
        for batch in batched(rows, 2000):
            good: list[tuple[int, str]] = []
            found: list[RowError] = []
            for rowno, cells, problem in batch:
                total += 1
                if problem is not None or index >= len(cells):
                    found.append(RowError(rowno, "", problem or "This row has no identifier cell."))
                    continue
                message = identifier_error(identifier_type, cells[index], country=country)
                if message:
                    found.append(RowError(rowno, identifier_column, message))
                    continue
                value = normalise(identifier_type, cells[index], country=country)
                if value in first:
                    found.append(
                        RowError(
                            rowno,
                            identifier_column,
                            msg_duplicate(identifier_type, value, first[value]),
                        )
                    )
                    continue
                first[value] = rowno
                good.append((rowno, value))
            known = dict(
                Customer.objects.filter(
                    organisation=organisation,
                    **{f"{identifier_type}__in": [v for _, v in good]},
                ).values_list(identifier_type, "id")
            )
            for rowno, value in good:
                if value in known:
                    ids.append(known[value])
                else:
                    found.append(
                        RowError(rowno, identifier_column, msg_unknown(identifier_type, value))
                    )
            for error in sorted(found, key=lambda e: e.row):
                sink.add(error)
        if total == 0:
            raise FileRefused([RowError(0, "", MSG_NO_ROWS)])
    except FileRefused as refused:
        raise RowsRefused([e.as_dict() for e in refused.errors], len(refused.errors)) from None
    if sink.count and not skip_bad_rows:
        raise RowsRefused(sink.items, sink.count)
    return ids
