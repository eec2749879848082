"""Reads: the `currentEvent` profile of a target event, awards, the liability report, and the
actions taken per event (for the customer's milestones timeline)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum

from enrolment.models import Enrolment
from enrolment.selectors import target_value_for
from evaluation.models import Progress, TargetEvent, TargetEventType
from milestones.models import Target, TargetGroup
from rules import EventProfile

from .models import ActionType, Award, AwardPointsType, AwardStatus

ZERO = Decimal(0)

#: currentEvent.name for each kind of target event
EVENT_NAMES = {
    TargetEventType.TARGET_ACHIEVED: "targetAchieved",
    TargetEventType.PERIOD_ELAPSED: "targetPeriodElapsed",
    TargetEventType.SUB_TARGET_ACHIEVED: "subTargetReached",
    TargetEventType.ENROLLED: "targetEnrolled",
    TargetEventType.NEAR_MISS: "targetNearMiss",
}


def event_instant(event: TargetEvent) -> datetime:
    """The moment an event is about. A period-elapsed event is written at the cycle's end
    plus the offset days; it is about the cycle's last instant."""
    if event.type == TargetEventType.PERIOD_ELAPSED:
        offset = event.target_group.effective_offset_days
        return event.occurred_at - timedelta(days=offset) - timedelta(microseconds=1)
    return event.occurred_at


def event_day(event: TargetEvent) -> date:
    """The day (organisation's timezone) a promotion must be live on to act on the event."""
    return event_instant(event).astimezone(event.organisation.tzinfo).date()


def event_target_name(event: TargetEvent) -> str:
    return event.target.name if event.target_id else event.target_group.name


@dataclass
class NameIndex:
    """Target and milestone names of one organisation (both unique per organisation)."""

    targets: dict = field(default_factory=dict)  # name -> Target
    groups: dict = field(default_factory=dict)  # name -> (TargetGroup, [Target])

    @classmethod
    def load(cls, organisation_id: int, names) -> NameIndex:
        index = cls()
        names = set(names)
        if not names:
            return index
        for target in Target.objects.filter(organisation_id=organisation_id, name__in=names):
            index.targets[target.name] = target
        groups = TargetGroup.objects.filter(
            organisation_id=organisation_id, name__in=names
        ).prefetch_related("targets")
        for group in groups:
            index.groups[group.name] = (group, list(group.targets.all()))
        return index


def event_targets(event: TargetEvent, names, index: NameIndex) -> dict[str, tuple]:
    """`EventProfile.targets` for the names a rule reads: name -> (achieved, defined).

    The event's own target reads the event's values (its cycle). Another target reads the
    customer's progress in the same cycle when it is in the same milestone, else in the
    cycle containing the event's moment, else the latest; a customer enrolled without
    progress reads 0 against the defined value; a target the customer is not in is left
    out (the rule language reads it as 0 and `targetExists` false). A milestone's name
    stands for its only target, or, for the event's own unified milestone, for the event.
    """
    out: dict[str, tuple] = {}
    wanted: list[tuple[str, Target]] = []
    for name in names:
        target = index.targets.get(name)
        if target is None and name in index.groups:
            group, targets = index.groups[name]
            if group.id == event.target_group_id and event.target_id is None:
                out[name] = (event.achieved, event.defined)
                continue
            if len(targets) != 1:
                continue
            target = targets[0]
        if target is None:
            continue
        if target.id == event.target_id:
            out[name] = (event.achieved, event.defined)
        else:
            wanted.append((name, target))
    if not wanted:
        return out
    rows = defaultdict(list)
    for p in Progress.objects.filter(
        customer_id=event.customer_id, target_id__in={t.id for _, t in wanted}
    ).only("target_id", "cycle_ordinal", "cycle_start", "cycle_end", "achieved", "target_value"):
        rows[p.target_id].append(p)
    instant = event_instant(event)
    missing = []
    for name, target in wanted:
        mine = rows.get(target.id, [])
        row = None
        if target.target_group_id == event.target_group_id and event.cycle_ordinal:
            row = next((p for p in mine if p.cycle_ordinal == event.cycle_ordinal), None)
        else:
            row = next(
                (
                    p
                    for p in mine
                    if p.cycle_start <= instant and (p.cycle_end is None or instant < p.cycle_end)
                ),
                None,
            )
            if row is None and mine:
                row = max(mine, key=lambda p: p.cycle_ordinal)
        if row is not None:
            out[name] = (row.achieved, row.target_value)
        else:
            missing.append((name, target))
    if missing:
        out.update(_enrolled_without_progress(event, missing, instant))
    return out


def _enrolled_without_progress(event, missing, instant) -> dict[str, tuple]:
    group_ids = {t.target_group_id for _, t in missing}
    enrolled = set(
        Enrolment.objects.filter(
            customer_id=event.customer_id, target_group_id__in=group_ids, is_active=True
        ).values_list("target_group_id", flat=True)
    )
    out = {}
    for name, target in missing:
        if target.target_group_id not in enrolled:
            continue
        ordinal = 1
        if target.target_group_id == event.target_group_id and event.cycle_ordinal:
            ordinal = event.cycle_ordinal
        else:
            period = (
                target.target_group.periods.filter(starts_at__lte=instant, ends_at__gt=instant)
                .only("ordinal")
                .first()
            )
            if period is not None:
                ordinal = period.ordinal
        out[name] = (
            ZERO,
            target_value_for(target=target, customer_id=event.customer_id, cycle_ordinal=ordinal),
        )
    return out


