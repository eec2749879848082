"""Reads of progress: a customer's milestones as cycles, with sub-targets and actions."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from enrolment.models import CustomerTargetValue, Enrolment
from milestones.cycles import cyclic_window
from milestones.models import CycleType, Target

from .models import CycleAnchor, Progress, TargetEvent, TargetEventType
from .signals import timeline_actions


def display_end(end_at: datetime, tz):
    """Inclusive last day of a cycle whose exclusive end is `end_at` (Sep 4 + 30 days -> Oct 3)."""
    return end_at.astimezone(tz).date() - timedelta(days=1)


def cycle_status(start, end, now, achieved_at=None, till=False) -> str:
    if till:
        return "completed" if achieved_at else ("ongoing" if start <= now else "upcoming")
    if end is not None and now >= end:
        return "completed"
    if start <= now:
        return "ongoing"
    return "upcoming"


PACE_PLACES = Decimal("0.0001")


def cycle_pace(*, start, end, status: str, target, achieved, now: datetime, tz) -> dict:
    """How an ongoing cycle is going, by calendar days in the organisation's time zone
    (today counts as a day elapsed and as a day left):

    - `remaining`: what is still to reach (0 once reached);
    - `days_left`: days from today to the cycle's last day, both included;
    - `required_daily_pace`: `remaining / days_left`;
    - `pace_so_far`: `achieved / days elapsed` (from the first day to today, both included);
    - `on_track`: reached, or the pace so far, kept up, reaches the target by the last day.

    Every field is null outside an ongoing cycle, and the day-based ones in a cycle with no
    end (till-achievement)."""
    blank = dict.fromkeys(
        ("remaining", "days_left", "required_daily_pace", "pace_so_far", "on_track")
    )
    if status != "ongoing":
        return blank
    target, achieved = Decimal(target or 0), Decimal(achieved or 0)
    remaining = max(target - achieved, Decimal(0))
    out = {**blank, "remaining": remaining, "on_track": remaining == 0 or None}
    if end is None:
        return out
    today = now.astimezone(tz).date()
    days_left = max((end - today).days + 1, 1)
    elapsed = max((today - start).days + 1, 1)
    required = (remaining / days_left).quantize(PACE_PLACES, ROUND_HALF_UP)
    so_far = (achieved / elapsed).quantize(PACE_PLACES, ROUND_HALF_UP)
    return {
        "remaining": remaining,
        "days_left": days_left,
        "required_daily_pace": required,
        "pace_so_far": so_far,
        "on_track": remaining == 0 or achieved + (achieved / elapsed) * days_left >= target,
    }


def customer_milestones(*, customer, now: datetime | None = None) -> list[dict]:
    """One entry per target the customer is in, with every cycle. A bounded number of queries."""
    now = now or timezone.now()
    org = customer.organisation
    tz = org.tzinfo
    group_ids = list(
        Enrolment.objects.filter(customer=customer, is_active=True).values_list(
            "target_group_id", flat=True
        )
    )
    targets = list(
        Target.objects.filter(target_group_id__in=group_ids)
        .select_related("target_group")
        .prefetch_related("sub_targets", "target_group__periods")
        .order_by("target_group__start", "target_group_id", "ordinal", "id")
    )
    progress = {
        (p.target_id, p.cycle_ordinal): p
        for p in Progress.objects.filter(customer=customer, target__in=targets)
    }
    custom = {
        (t, o): v
        for t, o, v in CustomerTargetValue.objects.filter(
            customer=customer, target__in=targets
        ).values_list("target_id", "cycle_ordinal", "value")
    }
    anchors = dict(
        CycleAnchor.objects.filter(customer=customer, target_group_id__in=group_ids).values_list(
            "target_group_id", "anchor_at"
        )
    )
    sub_hits = defaultdict(dict)  # (target, ordinal) -> {sub_target_id: (achieved_at, event_id)}
    events = TargetEvent.objects.filter(customer=customer, target__in=targets).values_list(
        "id", "type", "target_id", "cycle_ordinal", "sub_target_id", "occurred_at"
    )
    event_ids = []
    cycle_events = defaultdict(list)
    for eid, etype, tid, ordinal, sid, at in events:
        event_ids.append(eid)
        cycle_events[(tid, ordinal)].append(eid)
        if etype == TargetEventType.SUB_TARGET_ACHIEVED and sid:
            sub_hits[(tid, ordinal)][sid] = (at, eid)
    actions = {}
    for _receiver, answer in timeline_actions.send(sender=TargetEvent, event_ids=event_ids):
        actions.update(answer or {})

    out = []
    for target in targets:
        group = target.target_group
        cycles = _cycles(group, target, progress, anchors, tz, now)
        rows = []
        for ordinal, start, end, period in cycles:
            p = progress.get((target.id, ordinal))
            defined = (
                p.target_value
                if p
                else custom.get((target.id, ordinal), target.value_for_cycle(ordinal))
            )
            hits = sub_hits.get((target.id, ordinal), {})
            till = group.cycle_type == CycleType.TILL_ACHIEVEMENT
            subs = []
            for sub in target.sub_targets.all():
                at, eid = hits.get(sub.id, (None, None))
                subs.append({"name": sub.name, "criteria": sub.criteria, "value": sub.threshold(defined), "achieved_at": at,
                             "actions": actions.get(eid, []) if eid else []})  # fmt: skip
            cycle_actions = [
                a
                for eid in cycle_events.get((target.id, ordinal), [])
                for a in actions.get(eid, [])
            ]
            first_day, last_day = start.astimezone(tz).date(), display_end(end, tz) if end else None
            status = cycle_status(start, end, now, p.achieved_at if p else None, till=till)
            achieved = p.achieved if p else 0
            rows.append(
                {
                    "ordinal": ordinal,
                    "name": period.name if period else f"{group.name} C{ordinal}",
                    "start": first_day,
                    "end": last_day,
                    "status": status,
                    "target": defined,
                    "achieved": achieved,
                    "achieved_at": p.achieved_at if p else None,
                    "is_achieved": bool(p and p.achieved_at),
                    "sub_targets": subs,
                    "actions": cycle_actions,
                    **cycle_pace(
                        start=first_day,
                        end=last_day,
                        status=status,
                        target=defined,
                        achieved=achieved,
                        now=now,
                        tz=tz,
                    ),  # fmt: skip
                }
            )
        if cycles:
            start = cycles[0][1].astimezone(tz).date()
            end = display_end(cycles[-1][2], tz) if cycles[-1][2] else group.end
        else:
            start, end = (group.cycle_start or group.start), group.end
        out.append(
            {
                "target_group": group.name,
                "target_group_id": group.id,
                "target": target.name,
                "target_id": target.id,
                "kpi": target.kpi,
                "entity": target.entity,
                "tracking_type": group.tracking_type,
                "unified_mode": group.unified_mode,
                "cycle_type": group.cycle_type,
                "cycle_count": group.cycle_count,
                "start": start,
                "end": end,
                "cycles": rows,
            }
        )
    return out


def _cycles(group, target, progress, anchors, tz, now):
    """[(ordinal, start, end or None, period)] for this customer."""
    if group.has_fixed_periods:
        return [
            (p.ordinal, p.starts_at, p.ends_at, p)
            for p in sorted(group.periods.all(), key=lambda p: p.ordinal)
        ]
    if group.cycle_type == CycleType.CYCLIC:
        anchor = anchors.get(group.id)
        if anchor is None:
            return []
        return [
            (k, *cyclic_window(anchor, group.cycle_frequency, group.cycle_days, k), None)
            for k in range(1, (group.cycle_count or 0) + 1)
        ]
    rows = sorted((o, p) for (t, o), p in progress.items() if t == target.id)
    return [(o, p.cycle_start, p.cycle_end, None) for o, p in rows]
