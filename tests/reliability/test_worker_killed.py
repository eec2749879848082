"""SIGKILL of a real worker (pool children included) in the middle of tracking, evaluation
and award tasks. After restarts and what beat does every minute (the sweepers, the
planner once its lease expired), totals, events and awards are exact: nothing twice,
nothing missing."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from evaluation import cycle_end
from evaluation.ingest import activities_ingest
from evaluation.models import Activity, ActivityStatus, EvaluationRun, RunStatus, TargetEvent
from evaluation.tasks import track_sweep_pending
from evaluation.tracking import activities_track
from promotions.models import Award
from promotions.services import promotion_create
from promotions.tasks import consume_sweep

from .conftest import WorkerProcess, batch, gross_by_mobile, progress_by_mobile, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="watches the worker's transactions in pg_stat_activity",
    ),
]
CUSTOMERS = 80
POINTS = Decimal(10)
QUEUES = "tracking,evaluation,promotions,default"
IN_FLIGHT = """
    SELECT query FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND xact_start IS NOT NULL AND state IN ('active', 'idle in transaction')
"""
KINDS = {
    # The claim of pending activities, or the progress and contributions written with it.
    "tracking": re.compile(
        r'UPDATE "evaluation_activity" SET "status"|INSERT INTO "evaluation_(progress|contribution)"'
        r"|UPDATE evaluation_progress SET achieved"
    ),
    "evaluation": re.compile(r"evaluation_evaluationrun|'period_elapsed'"),
    "awards": re.compile(r"promotions_award|UPDATE \"evaluation_targetevent\" SET \"consumed_at\""),
}


def kill_in_flight(worker: WorkerProcess, kind: str, seconds: float = 20) -> str:
    """SIGKILL the worker as soon as one of its transactions of this kind is open."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(IN_FLIGHT)
            queries = [row[0] for row in cursor.fetchall()]
        hit = next((q for q in queries if KINDS[kind].search(q)), None)
        if hit:
            worker.kill()
            return hit
        time.sleep(0.01)
    raise AssertionError(f"no {kind} transaction seen in {seconds} s")


def _left() -> dict:
    """Work not done yet (empty when everything settled)."""
    left = {
        "pending activities": Activity.objects.filter(status=ActivityStatus.PENDING).count(),
        "unfinished runs": EvaluationRun.objects.exclude(status=RunStatus.DONE).count(),
        "unconsumed events": TargetEvent.objects.filter(consumed_at__isnull=True).count(),
    }
    return {k: v for k, v in left.items() if v}


