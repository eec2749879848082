"""The demo's promotions, so a new user sees the whole loop: a target reached pays points, a
sub-target issues a coupon and sends a message, and the awards show in insights, the awards
ledger and member care."""

from __future__ import annotations

from evaluation.models import TargetEvent
from milestones.models import Target

from .consumer import target_events_consume
from .models import CouponSeries, Promotion
from .services import coupon_series_create, promotion_create, rule_text

DEMO_SERIES = "DEMO-THANKS"
SPEND_GROUP = "Demo: boost spend"
PETROL_TARGET = "Petrol litres (demo)"
HALF_TANK = "Half tank"


def _promotions(org) -> list[dict]:
    spend = (
        Target.objects.filter(target_group__organisation=org, target_group__name=SPEND_GROUP)
        .values_list("name", flat=True)
        .first()
    )
    year = org.target_groups.filter(name=SPEND_GROUP).values_list("start", "end").first()
    if spend is None or year is None:
        return []
    start, end = year
    return [
        {
            "name": "Demo: 200 points for reaching the spend target",
            "activity": "target_period_elapsed",
            "start": start,
            "end": end,
            "condition": f"currentEvent.targetAchieved({rule_text(spend)}) >= "
            f"currentEvent.targetDefined({rule_text(spend)})",
            "actions": [{"type": "award_points", "basis": "fixed", "points": 200}],
        },
        {
            "name": "Demo: half a tank earns a coupon",
            "activity": "sub_target_reached",
            "start": start,
            "end": end,
            "condition": f"currentEvent.targetName == {rule_text(PETROL_TARGET)} && "
            f"{rule_text(HALF_TANK)} in currentEvent.targetMilestoneTrigger",
            "actions": [
                {"type": "issue_coupon", "series": DEMO_SERIES},
                {
                    "type": "send_message",
                    "channel": "sms",
                    "template": "Hi {customer.name}, you reached {sub_target.name} in "
                    "{milestone.name}: your coupon is {coupon.code}.",
                },
            ],
        },
    ]


def load_demo_promotions(sender=None, organisation=None, stage="configure", **kwargs) -> None:
    """milestones.signals.demo_loaded: the promotions before the activities ("configure"),
    then the events those activities wrote paid at once ("settle"; the worker would pay
    them a moment later, consuming twice pays once)."""
    org = organisation
    if stage == "configure":
        if not CouponSeries.objects.filter(organisation=org, code=DEMO_SERIES).exists():
            coupon_series_create(
                organisation=org,
                code=DEMO_SERIES,
                name="Demo thank-you coupons",
                valid_days=30,
                generate=50,
            )
        for data in _promotions(org):
            if not Promotion.objects.filter(organisation=org, name=data["name"]).exists():
                promotion_create(organisation=org, data=data)
    elif stage == "settle":
        ids = list(
            TargetEvent.objects.filter(organisation=org, consumed_at__isnull=True).values_list(
                "id", flat=True
            )
        )
        if ids:
            target_events_consume(event_ids=ids)
