"""Target events, in one place (in the style of Saleor's `order/events.py`): one constructor
per kind of event, the dedupe keys that make each written once, and the crossing detection
that decides which sub-target and target events one step of progress writes.

Callers: both tracking folds (`tracking._CustomerState`, `sql_fold`), the cycle-end
evaluation (`cycle_end`) and the enrolled receiver (`promotions.receivers`). The
constructors build unsaved rows; callers write them in bulk with the dedupe key's unique
constraint (`ON CONFLICT DO NOTHING`), so a retry, a replay or a racing worker never writes
one twice.

| kind | dedupe key | written |
|---|---|---|
| `sub_target_achieved` | `sub_target_achieved:<target>:<customer>:<cycle>:<sub-target>` | when progress passes the sub-target's threshold |
| `target_achieved` | `target_achieved:<target>:<customer>:<cycle>` | when progress first reaches the target in the cycle (award switch Active) |
| `target_achieved` of a unified milestone | `unified:<milestone>:<customer>:<cycle>` | when ALL/ANY of its targets are reached (switch Active) |
| `period_elapsed` | `period_elapsed:<target>:<customer>:<cycle>` | at the cycle's end plus the offset days, for every enrolled customer |
| `enrolled` | `enrolled:<milestone>:<customer>` | when a customer is newly enrolled (a promotion listens) |
| `near_miss` | `near_miss:<target>:<customer>:<cycle>` | daily, once per cycle, when within the target's near-miss rule |
"""

from __future__ import annotations

from decimal import Decimal

from .models import TargetEvent, TargetEventType

# --- dedupe keys -----------------------------------------------------------------------------


def progress_key(etype: str, target_id: int, customer_id: int, ordinal: int, sub_id=None) -> str:
    return f"{etype}:{target_id}:{customer_id}:{ordinal}" + (f":{sub_id}" if sub_id else "")


def unified_key(group_id: int, customer_id: int, ordinal: int) -> str:
    return f"unified:{group_id}:{customer_id}:{ordinal}"


def enrolled_key(group_id: int, customer_id: int) -> str:
    return f"enrolled:{group_id}:{customer_id}"


# --- constructors ----------------------------------------------------------------------------


def sub_target_achieved(
    *, org_id, customer_id, target, ordinal, sub, threshold, defined, achieved, at, period_name
) -> TargetEvent:
    etype = TargetEventType.SUB_TARGET_ACHIEVED
    return TargetEvent(
        organisation_id=org_id,
        type=etype,
        dedupe_key=progress_key(etype, target.id, customer_id, ordinal, sub.id),
        customer_id=customer_id,
        target_group_id=target.target_group_id,
        target=target,
        sub_target=sub,
        cycle_ordinal=ordinal,
        period_name=period_name,
        achieved=achieved,
        defined=defined,
        milestone_triggers=[sub.name],
        milestone_value_defined=threshold,
        is_target_achieved_event=False,
        occurred_at=at,
    )


def _target_progress_event(
    etype, *, org_id, customer_id, target, ordinal, defined, achieved, at, period_name
) -> TargetEvent:
    """An event about a customer's progress on one target in one cycle, no sub-target."""
    return TargetEvent(
        organisation_id=org_id,
        type=etype,
        dedupe_key=progress_key(etype, target.id, customer_id, ordinal),
        customer_id=customer_id,
        target_group_id=target.target_group_id,
        target=target,
        cycle_ordinal=ordinal,
        period_name=period_name,
        achieved=achieved,
        defined=defined,
        milestone_triggers=[],
        is_target_achieved_event=etype == TargetEventType.TARGET_ACHIEVED,
        occurred_at=at,
    )


def target_achieved(**fields) -> TargetEvent:
    return _target_progress_event(TargetEventType.TARGET_ACHIEVED, **fields)


def unified_achieved(
    *, org_id, customer_id, group, ordinal, reached: int, defined: int, at, period_name
) -> TargetEvent:
    """A unified milestone (ALL/ANY of its targets) reached: the event has no target."""
    return TargetEvent(
        organisation_id=org_id,
        type=TargetEventType.TARGET_ACHIEVED,
        dedupe_key=unified_key(group.id, customer_id, ordinal),
        customer_id=customer_id,
        target_group_id=group.id,
        target=None,
        cycle_ordinal=ordinal,
        period_name=period_name,
        achieved=Decimal(reached),
        defined=Decimal(defined),
        is_target_achieved_event=True,
        occurred_at=at,
    )


