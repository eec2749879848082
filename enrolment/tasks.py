"""Celery tasks (routed to the "ingest" queue): thin wrappers over the services."""

from celery import shared_task

from milestones.models import Target


@shared_task
def import_target_values(import_id: int) -> None:
    from .importing.jobs import import_job_run

    import_job_run(import_id=import_id)


@shared_task
def refresh_audience_groups_for_target(target_id: int) -> None:
    """Call after a target is achieved: re-evaluate the filter groups that read it."""
    from .audiences import audience_groups_refresh_for_target

    target = Target.objects.filter(pk=target_id).first()
    if target is not None:
        audience_groups_refresh_for_target(target=target)


@shared_task
def refresh_filter_audience_groups() -> None:
    """Beat: re-evaluate every filter audience group (merges and milestones follow)."""
    from .audiences import audience_groups_refresh_all

    audience_groups_refresh_all()
