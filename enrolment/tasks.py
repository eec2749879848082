"""Celery tasks (routed to the "ingest" queue): thin wrappers over the services."""

from celery import shared_task
from django.db import OperationalError

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


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def refresh_audience_groups_for_targets(target_ids: list[int], after_group_id: int = 0) -> int:
    """Queued by tracking after it commits, once per batch, with the targets the batch
    achieved: the filter groups that read them are refreshed now (and the milestones that
    follow those groups enrol the achievers), not at the next beat. Bounded per run; the rest
    of a long list goes on in the next run. Returns the number of groups refreshed."""
    from .audiences import audience_groups_refresh_for_targets

    refreshed, last = audience_groups_refresh_for_targets(
        target_ids=target_ids, after_group_id=after_group_id
    )
    if last is not None:
        refresh_audience_groups_for_targets.delay(list(target_ids), last)
    return len(refreshed)


@shared_task(bind=True)
def refresh_filter_audience_groups(self) -> int:
    """Beat: re-evaluate every filter audience group (merges and milestones follow).

    Run by a worker, it only plans: one `refresh_organisation_audience_groups` task per
    organisation, so one tenant's slow or failing groups never hold up another's. Called as
    a plain function (a shell, a test) it does the same work here, one organisation after
    the other. Returns the number of organisations.
    """
    from .audiences import audience_refresh_organisation_ids

    organisation_ids = audience_refresh_organisation_ids()
    for organisation_id in organisation_ids:
        if self.request.called_directly:
            refresh_organisation_audience_groups(organisation_id)
        else:
            refresh_organisation_audience_groups.delay(organisation_id)
    return len(organisation_ids)


@shared_task
def refresh_organisation_audience_groups(organisation_id: int) -> dict:
    """One organisation's filter groups; a group that fails is recorded on its row
    (enrolment.audiences, "refreshing many groups") and the others go on."""
    from .audiences import audience_groups_refresh_organisation

    return audience_groups_refresh_organisation(organisation_id=organisation_id)
