"""Budget caps of a promotion: total points, total coupons, points per customer per cycle.

A cap is never passed, whatever consumers race: before paying, the consumer locks the
promotion's row (`SELECT ... FOR UPDATE`; SQLite serialises writers anyway) and sums what the
promotion has paid so far, inside the same transaction that writes the award. Two consumers
paying the same capped promotion therefore pay one after the other, and the second sees the
first's award. Promotions without caps take no lock.

An award a cap refuses is written to the ledger as `capped`, with the reason, and nothing is
given: it is never silently dropped, and (like every ledger row) it is final for that
achievement, so a replay does not pay it later.

At 80 % of a total cap, the organisation's configurers get one email and the promotion list
shows a banner (`caps_near_limit`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from common.numbers import grouped
from milestones.models import Role, User

from .models import ActionType, Award, AwardStatus, Promotion

log = logging.getLogger(__name__)
WARN_SHARE = Decimal("0.8")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Spend:
    """What a promotion has given so far, against its caps."""

    points: Decimal
    coupons: int

    def share(self, promotion: Promotion) -> dict[str, Decimal]:
        """cap name -> the share used (0..1+), for the caps the promotion has."""
        out = {}
        if promotion.cap_points_total:
            out["cap_points_total"] = self.points / promotion.cap_points_total
        if promotion.cap_coupons_total:
            out["cap_coupons_total"] = Decimal(self.coupons) / promotion.cap_coupons_total
        return out


def spend_of(promotion_ids) -> dict[int, Spend]:
    """promotion id -> Spend, in one query (the promotion list, the API)."""
    rows = (
        Award.objects.filter(promotion_id__in=list(promotion_ids), status=AwardStatus.DONE)
        .values("promotion_id")
        .annotate(
            points=Sum("points", filter=Q(type=ActionType.AWARD_POINTS)),
            coupons=Count("id", filter=Q(type=ActionType.ISSUE_COUPON)),
        )
    )
    found = {r["promotion_id"]: Spend(r["points"] or ZERO, r["coupons"]) for r in rows}
    return {pid: found.get(pid, Spend(ZERO, 0)) for pid in promotion_ids}


def with_spend(queryset):
    """Promotions annotated with what they have given (`spent_points`, `spent_coupons`):
    a list shows spend against caps without a query per promotion."""
    from django.db.models import IntegerField, OuterRef, Subquery
    from django.db.models.functions import Coalesce

    done = Award.objects.filter(promotion=OuterRef("pk"), status=AwardStatus.DONE)
    points = (
        done.filter(type=ActionType.AWARD_POINTS)
        .order_by()
        .values("promotion")
        .annotate(s=Sum("points"))
        .values("s")
    )
    coupons = (
        done.filter(type=ActionType.ISSUE_COUPON)
        .order_by()
        .values("promotion")
        .annotate(c=Count("id"))
        .values("c")
    )
    return queryset.annotate(
        spent_points=Coalesce(Subquery(points), ZERO),
        spent_coupons=Coalesce(Subquery(coupons), 0, output_field=IntegerField()),
    )


def spend_for(promotion: Promotion) -> Spend:
    """The promotion's spend: from `with_spend`'s annotations when present."""
    if hasattr(promotion, "spent_points"):
        return Spend(Decimal(promotion.spent_points or 0), int(promotion.spent_coupons or 0))
    return spend_of([promotion.pk])[promotion.pk]


def _lock(promotion: Promotion) -> Promotion:
    return Promotion.objects.select_for_update().get(pk=promotion.pk)


def cap_refusal(*, promotion: Promotion, action_type: str, event, points=None) -> str | None:
    """Why paying this action would pass a cap of the promotion, or None. Call it inside
    the transaction that writes the award: it locks the promotion's row until then."""
    if not promotion.has_caps:
        return None
    locked = _lock(promotion)
    paid = Award.objects.filter(promotion_id=promotion.pk, status=AwardStatus.DONE)
    if action_type == ActionType.AWARD_POINTS and points is not None:
        if locked.cap_points_total is not None:
            spent = paid.filter(type=ActionType.AWARD_POINTS).aggregate(s=Sum("points"))["s"]
            spent = spent or ZERO
            if spent + points > locked.cap_points_total:
                return (
                    f"Points cap reached: {grouped(spent)} of {grouped(locked.cap_points_total)} "
                    f"points already paid; these {grouped(points)} points would pass it."
                )
        if locked.cap_points_per_customer_per_cycle is not None:
            mine = (
                paid.filter(
                    type=ActionType.AWARD_POINTS,
                    customer_id=event.customer_id,
                    target_group_id=event.target_group_id,
                    cycle_ordinal=event.cycle_ordinal,
                ).aggregate(s=Sum("points"))["s"]
                or ZERO
            )
            cap = locked.cap_points_per_customer_per_cycle
            if mine + points > cap:
                return (
                    f"Per-customer cap reached: this customer has {grouped(mine)} of "
                    f"{grouped(cap)} points in this cycle; these {grouped(points)} points "
                    "would pass it."
                )
    if action_type == ActionType.ISSUE_COUPON and locked.cap_coupons_total is not None:
        issued = paid.filter(type=ActionType.ISSUE_COUPON).count()
        if issued + 1 > locked.cap_coupons_total:
            return (
                f"Coupon cap reached: {grouped(issued)} of {grouped(locked.cap_coupons_total)} "
                "coupons already issued."
            )
    return None


