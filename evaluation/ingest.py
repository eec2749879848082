"""Activities in: validated as a whole batch, stored durably, then tracked after commit.

The integrator's `id` is the idempotency key (unique per organisation, in its own table,
`ActivityKey`, since activities are partitioned by month on PostgreSQL): the keys are
inserted `INSERT ... ON CONFLICT DO NOTHING RETURNING`, then the activities of exactly the
keys returned, in the same transaction. So exactly the new rows are reported as accepted and
everything else as duplicates, however many retries or concurrent copies of the same batch
arrive: a concurrent copy waits on the key's unique index until the first commits (then it
finds the key) or rolls back (then it inserts it).

The batch's behavioural and customer-level event names (with their attribute names) feed the
organisation's event catalogue (`milestones.services.event_types.event_types_learn`): one
read of the catalogue rows the batch names, and one upsert of those that change, after the
activities are inserted (so the catalogue rows are the last locks the batch takes). When the
organisation refuses events outside the catalogue, an item naming an unknown event is refused
like an unknown store: the whole batch is a 400 naming the item, and nothing is written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from enrolment.identifiers import IDENTIFIER_TYPES, IdentifierError, country_of, normalise
from enrolment.models import Customer
from milestones.catalogue import CUSTOMER_EVENTS
from milestones.models import EventKind, Store
from milestones.selectors import closest_event_name, event_names, event_types_known
from milestones.services.event_types import event_types_learn

from .kpis import PROGRESS_LIMIT, to_decimal
from .models import Activity, ActivityKey, ActivityStatus, ActivityType, Progress

MAX_BATCH = 1000


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    ids: list = field(default_factory=list)
    duplicate_ids: list = field(default_factory=list)
    activity_pks: list = field(default_factory=list)


class IngestRefused(ValidationError):
    """Items of a batch refused after the serializer (unknown store or customer, no room
    left in a customer's progress): nothing was stored. `items` maps the item's index to
    its errors by field, the shape the serializer's own item errors have."""

    def __init__(self, errors: dict[int, dict]):
        self.items = {str(i): e for i, e in sorted(errors.items())}
        super().__init__(
            {"activities": [f"item {i}: {json.dumps(e)}" for i, e in sorted(errors.items())]}
        )


def _identifier_key(identifiers: dict, country: str) -> tuple:
    """The item's identifiers in their stored form (mobiles in E.164 when the organisation
    has a default country), so every spelling of a number resolves to one customer."""
    return tuple(
        (k, normalise(k, identifiers[k], country=country))
        for k in IDENTIFIER_TYPES
        if identifiers.get(k) not in (None, "")
    )


def _resolve_customers(org, items, errors) -> dict[tuple, int]:
    """Map each item's identifiers to a customer id, creating unknown customers when allowed."""
    keys = {}
    country = country_of(org)
    for i, item in enumerate(items):
        try:
            key = _identifier_key(item["customer"], country)
        except IdentifierError as exc:
            errors[i] = {"customer": [str(exc)]}
            continue
        if not key:
            errors[i] = {"customer": ["Identify the customer by mobile, email or external_id."]}
            continue
        keys[i] = key
    wanted: dict[str, set] = {k: set() for k in IDENTIFIER_TYPES}
    for key in keys.values():
        for kind, value in key:
            wanted[kind].add(value)
    found: dict[tuple[str, str], int] = {}
    for kind, values in wanted.items():
        if values:
            for cid, value in Customer.objects.filter(
                organisation=org, **{f"{kind}__in": values}
            ).values_list("id", kind):
                found[(kind, value)] = cid
    resolved: dict[tuple, int] = {}
    missing: dict[tuple, dict] = {}
    for i, key in keys.items():
        cid = next((found[p] for p in key if p in found), None)
        if cid is not None:
            resolved[key] = cid
        elif not org.auto_create_customers:
            errors[i] = {
                "customer": [
                    "Unknown customer: this organisation does not create customers from activities."
                ]
            }
        else:
            missing.setdefault(key, dict(key))
    if missing:
        # Created in a fixed order: two batches creating the same customers wait for each
        # other on the unique index instead of deadlocking.
        Customer.objects.bulk_create(
            [Customer(organisation=org, **missing[key]) for key in sorted(missing)],
            ignore_conflicts=True,
        )
        # Read the new (or concurrently created) customers back: one query per identifier kind.
        created: dict[tuple[str, str], int] = {}
        for kind in IDENTIFIER_TYPES:
            values = {value for key in missing for k, value in key if k == kind}
            if values:
                for cid, value in Customer.objects.filter(
                    organisation=org, **{f"{kind}__in": values}
                ).values_list("id", kind):
                    created[(kind, value)] = cid
        for key in missing:
            cid = next((created[p] for p in key if p in created), None)
            if cid is not None:
                resolved[key] = cid
    return {i: resolved[key] for i, key in keys.items() if key in resolved}


def activities_ingest(*, organisation, items: list[dict]) -> IngestResult:
    """Store a batch (validated items, see evaluation.api.ActivityIn); all or nothing."""
    if len(items) > MAX_BATCH:
        raise ValidationError(
            {"non_field_errors": [f"At most {MAX_BATCH} activities per request, got {len(items)}."]}
        )
    errors: dict[int, dict] = {}
    stores = {i.get("store") for i in items if i.get("store")}
    known = set(
        Store.objects.filter(organisation=organisation, code__in=stores).values_list(
            "code", flat=True
        )
    )
    for i, item in enumerate(items):
        if item.get("store") and item["store"] not in known:
            errors.setdefault(i, {})["store"] = [f"Unknown store code {item['store']!r}."]
    events = _events_seen(items)
    catalogued = event_types_known(organisation, {name for _, name in events}) if events else {}
    if events and organisation.refuse_unknown_events:
        _refuse_unknown_events(organisation, items, catalogued, errors)
    with transaction.atomic():
        customer_ids = _resolve_customers(organisation, items, errors)
        _check_progress_room(items, customer_ids, errors)
        if errors:
            raise IngestRefused(errors)
        rows = []
        for i, item in enumerate(items):
            rows.append(_row(organisation, item, customer_ids[i]))
        _lock_customers(organisation.id, sorted(set(customer_ids.values())))
        inserted = _insert_returning(sorted(rows, key=lambda r: r["external_id"]))
        if events:
            event_types_learn(organisation=organisation, seen=events, known=catalogued)
    result = IngestResult()
    seen = set()
    for row in rows:
        ext = row["external_id"]
        if ext in inserted and ext not in seen:
            result.accepted += 1
            result.ids.append(ext)
            result.activity_pks.append(inserted[ext])
            seen.add(ext)
        else:
            result.duplicates += 1
            result.duplicate_ids.append(ext)
    if result.activity_pks:
        from .tasks import queue_tracking

        pks = list(result.activity_pks)
        transaction.on_commit(lambda: queue_tracking(pks, organisation.id))
    return result


EVENT_KINDS = {
    ActivityType.EVENT: EventKind.BEHAVIOURAL,
    ActivityType.CUSTOMER_EVENT: EventKind.CUSTOMER,
}


def _events_seen(items) -> dict[tuple[str, str], set[str]]:
    """The batch's events as the catalogue keys them: {(kind, name): attribute names}."""
    seen: dict[tuple[str, str], set[str]] = {}
    for item in items:
        kind = EVENT_KINDS.get(item.get("type"))
        if kind is None or not item.get("name"):
            continue
        attrs = seen.setdefault((kind, item["name"]), set())
        if isinstance(item.get("attributes"), dict):
            attrs.update(k for k in item["attributes"] if isinstance(k, str))
    return seen


def _refuse_unknown_events(org, items, catalogued: dict, errors: dict) -> None:
    """The organisation refuses events outside its catalogue: each item naming one is
    refused, with the nearest known name when there is one (the catalogue's names are
    read only when something is refused)."""
    names_of: dict[str, set[str]] = {}
    for i, item in enumerate(items):
        kind = EVENT_KINDS.get(item.get("type"))
        name = item.get("name")
        if kind is None or not name or (kind, name) in catalogued:
            continue
        if kind == EventKind.CUSTOMER and name in CUSTOMER_EVENTS:
            continue
        if kind not in names_of:
            names_of[kind] = event_names(org, kind)
        near = closest_event_name(name, names_of[kind])
        hint = f" Did you mean {near!r}? Names are case-sensitive." if near else ""
        errors.setdefault(i, {})["name"] = [
            f"Unknown event {name!r}: this organisation refuses events outside its event "
            f"catalogue.{hint} A configurer adds a name in the catalogue (the admin's event "
            "catalogue or /api/v1/event-types/)."
        ]


# Below this a batch cannot bring any customer near PROGRESS_LIMIT: no read is needed.
ROOM_CHECK_FROM = Decimal(10**12)


def magnitude(item: dict) -> Decimal:
    """The most one activity can add to any target's progress (an upper bound)."""
    numbers = [item.get(k) for k in ("gross", "discount", "net")]
    numbers.append(abs(to_decimal(item.get("regular"))) + abs(to_decimal(item.get("promotional"))))
    lines = [li for li in item.get("line_items") or [] if isinstance(li, dict)]
    for name in ("gross", "net", "quantity"):
        numbers.append(sum((abs(to_decimal(li.get(name))) for li in lines), Decimal(0)))
    for extra in [item.get("attributes") or {}, item.get("extended_fields") or {}] + [
        li.get("extended_fields") or {} for li in lines
    ]:
        if isinstance(extra, dict):
            numbers.extend(extra.values())
    return max((abs(to_decimal(n)) for n in numbers), default=Decimal(0))


def _check_progress_room(items, customer_ids: dict[int, int], errors: dict) -> None:
    """Refuse an activity that would take its customer's progress past PROGRESS_LIMIT (a
    numeric overflow would poison every read of that row). Only customers with a large
    batch are read: one query for all of them."""
    sizes = {i: magnitude(item) for i, item in enumerate(items) if i in customer_ids}
    per_customer: dict[int, Decimal] = defaultdict(Decimal)
    for i, size in sizes.items():
        per_customer[customer_ids[i]] += size
    large = [cid for cid, total in per_customer.items() if total >= ROOM_CHECK_FROM]
    if not large:
        return
    running = dict(
        Progress.objects.filter(customer_id__in=large)
        .values("customer_id")
        .annotate(top=Max("achieved"))
        .values_list("customer_id", "top")
    )
    for i, size in sizes.items():
        cid = customer_ids[i]
        if cid not in per_customer or per_customer[cid] < ROOM_CHECK_FROM:
            continue
        running[cid] = (running.get(cid) or Decimal(0)) + size
        if running[cid] >= PROGRESS_LIMIT:
            errors.setdefault(i, {})["gross"] = [
                f"This activity would take the customer's progress past {PROGRESS_LIMIT:,f}; "
                "it is refused."
            ]


PAYLOAD_FIELDS = (
    "gross",
    "discount",
    "net",
    "extended_fields",
    "line_items",
    "attributes",
    "regular",
    "promotional",
)


def _row(org, item: dict, customer_id: int) -> dict:
    payload = {k: item[k] for k in PAYLOAD_FIELDS if item.get(k) is not None}
    if item["type"] in (ActivityType.TRANSACTION, ActivityType.RETURN):
        lines = item.get("line_items") or []
        if payload.get("gross") is None and lines:
            payload["gross"] = sum((Decimal(str(li.get("gross") or 0)) for li in lines), Decimal(0))
        if payload.get("net") is None:
            if lines and all(li.get("net") is not None for li in lines):
                payload["net"] = sum((Decimal(str(li["net"])) for li in lines), Decimal(0))
            elif payload.get("gross") is not None:
                payload["net"] = Decimal(str(payload["gross"])) - Decimal(
                    str(payload.get("discount") or 0)
                )
    return {
        "organisation_id": org.id,
        "external_id": item["id"],
        "type": item["type"],
        "customer_id": customer_id,
        "occurred_at": item["occurred_at"],
        "store_code": item.get("store") or "",
        "name": item.get("name") or "",
        "bill_number": item.get("bill_number") or "",
        "payload": json.dumps(payload, cls=DjangoJSONEncoder),
    }


def _lock_customers(organisation_id: int, ids: list[int]) -> None:
    """Take the activity rows' foreign-key locks (KEY SHARE on their customers) now, in id
    order. Left to the deferred foreign-key checks at commit, they would be taken in the
    batch's order; anything that locks customers harder in id order (a `FOR UPDATE`) would
    then deadlock with ingest. Tracking and reprocessing lock `FOR NO KEY UPDATE`, which
    key-share locks never wait for, so this order is what keeps any later lock safe."""
    if connection.vendor != "postgresql" or not ids:
        return
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE organisation_id = %s AND id = ANY(%s) "
            "ORDER BY id FOR KEY SHARE",
            [organisation_id, ids],
        )


