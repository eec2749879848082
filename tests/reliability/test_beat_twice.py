"""Beat started twice: two planning tasks for the same due cycles at the same moment still
evaluate each cycle once: one run per period, its chunks queued once, one period-elapsed
event per customer and cycle."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_prerun
from django.db import connections
from django.db.models import Count
from django.utils import timezone

from evaluation.cycle_end import evaluate_per_customer_cycles
from evaluation.ingest import activities_ingest
from evaluation.models import Activity, EvaluationRun, RunStatus, TargetEvent
from evaluation.tasks import evaluate_plan
from evaluation.tracking import activities_track
from milestones_site.celery import app

from .conftest import batch, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
CUSTOMERS = 60


def test_two_beats_planning_at_once_evaluate_each_cycle_once(org, make_group):
    monthly = make_group("Quarter", end=date(2026, 3, 31), cycle={
        "type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 1, 1), "count": 3})  # fmt: skip
    make_group("Till", end=date(2026, 3, 31), cycle={
        "type": "till_achievement", "start": date(2026, 1, 1), "count": 1})  # fmt: skip
    activities_ingest(organisation=org, items=batch(2 * CUSTOMERS, prefix="q", customers=CUSTOMERS, json=False))  # fmt: skip
    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)))

    barrier, errors, planned = threading.Barrier(2), [], []

    def beat():
        try:
            barrier.wait()
            planned.append(evaluate_plan())  # the task body, as two workers would run it
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    chunks_run = []

    def count_chunks(sender=None, args=None, **kwargs):
        if sender.name == "evaluation.tasks.evaluate_chunk":
            chunks_run.append(tuple(args))

    task_prerun.connect(count_chunks)
    try:
        threads = [threading.Thread(target=beat) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert EvaluationRun.objects.count() == 3  # January, February, March
        with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1,
                          queues=["evaluation", "promotions", "default"]):  # fmt: skip
            assert wait_for(
                lambda: not EvaluationRun.objects.exclude(status=RunStatus.DONE).exists(), 60
            )
            # Let any second copy of a chunk (there must be none) reach the worker.
            wait_for(lambda: len(chunks_run) > 3, 2)
    finally:
        task_prerun.disconnect(count_chunks)

    runs = list(EvaluationRun.objects.all())
    assert sorted(chunks_run) == sorted((r.id, *r.chunks[0]) for r in runs)  # each queued once
    assert all(len(r.chunks) == 1 for r in runs)
    assert [(r.processed, r.events_written) for r in runs] == [(CUSTOMERS, CUSTOMERS)] * 3
    elapsed = TargetEvent.objects.filter(type="period_elapsed")
    assert elapsed.filter(target_group=monthly).count() == 3 * CUSTOMERS
    assert elapsed.exclude(target_group=monthly).count() == CUSTOMERS  # the per-customer cycles
    assert not (
        elapsed.values("customer", "target", "cycle_ordinal")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )


def test_two_planners_racing_on_per_customer_cycles_each_count_only_their_own(org, make_group):
    """Both write nothing twice (unique keys), and each planner reports only the events it
    wrote itself, so the two summaries add up to exactly one event per customer."""
    group = make_group("Till", end=date(2026, 3, 31), cycle={
        "type": "till_achievement", "start": date(2026, 1, 1), "count": 1})  # fmt: skip
    activities_ingest(organisation=org, items=batch(CUSTOMERS, prefix="t", customers=CUSTOMERS, json=False))  # fmt: skip
    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)))
    barrier, errors, claimed = threading.Barrier(2), [], []

    def plan():
        try:
            barrier.wait()
            claimed.append(evaluate_per_customer_cycles(as_of=timezone.now()))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=plan) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [i for mine in claimed for i in mine]
    written = TargetEvent.objects.filter(type="period_elapsed", target_group=group)
    assert len(ids) == len(set(ids)) == written.count() == CUSTOMERS
    assert set(ids) == set(written.values_list("id", flat=True))
