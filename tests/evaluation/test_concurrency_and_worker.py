"""Exact totals under concurrent workers (PostgreSQL) and the real broker path."""

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection, connections

from enrolment.models import Customer
from evaluation.ingest import activities_ingest
from evaluation.models import Activity, ActivityStatus, Progress, TargetEvent
from evaluation.tasks import track_sweep_pending
from evaluation.tracking import activities_track
from milestones_site.celery import app

ALL_QUEUES = ["default", "tracking", "evaluation", "ingest", "promotions"]


def _items(n, *, mobile="9000000001", start=datetime(2026, 3, 2, tzinfo=UTC)):
    return [
        {
            "id": f"t-{mobile}-{i}",
            "type": "transaction",
            "customer": {"mobile": mobile},
            "occurred_at": start + timedelta(minutes=i),
            "gross": Decimal(i % 7 + 1),
            "bill_number": f"B{i}",
        }
        for i in range(n)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are a PostgreSQL matter")
def test_two_workers_on_the_same_customer_give_exact_totals_and_one_event_per_crossing(
    org, make_group
):
    group = make_group(targets=[{"name": "Spend", "kpi": "gross_sales", "value": Decimal(500),
                                 "sub_targets": [{"name": "S100", "criteria": "absolute", "value": Decimal(100)}]}])  # fmt: skip
    items = _items(300)
    activities_ingest(organisation=org, items=items)
    ids = list(Activity.objects.values_list("id", flat=True))
    now = datetime(2026, 3, 10, tzinfo=UTC)
    errors = []

    def worker(batch):
        try:
            for start in range(0, len(batch), 25):
                activities_track(activity_ids=batch[start : start + 25], now=now)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    batches = [random.sample(ids, len(ids)) for _ in range(2)] + [ids[::2], ids[1::2]]
    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = sum(item["gross"] for item in items)
    progress = Progress.objects.get(target=group.targets.get())
    assert progress.achieved == expected
    assert progress.contributions.count() == 300
    assert TargetEvent.objects.filter(type="sub_target_achieved").count() == 1
    assert TargetEvent.objects.filter(type="target_achieved").count() == 1
    assert not Activity.objects.filter(status=ActivityStatus.PENDING).exists()


def _wait_for(predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_posted_activities_are_tracked_by_a_worker_through_the_broker(api, integration, make_group):
    group = make_group(start=datetime(2026, 1, 1).date(), end=datetime(2027, 12, 31).date(),
                       cycle={"type": "till_achievement", "start": datetime(2026, 1, 1).date(), "count": 5})  # fmt: skip
    now = datetime.now(UTC) - timedelta(minutes=5)
    items = [{"id": f"w-{i}", "type": "transaction", "customer": {"mobile": "9000000001"}, "occurred_at": (now + timedelta(seconds=i)).isoformat(), "gross": 10}
             for i in range(20)]  # fmt: skip
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1, queues=ALL_QUEUES):
        response = api(integration).post("/api/v1/activities/", items, format="json")
        assert response.status_code == 202
        assert _wait_for(
            lambda: not Activity.objects.filter(status=ActivityStatus.PENDING).exists()
        )
    assert Progress.objects.get(target=group.targets.get()).achieved == 200


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_requeues_activities_whose_message_was_lost(org, make_group):
    group = make_group(start=datetime(2026, 1, 1).date(), end=datetime(2027, 12, 31).date(),
                       cycle={"type": "till_achievement", "start": datetime(2026, 1, 1).date(), "count": 5})  # fmt: skip
    customer = Customer.objects.create(organisation=org, mobile="9000000001")
    old = datetime.now(UTC) - timedelta(minutes=10)
    Activity.objects.create(
        organisation=org,
        external_id="lost-1",
        type="transaction",
        customer=customer,
        occurred_at=old,
        payload={"gross": "25"},
    )
    Activity.objects.filter(external_id="lost-1").update(received_at=old)
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1, queues=ALL_QUEUES):
        assert track_sweep_pending(older_than_seconds=30) == 1
        assert _wait_for(
            lambda: Activity.objects.get(external_id="lost-1").status == ActivityStatus.DONE
        )
    assert Progress.objects.get(target=group.targets.get()).achieved == 25