def _insert_returning(rows: list[dict]) -> dict[str, int]:
    """{external_id: pk} of the rows inserted: per chunk, one `INSERT ... ON CONFLICT DO
    NOTHING RETURNING` of the keys (in external_id order, the order the caller sorts by, so
    two batches wait for each other instead of deadlocking), then one INSERT of the
    activities of the keys it returned (the first row of each, as before)."""
    if not rows:
        return {}
    table = Activity._meta.db_table
    keys_table = ActivityKey._meta.db_table
    cols = ["organisation_id", "external_id", "type", "customer_id", "occurred_at", "store_code", "name", "bill_number",
            "payload", "status", "attempts", "error", "received_at"]  # fmt: skip
    now = timezone.now()
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    one = "(" + ", ".join("%s" + (json_cast if c == "payload" else "") for c in cols) + ")"
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            cursor.execute(
                f"INSERT INTO {keys_table} (organisation_id, external_id) VALUES "
                f"{', '.join(['(%s, %s)'] * len(chunk))} "
                "ON CONFLICT (organisation_id, external_id) DO NOTHING RETURNING external_id",
                [v for r in chunk for v in (r["organisation_id"], r["external_id"])],
            )
            fresh = {ext for (ext,) in cursor.fetchall()}
            first: dict[str, dict] = {}
            for r in chunk:
                if r["external_id"] in fresh:
                    first.setdefault(r["external_id"], r)
            chunk = list(first.values())
            if not chunk:
                continue
            params = []
            adapt = connection.ops.adapt_datetimefield_value
            for r in chunk:
                params += [r["organisation_id"], r["external_id"], r["type"], r["customer_id"], adapt(r["occurred_at"]),
                           r["store_code"], r["name"], r["bill_number"], r["payload"], ActivityStatus.PENDING, 0, "",
                           adapt(now)]  # fmt: skip
            sql = (
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES {', '.join([one] * len(chunk))} "
                "RETURNING external_id, id"
            )
            cursor.execute(sql, params)
            inserted.update(dict(cursor.fetchall()))
    return inserted