CAP_LABELS = {
    "cap_points_total": "points cap",
    "cap_coupons_total": "coupon cap",
}


def warn_near_caps(*, promotion: Promotion) -> list[str]:
    """After an award of a capped promotion: at 80 % of a total cap, email the organisation's
    configurers, once per cap (the row is locked by cap_refusal in this transaction)."""
    if not (promotion.cap_points_total or promotion.cap_coupons_total):
        return []
    locked = Promotion.objects.select_for_update().get(pk=promotion.pk)
    shares = spend_of([locked.pk])[locked.pk].share(locked)
    due = [name for name, share in shares.items() if share >= WARN_SHARE]
    new = [name for name in due if name not in (locked.cap_warned or {})]
    if not new:
        return []
    now = timezone.now().isoformat()
    locked.cap_warned = {**(locked.cap_warned or {}), **{name: now for name in new}}
    locked.save(update_fields=["cap_warned"])
    lines = [
        f"- its {CAP_LABELS[name]}: {round(shares[name] * 100)} % used "
        f"(cap {grouped(getattr(locked, name))})"
        for name in new
    ]
    recipients = list(
        User.objects.filter(
            organisation_id=locked.organisation_id, role=Role.CONFIGURER, is_active=True
        )
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if recipients:
        subject = f"Promotion {locked.name!r} is near its budget cap"
        body = (
            f"The promotion {locked.name!r} has used 80 % or more of a budget cap:\n"
            + "\n".join(lines)
            + "\nOnce a cap is reached, further awards are recorded as 'capped' and nothing "
            "more is given. Raise the cap on the promotion to keep paying."
        )

        def send():
            try:
                send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
            except Exception:  # noqa: BLE001 - a mail outage must not undo a payment
                log.warning("could not send the cap warning of promotion %s", locked.pk)

        transaction.on_commit(send)
    return new


def caps_near_limit(promotions) -> list[str]:
    """Banner lines for the promotion list: each capped promotion at 80 % or more."""
    capped = [p for p in promotions if p.cap_points_total or p.cap_coupons_total]
    spend = spend_of([p.pk for p in capped])
    out = []
    for p in capped:
        for name, share in spend[p.pk].share(p).items():
            if share >= WARN_SHARE:
                out.append(
                    f"{p.name}: {round(share * 100)} % of its {CAP_LABELS[name]} "
                    f"({grouped(getattr(p, name))}) is used."
                )
    return out
