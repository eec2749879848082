"""Re-process stored activities for one milestone (backdated milestones, a changed rule,
scope or KPI, an activation). Customer by customer, under the same lock as live tracking:
each customer's progress for the milestone is rebuilt from their stored activities, so the
result equals what live tracking would have produced; events carry their dedupe keys, so
nothing already sent is sent again."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from enrolment.models import Customer
from milestones.cycles import day_start
from milestones.models import TargetGroup

from . import ranks
from .models import (
    Activity,
    ActivityStatus,
    Progress,
    ReprocessRun,
    RunStatus,
)
from .signals import activities_tracked, send_after_commit
from .tasks import hand_off_achievements
from .tracking import activities_track, reset_group_state

CUSTOMERS_PER_BATCH = 200


def _scope(group: TargetGroup):
    tz = group.organisation.tzinfo
    start = day_start(group.start, tz)
    end = day_start(group.end + timedelta(days=1), tz)
    activities = Activity.objects.filter(
        organisation_id=group.organisation_id,
        status=ActivityStatus.DONE,
        occurred_at__gte=start,
        occurred_at__lt=end,
    )
    with_progress = Progress.objects.filter(target__target_group=group).values_list(
        "customer_id", flat=True
    )
    customers = set(activities.values_list("customer_id", flat=True)) | set(with_progress)
    return activities, sorted(customers)


@transaction.atomic
def reprocess_start(*, target_group: TargetGroup, queue: bool = True) -> ReprocessRun:
    """Create a run (with its total) and queue it after commit."""
    _, customers = _scope(target_group)
    run = ReprocessRun.objects.create(
        organisation_id=target_group.organisation_id,
        target_group=target_group,
        total=len(customers),
    )
    if queue:
        from .tasks import reprocess_milestone

        transaction.on_commit(lambda: reprocess_milestone.delay(run.id))
    return run


def _reset(group, customer_ids) -> None:
    """Customers with progress but no activity in the window any more start from zero."""
    if customer_ids:
        with transaction.atomic():
            list(
                Customer.objects.select_for_update(no_key=True)
                .filter(pk__in=customer_ids)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            reset_group_state(customer_ids=customer_ids, group_id=group.id)


def reprocess_execute(*, run_id: int, progress=None) -> ReprocessRun | None:
    """Do the run; a second worker on the same run finds it claimed and stops."""
    claimed = ReprocessRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING
    )
    run = (
        ReprocessRun.objects.select_related("target_group__organisation").filter(pk=run_id).first()
    )
    if not claimed or run is None:
        return run
    group = run.target_group
    try:
        activities, customers = _scope(group)
        for start in range(0, len(customers), CUSTOMERS_PER_BATCH):
            batch = customers[start : start + CUSTOMERS_PER_BATCH]
            rows = list(activities.filter(customer_id__in=batch).values_list("id", "customer_id"))
            _reset(group, set(batch) - {c for _, c in rows})
            result = activities_track(
                activity_ids=[i for i, _ in rows], reprocess=True, only_group_id=group.id
            )
            # the new events go to promotions exactly as live tracking's do
            send_after_commit(activities_tracked, result=result)
            hand_off_achievements(result.achieved_targets)
            ReprocessRun.objects.filter(pk=run.pk).update(processed=F("processed") + len(batch))
            if progress:
                progress(min(start + len(batch), len(customers)), len(customers))
        ranks.forget(list(group.targets.values_list("id", flat=True)))
        ReprocessRun.objects.filter(pk=run.pk).update(
            status=RunStatus.DONE, finished_at=timezone.now()
        )
    except Exception as exc:
        ReprocessRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    run.refresh_from_db()
    return run