def test_killing_the_worker_mid_task_loses_nothing_and_pays_nothing_twice(
    org, make_group, configurer, api, integration, private_redis, use_broker, tmp_path, monkeypatch
):
    prefix = f"kill-{time.time_ns()}:"
    use_broker(private_redis.url, prefix)
    closed = make_group("Closed", end=date(2026, 3, 31), cycle={
        "type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 3, 1), "count": 1})  # fmt: skip
    month = timezone.localdate(timezone.now(), org.tzinfo).replace(day=1)  # not due: it is on
    live = make_group("Live", value=Decimal(30), start=month, end=month + timedelta(days=62), cycle={
        "type": "fixed_calendar", "frequency": "monthly", "start": month, "count": 2})  # fmt: skip
    promotion_create(organisation=org, user=configurer, data={
        "name": "Every event", "activity": "target_period_elapsed", "start": date(2026, 1, 1),
        "end": month + timedelta(days=400), "condition": "true",
        "actions": [{"type": "award_points", "basis": "fixed", "points": POINTS}]})  # fmt: skip
    # March, tracked here: the closed cycle's progress, which its evaluation will report.
    march = batch(CUSTOMERS, prefix="march", customers=CUSTOMERS, json=False)
    activities_ingest(organisation=org, items=march)
    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)))
    TargetEvent.objects.update(consumed_at=timezone.now())  # none expected; keep it clean

    worker = WorkerProcess(broker_url=private_redis.url, prefix=prefix, queues=QUEUES,
                           log=tmp_path / "worker.log", FAULT_SLOW_SQL_SECONDS=0.01)  # fmt: skip
    killed = {}
    try:
        worker.start()
        # 1. Tracking: live activities (this month) posted through the API, 9 tasks.
        client = api(integration)
        first = timezone.now() - timedelta(minutes=15)  # this month, unless it began 15 min ago
        posted = [batch(CUSTOMERS, prefix=f"live{k}", customers=CUSTOMERS, step=timedelta(seconds=1),
                        start=first + k * CUSTOMERS * timedelta(seconds=1)) for k in range(9)]  # fmt: skip
        for items in posted:
            assert client.post("/api/v1/activities/", items, format="json").status_code == 202
        killed["tracking"] = kill_in_flight(worker, "tracking")
        assert _left()["pending activities"]  # the killed task's claim was rolled back
        worker.start()
        # 2. Evaluation of March: the planner queues one chunk per 8 customer ids.
        monkeypatch.setattr(cycle_end, "CHUNK_SPAN", 8)
        cycle_end.evaluate_cycles(inline=False)
        killed["evaluation"] = kill_in_flight(worker, "evaluation")
        assert _left()["unfinished runs"]
        worker.start()
        # 3. Awards for the achievement and period-elapsed events.
        killed["awards"] = kill_in_flight(worker, "awards")
        assert _left()["unconsumed events"]
        worker.env["FAULT_SLOW_SQL_SECONDS"] = "0"  # the last start at full speed
        worker.start()

        # Beat, every minute: sweepers; the planner re-queues runs once their lease expired.
        monkeypatch.setattr(cycle_end, "REQUEUE_AFTER", timedelta(0))
        for _beat in range(3):
            track_sweep_pending(older_than_seconds=0)
            cycle_end.evaluate_cycles(inline=False)
            consume_sweep(older_than_seconds=0)
            if wait_for(lambda: not _left(), seconds=15):
                break

        assert not _left(), _left()
    finally:
        worker.stop()
        print({k: v[:120] for k, v in killed.items()})

    # Tracking: every live activity counted once.
    assert progress_by_mobile(live.targets.get()) == gross_by_mobile(*posted)
    assert Activity.objects.filter(external_id__startswith="live").count() == 9 * CUSTOMERS
    achieved = TargetEvent.objects.filter(type="target_achieved", target_group=live)
    winners = sorted(m for m, total in gross_by_mobile(*posted).items() if total >= 30)
    assert 0 < len(winners) < CUSTOMERS
    assert sorted(achieved.values_list("customer__mobile", flat=True)) == winners
    # Evaluation: one run, every chunk once, one event per customer.
    run = EvaluationRun.objects.get()
    assert run.status == RunStatus.DONE and len(run.chunks) == len(run.chunks_done) == 10
    assert (run.processed, run.events_written) == (CUSTOMERS, CUSTOMERS)
    elapsed = TargetEvent.objects.filter(type="period_elapsed", target_group=closed)
    assert elapsed.count() == CUSTOMERS
    expected_march = gross_by_mobile(march)
    assert {
        e.customer.mobile: e.achieved for e in elapsed.select_related("customer")
    } == expected_march
    # Awards: one per event and action, none missing, none twice; points fed back once.
    assert TargetEvent.objects.count() == CUSTOMERS + len(winners)  # nothing else happened
    assert Award.objects.count() == CUSTOMERS + len(winners)
    assert not Award.objects.values("event").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert Award.objects.aggregate(s=Sum("points"))["s"] == POINTS * (CUSTOMERS + len(winners))
    fed = Activity.objects.filter(external_id__startswith="award-")
    assert fed.count() == Award.objects.count()
    assert not fed.exclude(status=ActivityStatus.DONE).exists()
