"""Celery tasks of the webhooks app: thin wrappers around `sending.deliveries_send`.

`deliver_due` is queued after every outbox write commits (`services.queue_sending`) and runs
every minute from beat (`milestones_site.schedules`), which catches what a lost message, a
broker outage or a retry's backoff left due. Concurrent runs take different rows (the claim
skips leased and locked rows), so queuing it twice costs nothing.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

# A run stops taking new batches after this long (the next run, at the latest the minute
# sweep, goes on): one run never holds a worker for long.
TIME_BUDGET_SECONDS = 50


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def deliver_due() -> int:
    from .sending import deliveries_send

    return deliveries_send(time_budget=TIME_BUDGET_SECONDS).attempted