def milestone_triggers(event: TargetEvent) -> list[str]:
    """`targetMilestoneTrigger`: the sub-target that fired, on a sub-target event. On a
    cycle-end event, the sub-targets reached in the cycle only when the award switch is
    Inactive: with it Active they were delivered at once, and "the configuration settings
    determine whether sub-target actions take effect immediately or at the end of the
    period" (reference 001, use case 6) — one or the other, never both."""
    if (
        event.type == TargetEventType.PERIOD_ELAPSED
        and event.organisation.award_when_target_achieved
    ):
        return []
    return list(event.milestone_triggers or [])


def event_profile(event: TargetEvent, names, index: NameIndex) -> EventProfile:
    """The `currentEvent` profile; `targets` only for the names the rules read."""
    return EventProfile(
        name=EVENT_NAMES.get(event.type, event.type),
        attributes={
            "type": event.type,
            "cycle": event.cycle_ordinal,
            "achieved": event.achieved,
            "defined": event.defined,
            "milestone": event.target_group.name,
        },
        targets=event_targets(event, names, index) if names else {},
        is_target_achieved_event=bool(event.is_target_achieved_event),
        is_near_miss_event=event.type == TargetEventType.NEAR_MISS,
        milestone_value_defined=event.milestone_value_defined,
        target_milestone_trigger=milestone_triggers(event),
        target_name=event_target_name(event),
        target_period=event.period_name or "",
    )


def customer_profile(customer) -> dict:
    return {
        "mobile": customer.mobile or "",
        "email": customer.email or "",
        "externalId": customer.external_id or "",
        "name": customer.name or "",
        "attributes": customer.attributes or {},
    }


# --- awards --------------------------------------------------------------------------------


def awards_per_cycle(*, target_group_id: int) -> list[dict]:
    """[{ordinal, awards, points}] paid (status done) by one milestone, cycle by cycle."""
    rows = (
        Award.objects.filter(target_group_id=target_group_id, status=AwardStatus.DONE)
        .exclude(cycle_ordinal=None)
        .values("cycle_ordinal")
        .annotate(awards=Count("id"), points=Sum("points"))
        .order_by("cycle_ordinal")
    )
    return [
        {"ordinal": r["cycle_ordinal"], "awards": r["awards"], "points": r["points"] or Decimal(0)}
        for r in rows
    ]


def awards_for(*, organisation_id: int):
    return Award.objects.filter(organisation_id=organisation_id).select_related(
        "promotion", "target", "target_group", "till"
    )


def actions_for_events(event_ids) -> dict[int, list[dict]]:
    """The actions taken for each event (answered on evaluation.signals.timeline_actions)."""
    out: dict[int, list[dict]] = defaultdict(list)
    ids = list(event_ids)
    for start in range(0, len(ids), 5000):
        rows = (
            Award.objects.filter(event_id__in=ids[start : start + 5000])
            .order_by("id")
            .values(
                "event_id",
                "type",
                "promotion_id",
                "status",
                "points",
                "points_type",
                "coupon_code",
                "message",
                "error",
                "created_at",
                promotion_name=F("promotion__name"),
            )
        )
        for row in rows:
            event_id = row.pop("event_id")
            out[event_id].append(
                {
                    "type": row["type"],
                    "promotion": row["promotion_name"],
                    "promotion_id": row["promotion_id"],
                    "status": row["status"],
                    "points": row["points"],
                    "points_type": row["points_type"],
                    "coupon_code": row["coupon_code"],
                    "message": row["message"],
                    "error": row["error"],
                    "created_at": row["created_at"],
                }
            )
    return dict(out)


LIABILITY_COLUMNS = [
    ("target_group_id", "Milestone id"),
    ("target_group__name", "Milestone"),
    ("target_id", "Target id"),
    ("target__name", "Target"),
    ("regular_points", "Regular points"),
    ("promotional_points", "Promotional points"),
    ("total_points", "Points (total)"),
    ("coupons", "Coupons issued"),
    ("messages", "Messages"),
    ("failed", "Failed actions"),
    ("customers", "Customers"),
]


def liability_report(
    *,
    organisation_id: int,
    start: date | None = None,
    end: date | None = None,
    promotion_id: int | None = None,
    target_group_id: int | None = None,
) -> list[dict]:
    """Points, coupons and messages given, per milestone and target (the milestone whose
    event caused each award, even when one promotion serves several milestones)."""
    qs = Award.objects.filter(organisation_id=organisation_id)
    if start:
        qs = qs.filter(awarded_at__date__gte=start)
    if end:
        qs = qs.filter(awarded_at__date__lte=end)
    if promotion_id:
        qs = qs.filter(promotion_id=promotion_id)
    if target_group_id:
        qs = qs.filter(target_group_id=target_group_id)
    done = Q(status=AwardStatus.DONE)
    points = done & Q(type=ActionType.AWARD_POINTS)
    rows = (
        qs.values("target_group_id", "target_group__name", "target_id", "target__name")
        .annotate(
            regular_points=Sum(
                "points", filter=points & Q(points_type=AwardPointsType.REGULAR), default=ZERO
            ),
            promotional_points=Sum(
                "points", filter=points & Q(points_type=AwardPointsType.PROMOTIONAL), default=ZERO
            ),
            total_points=Sum("points", filter=points, default=ZERO),
            coupons=Count("id", filter=done & Q(type=ActionType.ISSUE_COUPON)),
            messages=Count("id", filter=done & Q(type=ActionType.SEND_MESSAGE)),
            failed=Count("id", filter=Q(status=AwardStatus.FAILED)),
            customers=Count("customer_id", distinct=True),
        )
        .order_by("target_group__name", "target__name")
    )
    return list(rows)