def period_elapsed(
    *, org_id, customer_id, group, target, ordinal, achieved, defined, triggers, at, period_name
) -> TargetEvent:
    etype = TargetEventType.PERIOD_ELAPSED
    return TargetEvent(
        organisation_id=org_id,
        type=etype,
        dedupe_key=progress_key(etype, target.id, customer_id, ordinal),
        customer_id=customer_id,
        target_group=group,
        target=target,
        cycle_ordinal=ordinal,
        period_name=period_name,
        achieved=achieved,
        defined=defined,
        milestone_triggers=triggers,
        is_target_achieved_event=False,
        occurred_at=at,
    )


def near_miss(**fields) -> TargetEvent:
    return _target_progress_event(TargetEventType.NEAR_MISS, **fields)


def enrolled(
    *, org_id, customer_id, group, target, ordinal, defined, at, period_name
) -> TargetEvent:
    return TargetEvent(
        organisation_id=org_id,
        type=TargetEventType.ENROLLED,
        dedupe_key=enrolled_key(group.id, customer_id),
        customer_id=customer_id,
        target_group=group,
        target=target,
        cycle_ordinal=ordinal,
        period_name=period_name,
        achieved=0,
        defined=defined,
        is_target_achieved_event=False,
        occurred_at=at,
    )


# --- crossing detection ----------------------------------------------------------------------


def crossings(
    *, org, customer_id, tcfg, ordinal, defined, old, new, at, achieved_at
) -> tuple[list[TargetEvent], bool]:
    """The events of one step of a target's progress from `old` to `new` (the activity at
    `at`): each sub-target passed, and the target itself when it is reached for the first time
    in this cycle (`achieved_at` still None; written only with the award switch Active).
    Returns (events, whether the target was reached)."""
    events: list[TargetEvent] = []
    period_name = None
    target = tcfg.target
    for sub, threshold in tcfg.thresholds(defined):
        if old < threshold <= new:
            period_name = period_name or tcfg.group.period_name(ordinal)
            events.append(sub_target_achieved(
                org_id=org.id, customer_id=customer_id, target=target, ordinal=ordinal, sub=sub,
                threshold=threshold, defined=defined, achieved=new, at=at, period_name=period_name,
            ))  # fmt: skip
    if not (old < defined <= new and achieved_at is None):
        return events, False
    if org.award_when_target_achieved:
        events.append(target_achieved(
            org_id=org.id, customer_id=customer_id, target=target, ordinal=ordinal,
            defined=defined, achieved=new, at=at,
            period_name=period_name or tcfg.group.period_name(ordinal),
        ))  # fmt: skip
    return events, True


def write_once(*, organisation_id: int, fresh: list[TargetEvent]) -> list[int]:
    """Insert the events whose dedupe key is not written yet; the ids of those this caller
    inserted, even when two race: on PostgreSQL `RETURNING` gives exactly those; elsewhere
    (SQLite, whose transaction holds the write lock from its start) the keys still missing
    inside it are ours. Sends `target_events_written` in the same transaction, so the webhooks
    outbox commits or rolls back with the events."""
    from django.db import connection, transaction

    from common.bulk import insert_rows

    from .signals import target_events_written

    if not fresh:
        return []
    keys = [e.dedupe_key for e in fresh]
    with transaction.atomic():
        mine = there = None
        if connection.vendor != "postgresql":
            mine = TargetEvent.objects.filter(organisation_id=organisation_id, dedupe_key__in=keys)
            there = set(mine.values_list("dedupe_key", flat=True))
            fresh = [e for e in fresh if e.dedupe_key not in there]
        inserted = insert_rows(TargetEvent, fresh, ignore_conflicts=True, return_ids=True)
        if inserted is None:
            inserted = list(mine.exclude(dedupe_key__in=there).values_list("id", flat=True))
        if inserted:
            target_events_written.send(
                sender=TargetEvent, organisation_id=organisation_id, event_ids=inserted
            )
    return inserted
