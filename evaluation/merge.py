"""Merging duplicate customers, evaluation's part: activities, progress (with its day rows
and bill contributions), cycle anchors, group achievements and target events move onto the
customer kept, with totals exact.

Run by `promotions.merge` inside its transaction, with the customers locked (see
`enrolment.merge` for the split between apps). In order:

1. `events_rekey`: the duplicates' target events take the kept customer and their dedupe key
   is re-spelt for it (the key names the customer). An event whose key the kept customer
   already has is a duplicate: it is returned, so promotions can re-point its awards to the
   event kept, then `events_drop_duplicates` deletes it (one still paid for by an award the
   ledger cannot re-point stays, under a `merged:` key, so nothing paid is lost).
2. `progress_rows_merge`: the rest. Progress of the same (target, cycle) is one row: the
   values are summed (day-based KPIs: the day rows are merged, a day both were active on
   counted once, and the value recounted from them); the earlier achievement time stays.
   A cycle still open whose merged value now passes a sub-target or the target gets its
   events, as tracking would write them (`evaluation.events.crossings`); a cycle already
   evaluated keeps the events it had. Per-customer cycles keep the kept customer's anchor.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from common.bulk import insert_rows
from enrolment.merge import move_rows
from milestones.models import CycleType

from . import config_cache, events
from .kpis import DAILY_MAX_KPIS, is_day_based
from .models import (
    Activity,
    Contribution,
    CycleAnchor,
    GroupAchievement,
    Progress,
    ProgressDay,
    TargetEvent,
    TargetEventType,
)

MERGED_KEY = "merged:{id}:{key}"


@dataclass
class EvaluationMerged:
    counts: Counter = field(default_factory=Counter)
    event_ids: list = field(default_factory=list)  # events the merge wrote (new crossings)
    achieved_targets: set = field(default_factory=set)
    targets: set = field(default_factory=set)  # targets whose progress changed (ranks)


def _rekey(key: str, from_id: int, into_id: int) -> str:
    """A dedupe key for the kept customer: every key names the customer third
    (`evaluation.events`: `<kind>:<target or milestone>:<customer>:...`)."""
    parts = key.split(":")
    if len(parts) >= 3 and parts[2] == str(from_id):
        parts[2] = str(into_id)
    return ":".join(parts)


def events_rekey(*, into_id: int, from_ids: list[int], counts: Counter) -> dict[int, int]:
    """Step 1. Returns {duplicate event id: id of the event kept in its place}."""
    keys = dict(TargetEvent.objects.filter(customer_id=into_id).values_list("dedupe_key", "id"))
    duplicates: dict[int, int] = {}
    for event_id, customer_id, key in (
        TargetEvent.objects.filter(customer_id__in=from_ids)
        .order_by("id")
        .values_list("id", "customer_id", "dedupe_key")
    ):
        new_key = _rekey(key, customer_id, into_id)
        if new_key in keys:
            duplicates[event_id] = keys[new_key]
            new_key = MERGED_KEY.format(id=event_id, key=new_key)[:200]
        else:
            keys[new_key] = event_id
            counts["events_moved"] += 1
        TargetEvent.objects.filter(pk=event_id).update(customer_id=into_id, dedupe_key=new_key)
    return duplicates


def events_drop_duplicates(*, duplicates: dict[int, int], counts: Counter) -> None:
    """Step 1, after promotions re-pointed the awards: delete the duplicates nothing protects
    any more; keep (under their `merged:` key) the few an award still needs."""
    for event_id in sorted(duplicates):
        try:
            with transaction.atomic():
                TargetEvent.objects.filter(pk=event_id).delete()
        except (ProtectedError, RestrictedError):
            counts["events_duplicate_kept"] += 1
        else:
            counts["events_duplicate_dropped"] += 1


def progress_rows_merge(
    *, organisation, into_id: int, from_ids: list[int], now
) -> EvaluationMerged:
    """Step 2 (see the module's docstring)."""
    out = EvaluationMerged()
    counts = out.counts
    counts["activities_moved"] = Activity.objects.filter(customer_id__in=from_ids).update(
        customer_id=into_id
    )
    counts.update(
        {f"anchors_{k}": v for k, v in move_rows(
            CycleAnchor, into_id=into_id, from_ids=from_ids, key_fields=("target_group_id",)
        ).items()}
    )  # fmt: skip

    def keep_earlier(kept, row):
        if row.achieved_at < kept.achieved_at:
            GroupAchievement.objects.filter(pk=kept.pk).update(achieved_at=row.achieved_at)
            kept.achieved_at = row.achieved_at

    counts.update(
        {f"group_achievements_{k}": v for k, v in move_rows(
            GroupAchievement, into_id=into_id, from_ids=from_ids,
            key_fields=("target_group_id", "cycle_ordinal"), merge=keep_earlier,
        ).items()}
    )  # fmt: skip
    kept = {
        (p.target_id, p.cycle_ordinal): p
        for p in Progress.objects.filter(customer_id=into_id).select_related("target")
    }
    tracked = {
        t.target.id: t
        for g in config_cache.org_config(organisation).groups.values()
        for t in g.targets
    }
    new_events: list[TargetEvent] = []
    for row in (
        Progress.objects.filter(customer_id__in=from_ids).select_related("target").order_by("id")
    ):
        out.targets.add(row.target_id)
        key = (row.target_id, row.cycle_ordinal)
        if key not in kept:
            Progress.objects.filter(pk=row.pk).update(customer_id=into_id)
            row.customer_id = into_id
            kept[key] = row
            counts["progress_moved"] += 1
            continue
        into = kept[key]
        new_events += _progress_merge(organisation, into, row, tracked.get(row.target_id), now, out)
        counts["progress_merged"] += 1
    if new_events:
        wanted = [e.dedupe_key for e in new_events]
        before = set(
            TargetEvent.objects.filter(
                organisation_id=organisation.id, dedupe_key__in=wanted
            ).values_list("dedupe_key", flat=True)
        )
        insert_rows(
            TargetEvent,
            [e for e in new_events if e.dedupe_key not in before],
            ignore_conflicts=True,
        )
        out.event_ids = list(
            TargetEvent.objects.filter(organisation_id=organisation.id, dedupe_key__in=wanted)
            .exclude(dedupe_key__in=before)
            .values_list("id", flat=True)
        )
        counts["events_written"] += len(out.event_ids)
    return out


def _progress_merge(org, into: Progress, row: Progress, tcfg, now, out) -> list[TargetEvent]:
    """Fold `row` (a duplicate's progress for the same target and cycle) into `into`."""
    kpi = into.target.kpi
    old = max(into.achieved, row.achieved)
    if is_day_based(kpi):
        days = dict(ProgressDay.objects.filter(progress=into).values_list("day", "value"))
        for day_row in ProgressDay.objects.filter(progress=row):
            if day_row.day not in days:
                ProgressDay.objects.filter(pk=day_row.pk).update(progress=into)
                days[day_row.day] = day_row.value
            elif kpi in DAILY_MAX_KPIS and day_row.value > days[day_row.day]:
                ProgressDay.objects.filter(progress=into, day=day_row.day).update(
                    value=day_row.value
                )
                days[day_row.day] = day_row.value
        values = list(days.values())
        new = sum(values, Decimal(0)) if kpi in DAILY_MAX_KPIS else Decimal(len(values))
    else:
        new = into.achieved + row.achieved
    Contribution.objects.filter(progress=row).update(progress=into)
    achieved_at = min((t for t in (into.achieved_at, row.achieved_at) if t), default=None)
    reached_at = max((t for t in (into.reached_at, row.reached_at) if t), default=None)
    written: list[TargetEvent] = []
    closed = TargetEvent.objects.filter(
        type=TargetEventType.PERIOD_ELAPSED,
        target_id=into.target_id,
        customer_id=into.customer_id,
        cycle_ordinal=into.cycle_ordinal,
    ).exists()
    cycle_end = into.cycle_end
    if tcfg is not None and not closed:
        written, reached = events.crossings(
            org=org, customer_id=into.customer_id, tcfg=tcfg, ordinal=into.cycle_ordinal,
            defined=into.target_value, old=old, new=new, at=now, achieved_at=achieved_at,
        )  # fmt: skip
        if reached:
            achieved_at = now
            out.achieved_targets.add(into.target_id)
            if tcfg.group.group.cycle_type == CycleType.TILL_ACHIEVEMENT:
                cycle_end = now
    elif achieved_at is None and new >= into.target_value:
        achieved_at = now  # reached, in a cycle already evaluated: no event any more
    Progress.objects.filter(pk=row.pk).delete()  # its day rows were moved or merged above
    Progress.objects.filter(pk=into.pk).update(
        achieved=new, achieved_at=achieved_at, reached_at=reached_at, cycle_end=cycle_end
    )
    into.achieved, into.achieved_at, into.reached_at = new, achieved_at, reached_at
    return written
