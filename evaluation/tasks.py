"""Celery tasks: thin wrappers that take ids and call one service."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError, transaction

log = logging.getLogger(__name__)
TRACK_CHUNK = 1000


def queue_tracking(activity_ids: list[int], organisation_id: int | None = None) -> None:
    """Queue tracking in chunks. A broker outage loses nothing: the rows stay pending and the
    sweeper re-queues them. A caller that knows the activities' organisation passes it: the
    task then names it in every statement (docs/scaling.md, "Past one primary")."""
    scope = {} if organisation_id is None else {"organisation_id": organisation_id}
    for start in range(0, len(activity_ids), TRACK_CHUNK):
        chunk = activity_ids[start : start + TRACK_CHUNK]
        try:
            track_activities.delay(chunk, **scope)
        except Exception:  # noqa: BLE001 - any broker failure: the sweeper will pick them up
            log.warning(
                "could not queue tracking for %d activities; the sweeper will retry",
                len(chunk),
                exc_info=True,
            )


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def track_activities(activity_ids: list[int], organisation_id: int | None = None) -> int:
    from .tracking import activities_track

    result = activities_track(activity_ids=activity_ids, organisation_id=organisation_id)
    _after_tracking(result)
    hand_off_achievements(result.achieved_targets)
    return result.activities


def hand_off_achievements(target_ids) -> None:
    """After commit, ONE enrolment task for the batch's achieved targets: the filter audience
    groups that read them are refreshed now, so "Target 2: those who achieved Target 1"
    enrols them within seconds, not at the next beat. A broker failure loses nothing that
    the beat's refresh does not bring back."""
    ids = sorted(set(target_ids or ()))
    if not ids:
        return
    from enrolment.tasks import refresh_audience_groups_for_targets

    def send():
        try:
            refresh_audience_groups_for_targets.delay(ids)
        except Exception:  # noqa: BLE001 - any broker failure: the beat refreshes the groups
            log.warning("could not queue the audience hand-off for targets %s", ids, exc_info=True)

    transaction.on_commit(send)


def _after_tracking(result) -> None:
    from .signals import activities_tracked, send_after_commit

    send_after_commit(activities_tracked, result=result)


@shared_task
def track_sweep_pending(older_than_seconds: int = 30, limit: int = 10000) -> int:
    """Re-queue activities left pending (a lost message, a broker outage, a killed worker)
    and failed ones due for a retry, up to `limit` per organisation."""
    from .tracking import activities_due

    ids = activities_due(older_than=timedelta(seconds=older_than_seconds), per_organisation=limit)
    queue_tracking(ids)
    return len(ids)


@shared_task
def evaluate_plan() -> int:
    """Beat only plans: create the due runs and queue their chunks."""
    from .cycle_end import evaluate_cycles

    summary = evaluate_cycles(inline=False)
    _after_evaluation(summary.event_ids)
    return summary.runs


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def evaluate_chunk(run_id: int, lo: int, hi: int) -> int:
    from .cycle_end import evaluation_run_chunk

    ids = evaluation_run_chunk(run_id=run_id, lo=lo, hi=hi)
    _after_evaluation(ids)
    return len(ids)


def _after_evaluation(event_ids) -> None:
    from .signals import cycles_evaluated, send_after_commit

    send_after_commit(cycles_evaluated, event_ids=list(event_ids or ()))


@shared_task
def reprocess_milestone(run_id: int) -> None:
    from .reprocess import reprocess_execute

    reprocess_execute(run_id=run_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def check_near_misses() -> int:
    """Beat: the near-miss events due now (see evaluation/near_miss.py)."""
    from .near_miss import near_misses_check

    return len(near_misses_check())


@shared_task
def maintain_activity_partitions() -> int:
    """Beat: pg_partman creates the activity months ahead (nothing on SQLite)."""
    from .partitions import partitions_maintain

    return len(partitions_maintain())
