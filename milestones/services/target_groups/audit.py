"""The configuration's audit trail: who changed which milestone, when, and what changed
(`changes` maps a field to `[old, new]`, as JSON values)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from common.numbers import plain

from ...models import AuditEntry


def audit(*, organisation, user, action: str, obj, changes: dict | None = None) -> None:
    AuditEntry.objects.create(
        organisation=organisation,
        user=user if user and user.pk else None,
        action=action,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_name=str(obj)[:200],
        changes=changes or {},
    )


def _jsonable(value):
    if isinstance(value, Decimal):
        return plain(value)  # 10000.0000 -> "10000", never "1E+4"
    if isinstance(value, date):
        return str(value)
    return value


def field_changes(instance, data: dict, *, as_text: tuple[str, ...] = ()) -> dict:
    """`[old, new]` of each field of `data` whose value differs from the instance's; the
    fields in `as_text` (foreign keys) are written as text, blank for none."""
    changes = {}
    for attr, value in data.items():
        old = getattr(instance, attr)
        if old != value:
            if attr in as_text:
                changes[attr] = [str(old or ""), str(value or "")]
            else:
                changes[attr] = [_jsonable(old), _jsonable(value)]
    return changes


def fields_created(data: dict) -> dict:
    """`[None, new]` of every field of a new row."""
    return {attr: [None, _jsonable(value)] for attr, value in data.items()}
