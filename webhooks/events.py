"""What each webhook event carries, in one place: one constructor per kind of fact, the fact
key that makes a delivery unique per endpoint, and the `data` of the body.

| event type | fact | fact key | data |
|---|---|---|---|
| `target.achieved`, `sub_target.achieved`, `cycle.elapsed`, `target.near_miss` | a target event | `target_event:<dedupe key>` | `/api/v1/target-events/` fields (`TargetEventOut`) |
| `customer.enrolled` | an enrolment notification | `enrolled:<target>:<customer>` | the `targetLoyaltyCustomerEnrollment` payload (reference 004) |
| `award.created`, `award.capped` | a ledger row, done or capped | `award:<promotion>:<achievement>:<action>` | `/api/v1/awards/` fields (`AwardSerializer`) |
| `milestone.activated`, `milestone.deactivated` | the switch changed | `milestone:<id>:<on/off>:<updated_at>` | `MilestoneSwitchOut` |

The fact keys are the facts' own unique keys (the target event's dedupe key, the ledger's
once-per-achievement key, the notification's once-per-target-and-customer key), so writing
the same fact again (a replay, a reprocess) finds its delivery there and adds none.

`data` is rendered with DRF's JSON encoder, as the API renders the same rows: an integrator
reads the same fields, spelt the same way, from the webhook and from the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rest_framework import serializers
from rest_framework.utils.encoders import JSONEncoder

from evaluation.api import TargetEventOut
from evaluation.models import TargetEventType
from promotions.api import AwardSerializer
from promotions.models import AwardStatus

from .models import WebhookEventType

TARGET_EVENT_TYPES = {
    TargetEventType.TARGET_ACHIEVED: WebhookEventType.TARGET_ACHIEVED,
    TargetEventType.SUB_TARGET_ACHIEVED: WebhookEventType.SUB_TARGET_ACHIEVED,
    TargetEventType.PERIOD_ELAPSED: WebhookEventType.CYCLE_ELAPSED,
    "near_miss": WebhookEventType.TARGET_NEAR_MISS,  # evaluation.near_miss's daily check
}
AWARD_EVENT_TYPES = {
    AwardStatus.DONE: WebhookEventType.AWARD_CREATED,
    AwardStatus.CAPPED: WebhookEventType.AWARD_CAPPED,
}


@dataclass(frozen=True)
class Fact:
    organisation_id: int
    event_type: str
    key: str
    data: dict


def plain_json(data) -> dict:
    """Serializer output (Decimals, datetimes) as plain JSON values, as the API sends them."""
    return json.loads(json.dumps(data, cls=JSONEncoder))


def target_event_type(event_type: str) -> str | None:
    return TARGET_EVENT_TYPES.get(event_type)


def target_event_facts(events) -> list[Fact]:
    """Target events (with `target` and `target_group` loaded) of the three webhook types."""
    events = [e for e in events if e.type in TARGET_EVENT_TYPES]
    if not events:
        return []
    rows = plain_json(TargetEventOut(events, many=True).data)
    return [
        Fact(e.organisation_id, TARGET_EVENT_TYPES[e.type], f"target_event:{e.dedupe_key}", data)
        for e, data in zip(events, rows, strict=True)
    ]


def award_facts(awards) -> list[Fact]:
    """Ledger rows (with `promotion`, `target`, `target_group`, `till` loaded): a done award
    is `award.created`, a capped one `award.capped`; failed and skipped rows are not sent."""
    awards = [a for a in awards if a.status in AWARD_EVENT_TYPES]
    if not awards:
        return []
    rows = plain_json(AwardSerializer(awards, many=True).data)
    return [
        Fact(
            a.organisation_id,
            AWARD_EVENT_TYPES[a.status],
            f"award:{a.promotion_id}:{a.achievement}:{a.action_index}",
            data,
        )
        for a, data in zip(awards, rows, strict=True)
    ]


def enrolment_facts(notifications) -> list[Fact]:
    """Enrolment notifications: `data` is their whole `targetLoyaltyCustomerEnrollment`
    payload (`{"eventName", "data": {...}}`)."""
    return [
        Fact(
            n.organisation_id,
            WebhookEventType.CUSTOMER_ENROLLED,
            f"enrolled:{n.target_id}:{n.customer_id}",
            n.payload,
        )
        for n in notifications
    ]


class MilestoneSwitchOut(serializers.Serializer):
    """`data` of `milestone.activated` and `milestone.deactivated`."""

    id = serializers.IntegerField(help_text="The milestone's id (`/api/v1/target-groups/{id}/`).")
    name = serializers.CharField(help_text="The milestone's name.")
    is_active = serializers.BooleanField(help_text="The switch, after the change.")
    status = serializers.SerializerMethodField(help_text="upcoming | live | ended")
    start = serializers.DateField(help_text="The milestone's first day.")
    end = serializers.DateField(help_text="The milestone's last day.")
    changed_at = serializers.DateTimeField(source="updated_at", help_text="When it changed.")

    def get_status(self, group) -> str:
        return str(group.status())


def milestone_fact(group) -> Fact:
    event_type = (
        WebhookEventType.MILESTONE_ACTIVATED
        if group.is_active
        else WebhookEventType.MILESTONE_DEACTIVATED
    )
    on = "on" if group.is_active else "off"
    return Fact(
        group.organisation_id,
        event_type,
        f"milestone:{group.id}:{on}:{group.updated_at.isoformat()}",
        plain_json(MilestoneSwitchOut(group).data),
    )
