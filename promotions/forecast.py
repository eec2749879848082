"""Forecast of a live milestone's current cycle: who will reach the target and each
sub-target by the cycle's end, and the liability that would cost.

Two estimates, combined per customer (see docs/simulation.md, "Forecast"):

1. **Pace.** A customer who has achieved `a` after a share `f` of the cycle is projected to
   end at `a / f`; they are "on pace" for the target (or a sub-target) when that projection
   reaches its value.
2. **From the same point, in earlier cycles.** At the same share `f` of each finished cycle of
   the same target, every customer stood at a *point*: the highest sub-target reached by then
   (or none). The share of those customers who went on to reach the target is the chance of
   a customer standing at that point now. A point seen fewer than `MIN_HISTORY` times in
   earlier cycles is not trusted: the pace estimate decides for those customers.

Expected achievers = those who already reached the target + the sum of every other
customer's chance (empirical where trusted, else 1 when on pace and 0 when not).

Liability: what the cycle has already paid (the ledger, status done) is reported apart from
the projection: the expected achievers still to come times what earlier cycles paid per
achiever (every award of the cycle divided by its achievers). With no earlier cycle paid, the
projection of the rest is unknown (null) rather than guessed.

A fixed number of queries per target, whatever the number of customers (all aggregation in
Python over one read of the cycle's progress rows and sub-target events).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from evaluation.models import Progress, TargetEvent, TargetEventType
from evaluation.selectors import display_end
from milestones.models import Period, TargetGroup

from .models import ActionType, Award, AwardStatus

MIN_HISTORY = 20  # customers seen at a point in earlier cycles before their share is trusted
NONE = -1  # the point of a customer who reached no sub-target yet
TWO = Decimal("0.01")


def _share(now: datetime, period: Period) -> Decimal:
    total = (period.ends_at - period.starts_at).total_seconds()
    done = (now - period.starts_at).total_seconds()
    return Decimal(str(min(max(done / total, 1e-6), 1.0)))


def current_period(group: TargetGroup, now: datetime) -> Period | None:
    if not group.has_fixed_periods:
        return None
    return group.periods.filter(starts_at__lte=now, ends_at__gt=now).first()


def _points_by_customer(target, ordinal: int, cut: datetime | None, sub_index: dict) -> dict:
    """customer -> the highest sub-target (by its order) reached by `cut` in that cycle."""
    hits = TargetEvent.objects.filter(
        target=target, cycle_ordinal=ordinal, type=TargetEventType.SUB_TARGET_ACHIEVED
    )
    if cut is not None:
        hits = hits.filter(occurred_at__lte=cut)
    out: dict[int, int] = {}
    for customer_id, sub_id in hits.values_list("customer_id", "sub_target_id"):
        out[customer_id] = max(out.get(customer_id, NONE), sub_index.get(sub_id, NONE))
    return out


def _history(target, period: Period, share: Decimal, sub_index: dict) -> dict[int, tuple]:
    """point -> (customers seen there, of whom reached the target), over finished cycles."""
    seen: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    earlier = target.target_group.periods.filter(
        ordinal__lt=period.ordinal, ends_at__lte=period.starts_at
    )
    for q in earlier:
        cut = q.starts_at + (q.ends_at - q.starts_at) * float(share)
        points = _points_by_customer(target, q.ordinal, cut, sub_index)
        rows = Progress.objects.filter(target=target, cycle_ordinal=q.ordinal).values_list(
            "customer_id", "achieved_at"
        )
        for customer_id, achieved_at in rows:
            if achieved_at is not None and achieved_at <= cut:
                continue  # already there at that point: says nothing about the rest
            entry = seen[points.get(customer_id, NONE)]
            entry[0] += 1
            entry[1] += achieved_at is not None
    return {point: tuple(v) for point, v in seen.items()}


def _paid(target, ordinal: int | None = None, before: int | None = None) -> dict:
    awards = Award.objects.filter(target=target, status=AwardStatus.DONE)
    if ordinal is not None:
        awards = awards.filter(cycle_ordinal=ordinal)
    if before is not None:
        awards = awards.filter(cycle_ordinal__lt=before)
    row = awards.aggregate(
        points=Sum("points", filter=Q(type=ActionType.AWARD_POINTS)),
        coupons=Count("id", filter=Q(type=ActionType.ISSUE_COUPON)),
        awards=Count("id"),
    )
    return {
        "points": row["points"] or Decimal(0),
        "coupons": row["coupons"],
        "awards": row["awards"],
    }


def target_forecast(target, period: Period, now: datetime) -> dict:
    share = _share(now, period)
    subs = list(target.sub_targets.all())
    sub_index = {s.id: i for i, s in enumerate(subs)}
    rows = list(
        Progress.objects.filter(target=target, cycle_ordinal=period.ordinal).values_list(
            "customer_id", "achieved", "target_value", "achieved_at"
        )
    )
    points = _points_by_customer(target, period.ordinal, None, sub_index)
    history = _history(target, period, share, sub_index)
    achieved = on_pace = 0
    expected = Decimal(0)
    sub_reached = [0] * len(subs)
    sub_on_pace = [0] * len(subs)
    for customer_id, value, target_value, achieved_at in rows:
        projected = Decimal(value) / share
        point = points.get(customer_id, NONE)
        for i, sub in enumerate(subs):
            if point >= i:
                sub_reached[i] += 1
            elif projected >= sub.threshold(target_value):
                sub_on_pace[i] += 1
        if achieved_at is not None:
            achieved += 1
            expected += 1
            continue
        paced = projected >= target_value
        on_pace += paced
        seen, reached = history.get(point, (0, 0))
        expected += Decimal(reached) / seen if seen >= MIN_HISTORY else Decimal(int(paced))
    expected = expected.quantize(TWO, ROUND_HALF_UP)
    paid_now = _paid(target, ordinal=period.ordinal)
    paid_before = _paid(target, before=period.ordinal)
    achievers_before = Progress.objects.filter(
        target=target, cycle_ordinal__lt=period.ordinal, achieved_at__isnull=False
    ).count()
    if achievers_before and paid_before["awards"]:
        per_points = paid_before["points"] / achievers_before
        per_coupons = Decimal(paid_before["coupons"]) / achievers_before
        still = max(expected - achieved, Decimal(0))
        projected_points = (paid_now["points"] + still * per_points).quantize(TWO, ROUND_HALF_UP)
        projected_coupons = int(
            (paid_now["coupons"] + still * per_coupons).to_integral_value(ROUND_HALF_UP)
        )
    else:
        projected_points = projected_coupons = None
    return {
        "target": target.name,
        "target_id": target.id,
        "customers": len(rows),
        "achieved_so_far": achieved,
        "on_pace": on_pace,
        "expected_achievers": expected,
        "sub_targets": [
            {"name": s.name, "reached_so_far": sub_reached[i], "on_pace": sub_on_pace[i]}
            for i, s in enumerate(subs)
        ],
        "history_points": {
            str(k): {"seen": v[0], "reached": v[1]} for k, v in sorted(history.items())
        },
        "liability": {
            "paid": {"points": paid_now["points"], "coupons": paid_now["coupons"]},
            "projected_total": {"points": projected_points, "coupons": projected_coupons},
        },
    }


def milestone_forecast(group: TargetGroup, now: datetime | None = None) -> dict:
    """The forecast of the milestone's current cycle (see the module's docstring)."""
    now = now or timezone.now()
    period = current_period(group, now)
    if period is None:
        reason = (
            "Forecasts are made for fixed calendar and custom period milestones."
            if not group.has_fixed_periods
            else "No cycle is running now."
        )
        return {"cycle": None, "reason": reason, "targets": []}
    tz = group.organisation.tzinfo
    return {
        "cycle": {
            "ordinal": period.ordinal,
            "name": period.name,
            "start": period.starts_at.astimezone(tz).date(),
            "end": display_end(period.ends_at, tz),
            "elapsed_share": _share(now, period).quantize(Decimal("0.001")),
        },
        "reason": "",
        "targets": [
            target_forecast(t, period, now)
            for t in group.targets.prefetch_related("sub_targets").select_related("target_group")
        ],
    }
