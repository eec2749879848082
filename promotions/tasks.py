"""Celery tasks (queue "promotions"): thin wrappers taking ids and calling one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError, transaction

log = logging.getLogger(__name__)
CONSUME_CHUNK = 100


def queue_consumption(event_ids) -> None:
    """Queue the consumption of new target events after the current transaction commits.
    A broker outage loses nothing: the events stay unconsumed and the sweep queues them."""
    ids = sorted(set(event_ids or ()))
    if not ids:
        return

    def send():
        for start in range(0, len(ids), CONSUME_CHUNK):
            chunk = ids[start : start + CONSUME_CHUNK]
            try:
                consume_target_events.delay(chunk)
            except Exception:  # noqa: BLE001 - any broker failure: the sweep picks them up
                log.warning("could not queue %d target events; the sweep will", len(chunk))

    transaction.on_commit(send)


def on_tracking(sender, result, **kwargs) -> None:
    """evaluation.signals.activities_tracked: the events a tracking run just wrote."""
    queue_consumption(getattr(result, "events", ()))


def on_evaluation(sender, event_ids, **kwargs) -> None:
    """evaluation.signals.cycles_evaluated: the period-elapsed events a cycle end wrote."""
    queue_consumption(event_ids)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def consume_target_events(event_ids: list[int]) -> int:
    from .consumer import target_events_consume

    return len(target_events_consume(event_ids=event_ids).awards)


@shared_task
def consume_sweep(older_than_seconds: int = 30, limit: int = 5000) -> int:
    """Queue target events nobody consumed (lost message, broker outage, killed worker, a
    failure due for its retry), up to `limit` per organisation, and send emails left pending."""
    from .consumer import events_due
    from .messaging import messages_release_stale

    ids = events_due(older_than=timedelta(seconds=older_than_seconds), per_organisation=limit)
    queue_consumption(ids)
    messages_release_stale()
    try:
        send_messages.delay(None)
    except Exception:  # noqa: BLE001 - broker down: the next sweep tries again
        log.warning("could not queue the sending of pending emails")
    return len(ids)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_messages(message_ids: list[int] | None = None) -> int:
    from .messaging import messages_send

    return messages_send(message_ids=message_ids)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def communications_sweep(target_group_id: int | None = None) -> int:
    """Start-of-period and change-of-target-value communications (the old flow)."""
    from .messaging import communications_sweep as sweep

    return sweep(target_group_id=target_group_id)


def on_target_group_saved(sender, target_group, created, **kwargs) -> None:
    """A milestone's target values may have changed: check its communications soon."""
    from .models import Communication, CommunicationKind

    if created:
        return
    group_id = target_group.id
    if not Communication.objects.filter(
        target_group_id=group_id, kind=CommunicationKind.TARGET_VALUE_CHANGED, is_active=True
    ).exists():
        return

    def send():
        try:
            communications_sweep.delay(group_id)
        except Exception:  # noqa: BLE001 - the periodic sweep will do it
            log.warning("could not queue the communications check of %s", group_id)

    transaction.on_commit(send)
