"""Periodic work, declared in code and installed into django-celery-beat.

Installed after every `migrate` (post_migrate), so a fresh database has the schedule; an
operator may then change intervals or disable entries in the admin, and later installs keep
those edits (only missing entries are created).
"""

# name -> (task, every N seconds, queue)
PERIODIC_TASKS: dict[str, tuple[str, int]] = {
    "heartbeat": ("milestones.tasks.record_heartbeat", 60),
    "refresh-filter-audience-groups": ("enrolment.tasks.refresh_filter_audience_groups", 900),
    "track-sweep-pending": ("evaluation.tasks.track_sweep_pending", 60),
    "evaluate-cycles": ("evaluation.tasks.evaluate_plan", 300),
    # hourly, so each organisation's day boundary is seen within the hour; once per cycle
    "near-misses": ("evaluation.tasks.check_near_misses", 3600),
    # pg_partman keeps three months of activity partitions ahead; daily is plenty
    "activity-partitions": ("evaluation.tasks.maintain_activity_partitions", 86400),
    "promotions-consume-sweep": ("promotions.tasks.consume_sweep", 60),
    "promotions-communications": ("promotions.tasks.communications_sweep", 300),
    "webhooks-deliver": ("webhooks.tasks.deliver_due", 60),
}


def install_periodic_tasks(using: str = "default") -> int:
    """Create the declared periodic tasks that are missing. Returns how many were created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for name, (task, seconds) in PERIODIC_TASKS.items():
        if PeriodicTask.objects.using(using).filter(name=name).exists():
            continue
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.using(using).create(name=name, task=task, interval=interval)
        created += 1
    return created
