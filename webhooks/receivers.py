"""The in-transaction signals of the apps below, turned into outbox rows (connected in
WebhooksConfig.ready). Each asks first which active endpoints want the event types it could
write (one query); with none, it reads nothing more. Then it reads the facts in one query
per batch and writes the deliveries with one bulk insert (`services.deliveries_write`)."""

from __future__ import annotations

from . import events, selectors, services
from .models import WebhookEventType

TARGET_TYPES = set(events.TARGET_EVENT_TYPES.values())
AWARD_TYPES = set(events.AWARD_EVENT_TYPES.values())
CHUNK = 2000
# what TargetEventOut and the fact key read (the milestone and target: their names only)
TARGET_EVENT_FIELDS = ("id", "organisation_id", "type", "dedupe_key", "customer_id",
                       "target_group_id", "target_id", "period_name", "cycle_ordinal",
                       "achieved", "defined", "milestone_triggers", "milestone_value_defined",
                       "is_target_achieved_event", "occurred_at", "created_at")  # fmt: skip


def target_events_written(sender=None, organisation_id=None, event_ids=(), **kwargs) -> None:
    """evaluation.signals.target_events_written -> target.achieved, sub_target.achieved,
    cycle.elapsed."""
    from evaluation.models import TargetEvent

    endpoints = selectors.subscribers(organisation_ids=[organisation_id], event_types=TARGET_TYPES)
    if not endpoints:
        return
    ids = sorted(event_ids)
    for start in range(0, len(ids), CHUNK):
        rows = (
            TargetEvent.objects.filter(
                pk__in=ids[start : start + CHUNK], type__in=list(events.TARGET_EVENT_TYPES)
            )
            .select_related("target", "target_group")
            .only(*TARGET_EVENT_FIELDS, "target__name", "target_group__name")
            .order_by("id")
        )
        services.deliveries_write(facts=events.target_event_facts(rows), endpoints=endpoints)


def awards_written(sender=None, organisation_id=None, award_ids=(), **kwargs) -> None:
    """promotions.signals.awards_written -> award.created (done), award.capped."""
    from promotions.models import Award

    endpoints = selectors.subscribers(organisation_ids=[organisation_id], event_types=AWARD_TYPES)
    if not endpoints:
        return
    rows = (
        Award.objects.filter(pk__in=list(award_ids), status__in=list(events.AWARD_EVENT_TYPES))
        .select_related("promotion", "target", "target_group", "till")
        .order_by("id")
    )
    services.deliveries_write(facts=events.award_facts(rows), endpoints=endpoints)


def notifications_written(sender=None, organisation_id=None, notification_ids=(), **kwargs):
    """enrolment.signals.notifications_written -> customer.enrolled."""
    from enrolment.models import EnrolmentNotification

    endpoints = selectors.subscribers(
        organisation_ids=[organisation_id], event_types=[WebhookEventType.CUSTOMER_ENROLLED]
    )
    if not endpoints:
        return
    ids = sorted(notification_ids)
    for start in range(0, len(ids), CHUNK):
        rows = EnrolmentNotification.objects.filter(pk__in=ids[start : start + CHUNK]).order_by(
            "id"
        )
        services.deliveries_write(facts=events.enrolment_facts(rows), endpoints=endpoints)


def target_group_activation_changed(sender=None, target_group=None, **kwargs) -> None:
    """milestones.signals.target_group_activation_changed -> milestone.activated,
    milestone.deactivated."""
    fact = events.milestone_fact(target_group)
    endpoints = selectors.subscribers(
        organisation_ids=[fact.organisation_id], event_types=[fact.event_type]
    )
    if endpoints:
        services.deliveries_write(facts=[fact], endpoints=endpoints)
