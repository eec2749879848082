"""How promotions listen to the other apps (connected in PromotionsConfig.ready)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from enrolment.models import CustomerTargetValue
from evaluation import events
from evaluation.models import TargetEvent

from .models import Promotion, PromotionActivity
from .services import promotions_naming_target, promotions_rename_target


def on_target_rename_check(sender, organisation_id, old, new, **kwargs) -> list[str]:
    """milestones asks before renaming a target: the promotions whose condition names it."""
    return [p.name for p in promotions_naming_target(organisation_id=organisation_id, name=old)]


def on_target_renamed(sender, organisation_id, old, new, **kwargs) -> None:
    """A target was renamed with "rename_in_promotions": follow it in the conditions (in
    the rename's transaction; a ValidationError refuses the rename)."""
    promotions_rename_target(organisation_id=organisation_id, old=old, new=new)


def on_customers_enrolled(sender, target_group, customer_ids, source=None, **kwargs) -> None:
    """Write one `enrolled` target event per newly enrolled customer, for promotions on the
    "enrolled" activity (only when the organisation has such a promotion: nothing is
    written for nobody)."""
    listening = Promotion.objects.filter(
        organisation_id=target_group.organisation_id,
        activity=PromotionActivity.ENROLLED,
        is_active=True,
    ).exists()
    if not listening or not customer_ids:
        return
    targets = list(target_group.targets.all())
    target = targets[0] if len(targets) == 1 else None
    now = timezone.now()
    period = target_group.periods.filter(starts_at__lte=now, ends_at__gt=now).first()
    ordinal = period.ordinal if period else None
    custom = {}
    if target is not None:
        custom = dict(
            CustomerTargetValue.objects.filter(
                target=target, customer_id__in=list(customer_ids), cycle_ordinal=ordinal or 1
            ).values_list("customer_id", "value")
        )
    rows = [
        events.enrolled(
            org_id=target_group.organisation_id,
            customer_id=customer_id,
            group=target_group,
            target=target,
            ordinal=ordinal,
            period_name=period.name if period else "",
            at=now,
            defined=custom.get(customer_id, target.value_for_cycle(ordinal or 1))
            if target
            else None,
        )
        for customer_id in customer_ids
    ]
    keys = [r.dedupe_key for r in rows]
    with transaction.atomic():
        TargetEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        ids = list(
            TargetEvent.objects.filter(
                organisation_id=target_group.organisation_id,
                dedupe_key__in=keys,
                consumed_at__isnull=True,
            ).values_list("id", flat=True)
        )
        from .tasks import queue_consumption

        queue_consumption(ids)


def on_timeline_actions(sender, event_ids, **kwargs) -> dict:
    """evaluation.signals.timeline_actions: what the ledger paid for each event."""
    from .selectors import actions_for_events

    return actions_for_events(event_ids)


def on_award_switch_changing(sender, organisation, new_value, **kwargs) -> list[dict]:
    """milestones.signals.award_switch_changing: the promotions whose meaning changes."""
    from .doctor import switch_change_affects

    return switch_change_affects(organisation=organisation, new_value=new_value)
