"""Near-miss events: a customer close to a target near the cycle's end (`NearMissRule`).

Checked daily by beat (`evaluation.tasks.check_near_misses`). For every rule whose target's
milestone is active and has a running fixed cycle with at most `days_left` days left (today
included, in the organisation's time zone), the customers whose progress is within
`within_percent` of their target value and who have not reached it get one `near_miss`
target event for the cycle. Set-based: one read of the cycle's progress rows per rule, one
insert of the events (the dedupe key's unique constraint makes a second check a no-op).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from . import events
from .models import NearMissRule, Progress
from .selectors import display_end
from .signals import cycles_evaluated, send_after_commit

HUNDRED = Decimal(100)


def near_miss_rule_set(*, target, within_percent, days_left) -> NearMissRule:
    """Create or change a target's near-miss rule (ValidationError at the field)."""
    rule = NearMissRule.objects.filter(target=target).first() or NearMissRule(
        target=target, organisation_id=target.target_group.organisation_id
    )
    rule.within_percent, rule.days_left = within_percent, days_left
    rule.full_clean()
    rule.save()
    return rule


def _running_period(group, now: datetime):
    return group.periods.filter(starts_at__lte=now, ends_at__gt=now).first()


def near_misses_check(*, now: datetime | None = None) -> list[int]:
    """Write the near-miss events due now; the ids written."""
    now = now or timezone.now()
    written: list[int] = []
    rules = NearMissRule.objects.select_related("target__target_group__organisation").filter(
        target__target_group__is_active=True
    )
    for rule in rules:
        target = rule.target
        group = target.target_group
        if not group.has_fixed_periods:
            continue
        period = _running_period(group, now)
        if period is None:
            continue
        tz = group.organisation.tzinfo
        days_left = (display_end(period.ends_at, tz) - now.astimezone(tz).date()).days + 1
        if days_left > rule.days_left:
            continue
        share = (HUNDRED - rule.within_percent) / HUNDRED
        rows = Progress.objects.filter(
            target=target, cycle_ordinal=period.ordinal, achieved_at__isnull=True
        ).values_list("customer_id", "achieved", "target_value")
        fresh = [
            events.near_miss(
                org_id=group.organisation_id,
                customer_id=customer_id,
                target=target,
                ordinal=period.ordinal,
                defined=target_value,
                achieved=achieved,
                at=now,
                period_name=period.name,
            )  # fmt: skip
            for customer_id, achieved, target_value in rows
            if target_value and target_value * share <= achieved < target_value
        ]
        if not fresh:
            continue
        inserted = events.write_once(organisation_id=group.organisation_id, fresh=fresh)
        if inserted:
            send_after_commit(cycles_evaluated, event_ids=inserted)
        written += inserted
    return written
