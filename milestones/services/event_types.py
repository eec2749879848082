"""Writes of the organisation's event catalogue (`EventType`): a configurer's add, edit and
delete (the admin screen and the API call these), and what ingest learns from each batch.

Learning is one statement per batch whatever its size: the names and attribute names of the
batch's events are folded in Python, compared with the rows read once
(`milestones.selectors.event_types_known`), and only the rows that would change (a new name,
a new attribute, a `last_seen` older than LAST_SEEN_RESOLUTION) go into one
`INSERT ... ON CONFLICT (organisation, kind, name) DO UPDATE`. The attribute lists are merged
in SQL, against the row as it is at that moment, so two batches learning different
attributes of one event concurrently both keep theirs. Rows are written in (kind, name)
order, so two batches lock them in the same order. A batch that brings nothing new writes
nothing and locks nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..catalogue import CUSTOMER_EVENTS
from ..models import EventKind, EventSource, EventType, Organisation
from ..selectors import closest_event_name, event_names

#: How stale `last_seen` may get before a batch bringing the name writes it again.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
MAX_ATTRIBUTES = 200


def clean_attributes(value) -> list[str]:
    """Attribute names as stored: stripped, without blanks or repeats, sorted. Accepts a list
    or a comma-separated string (what a person types)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple | set) or not all(isinstance(v, str) for v in value):
        raise ValidationError({"attributes": ["Give the attribute names as a list of strings."]})
    names = sorted({v.strip() for v in value if v.strip()})
    too_long = [n for n in names if len(n) > 100]
    if too_long:
        raise ValidationError(
            {"attributes": [f"An attribute name has at most 100 characters: {too_long[0][:40]}…"]}
        )
    if len(names) > MAX_ATTRIBUTES:
        raise ValidationError(
            {"attributes": [f"At most {MAX_ATTRIBUTES} attribute names, got {len(names)}."]}
        )
    return names


def event_type_check(*, event_type: EventType) -> list[str]:
    """Refusals as one ValidationError; answers the warnings (a name that differs from
    another one only in case)."""
    errors: dict[str, list[str]] = {}
    event_type.name = (event_type.name or "").strip()
    if event_type.kind not in EventKind.values:
        errors["kind"] = [f"Choose the kind: {' or '.join(EventKind.values)}."]
    if not event_type.name:
        errors["name"] = ["An event needs a name."]
    elif event_type.kind == EventKind.CUSTOMER and event_type.name not in CUSTOMER_EVENTS:
        errors["name"] = [
            "Customer-level events are a fixed list: use one of " + ", ".join(CUSTOMER_EVENTS) + "."
        ]
    elif (
        event_type.kind in EventKind.values
        and EventType.objects.filter(
            organisation=event_type.organisation, kind=event_type.kind, name=event_type.name
        )
        .exclude(pk=event_type.pk)
        .exists()
    ):
        errors["name"] = [f"{event_type.name!r} is already in the catalogue."]
    try:
        event_type.full_clean(exclude=["name", "kind", "organisation"] if errors else None)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(m for m in messages if m not in errors.get(key, []))
    if errors:
        raise ValidationError(errors)
    others = event_names(event_type.organisation, event_type.kind) - {event_type.name}
    near = closest_event_name(event_type.name, others)
    if near and near.casefold() == event_type.name.casefold():
        return [
            f"{event_type.name!r} and {near!r} differ only in case: tracking counts them as "
            "two events. Make sure activities send this exact spelling."
        ]
    return []


def event_type_create(
    *, organisation: Organisation, kind: str, name: str, attributes=None
) -> tuple[EventType, list[str]]:
    """A configurer adds a name to the catalogue. Returns it and warnings."""
    event_type = EventType(
        organisation=organisation,
        kind=kind,
        name=name or "",
        attributes=clean_attributes(attributes),
        source=EventSource.CONFIGURED,
    )
    warnings = event_type_check(event_type=event_type)
    try:
        with transaction.atomic():
            event_type.save()
    except IntegrityError:  # a concurrent add (or ingest) of the same name won
        raise ValidationError({"name": [f"{event_type.name!r} is already in the catalogue."]})
    return event_type, warnings


