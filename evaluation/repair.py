"""Repair of progress that overflowed before amounts were bounded (issue 15).

Before the caps, a batch of line items could add up past what `numeric(22, 4)` holds; on
SQLite the row was stored and every later read of it raised `decimal.InvalidOperation`.
`overflow_repair` finds such rows without reading their values into Python, refuses the
activities that the ingest caps now refuse (marked failed, with the reason and no automatic
retry), closes without paying the events their bogus values wrote that promotions had not
consumed (every such event loses its unreadable `achieved`), and rebuilds the customers' progress for
each milestone concerned from the activities that remain, as reprocessing does. Any activity
that would still take a value past the limit fails alone there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from milestones.models import TargetGroup

from . import ranks
from .ingest import magnitude
from .kpis import AMOUNT_LIMIT, PROGRESS_LIMIT
from .models import Activity, ActivityStatus, Contribution, Progress, ProgressDay, TargetEvent
from .reprocess import _scope
from .tracking import MAX_ATTEMPTS, activities_track

OVER = Q(achieved__gte=PROGRESS_LIMIT) | Q(achieved__lte=-PROGRESS_LIMIT)


@dataclass
class RepairReport:
    progress_rows: int = 0
    customers: set = field(default_factory=set)
    groups: set = field(default_factory=set)
    refused_activities: list = field(default_factory=list)
    events_closed: int = 0
    events_cleared: int = 0


def overflow_find() -> RepairReport:
    """What is broken: the overflowed progress rows, their customers and milestones."""
    report = RepairReport()
    rows = list(Progress.objects.filter(OVER).values_list("customer_id", "target__target_group_id"))
    report.progress_rows = len(rows)
    report.customers = {c for c, _ in rows}
    report.groups = {g for _, g in rows}
    return report


def _drop_unreadable(qs) -> None:
    """Delete rows whose values cannot be read (a plain delete would read them first)."""
    ids = list(qs.values_list("id", flat=True))
    ProgressDay.objects.filter(progress_id__in=ids).delete()
    Contribution.objects.filter(progress_id__in=ids).delete()
    Progress.objects.filter(pk__in=ids)._raw_delete(qs.db)


def overflow_repair(*, dry_run: bool = False) -> RepairReport:
    report = overflow_find()
    over_events = TargetEvent.objects.filter(OVER)
    report.customers |= set(over_events.values_list("customer_id", flat=True))
    report.groups |= set(over_events.values_list("target_group_id", flat=True))
    for aid, payload in Activity.objects.filter(
        customer_id__in=report.customers, status=ActivityStatus.DONE
    ).values_list("id", "payload"):
        if magnitude(payload or {}) > AMOUNT_LIMIT:
            report.refused_activities.append(aid)
    report.events_closed = over_events.filter(consumed_at__isnull=True).count()
    report.events_cleared = over_events.filter(consumed_at__isnull=False).count()
    if dry_run:
        return report
    with transaction.atomic():
        Activity.objects.filter(pk__in=report.refused_activities).update(
            status=ActivityStatus.FAILED,
            attempts=MAX_ATTEMPTS,
            error=f"Refused by repair_overflow: an amount over the cap of {AMOUNT_LIMIT:,}.",
        )
        over_events.filter(consumed_at__isnull=True).update(consumed_at=timezone.now())
        over_events.update(achieved=None)
    for group in TargetGroup.objects.filter(pk__in=report.groups).select_related("organisation"):
        activities, _ = _scope(group)
        ids = list(activities.filter(customer_id__in=report.customers).values_list("id", flat=True))
        _drop_unreadable(
            Progress.objects.filter(
                OVER, customer_id__in=report.customers, target__target_group=group
            )
        )
        activities_track(activity_ids=ids, reprocess=True, only_group_id=group.id)
        ranks.forget(list(group.targets.values_list("id", flat=True)))
    return report