def event_type_update(*, event_type: EventType, data: dict) -> tuple[EventType, list[str]]:
    """A configurer edits `kind`, `name` or `attributes` (those in `data`). Renaming a name
    targets count on does not rename the targets: they keep counting the old name."""
    if "kind" in data:
        event_type.kind = data["kind"]
    if "name" in data:
        event_type.name = data["name"] or ""
    if "attributes" in data:
        event_type.attributes = clean_attributes(data["attributes"])
    warnings = event_type_check(event_type=event_type)
    try:
        with transaction.atomic():
            event_type.save()
    except IntegrityError:
        raise ValidationError({"name": [f"{event_type.name!r} is already in the catalogue."]})
    return event_type, warnings


def event_type_delete(*, event_type: EventType) -> None:
    """Remove a name. Activities bringing it later add it again (as learned), unless the
    organisation refuses events outside the catalogue."""
    event_type.delete()


def event_types_learn(
    *,
    organisation: Organisation,
    seen: dict[tuple[str, str], set[str]],
    known: dict[tuple[str, str], tuple[set[str], datetime | None]],
    now: datetime | None = None,
) -> int:
    """Fold a batch's events into the catalogue. `seen`: {(kind, name): attribute names};
    `known`: the rows as read before (`selectors.event_types_known`). Returns how many rows
    the statement touched (0: nothing new, nothing written)."""
    now = now or timezone.now()
    rows = []
    for key in sorted(seen):
        attrs = sorted(a for a in seen[key] if isinstance(a, str) and a and len(a) <= 100)
        if key in known:
            had, last_seen = known[key]
            fresh = last_seen is not None and now - last_seen < LAST_SEEN_RESOLUTION
            if fresh and set(attrs) <= had:
                continue
        rows.append((key[0], key[1], attrs[:MAX_ATTRIBUTES]))
    if not rows:
        return 0
    _upsert(organisation.id, rows, now)
    return len(rows)


def _upsert(org_id: int, rows: list[tuple[str, str, list[str]]], now: datetime) -> None:
    table = connection.ops.quote_name(EventType._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        merged = (
            "(SELECT COALESCE(jsonb_agg(DISTINCT a ORDER BY a), '[]'::jsonb) FROM "
            "jsonb_array_elements_text(cur.attributes || EXCLUDED.attributes) a)"
        )
        latest = "GREATEST(cur.last_seen, EXCLUDED.last_seen)"
        one = "(%s, %s, %s, %s::jsonb, %s, %s, %s, %s)"
    else:  # SQLite (the embedded default): json1's json_each and json_group_array
        merged = (
            "(SELECT json_group_array(value) FROM (SELECT value FROM json_each(cur.attributes) "
            "UNION SELECT value FROM json_each(excluded.attributes) ORDER BY value))"
        )
        latest = "max(COALESCE(cur.last_seen, excluded.last_seen), excluded.last_seen)"
        one = "(%s, %s, %s, %s, %s, %s, %s, %s)"
    params: list = []
    for kind, name, attrs in rows:
        stamp = adapt(now)
        params += [org_id, kind, name, json.dumps(attrs), EventSource.LEARNED, stamp, stamp, stamp]
    sql = (
        f"INSERT INTO {table} AS cur (organisation_id, kind, name, attributes, source, "
        f"first_seen, last_seen, created_at) VALUES {', '.join([one] * len(rows))} "
        "ON CONFLICT (organisation_id, kind, name) DO UPDATE SET "
        f"attributes = {merged}, last_seen = {latest}, "
        "first_seen = COALESCE(cur.first_seen, excluded.first_seen)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
