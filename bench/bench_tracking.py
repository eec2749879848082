"""Tracking throughput, end to end, on PostgreSQL + Redis.

N customers, 50 live milestones (20 of them match every transaction, 30 never do), T
transactions posted through the bulk API in batches of 1,000 and tracked by a real Celery
worker (2 processes, --concurrency). Prints transactions/s end to end, queries per activity and peak memory.

    .venv/bin/python bench/bench_tracking.py [--customers 100000] [--transactions 200000]
"""

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

from _benchdb import ROOT, drop, peak_rss_mb, setup

DB = "milestones_bench_tracking"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    os.environ["CELERY_KEY_PREFIX"] = f"bench-{os.getpid()}:"
    url = setup(DB)

    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from rest_framework.test import APIClient

    from enrolment.models import Customer
    from evaluation.models import Activity, ActivityStatus, Progress
    from evaluation.tracking import activities_track
    from milestones import services
    from milestones.services.target_groups import target_group_create

    org = services.organisation_get_or_create(slug="bench", name="Bench", tz="UTC")
    user, token = services.user_get_or_create(
        organisation=org, username="bench", role="integration"
    )
    admin, _ = services.user_get_or_create(
        organisation=org, username="bench-admin", role="configurer"
    )
    services.store_create(organisation=org, code="S1")
    services.store_create(organisation=org, code="T1", is_till=True)  # the milestones' till
    today = timezone.now().date()
    start, end = today.replace(day=1), today.replace(day=1) + timedelta(days=400)
    for i in range(50):
        rule = "currentTxn.value >= 1" if i < 20 else "currentTxn.value >= 1000000000"
        target_group_create(
            organisation=org, user=admin, via_api=True,
            data={"name": f"M{i}", "start": start, "end": end, "till_code": "T1",
                  "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": start, "count": 12},
                  "targets": [{"name": f"M{i} spend", "kpi": "gross_sales", "value": Decimal(5000), "rule": rule,
                               "sub_targets": [{"name": f"M{i} half", "criteria": "percentage", "value": Decimal(50)}]}]},
        )  # fmt: skip
    Customer.objects.bulk_create(
        [Customer(organisation=org, mobile=f"9{n:09d}") for n in range(args.customers)],
        batch_size=5000,
    )
    print(f"seeded {args.customers} customers, 50 milestones (20 matching every transaction)")

    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "milestones_site", "worker", "-c", str(args.concurrency), "-Q", "tracking,default", "--loglevel=warning"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
    )  # fmt: skip
    try:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        now = timezone.now() - timedelta(minutes=5)
        t0 = time.perf_counter()
        sent = 0
        while sent < args.transactions:
            n = min(1000, args.transactions - sent)
            batch = [
                {"id": f"b-{sent + k}", "type": "transaction", "customer": {"mobile": f"9{(sent + k) % args.customers:09d}"},
                 "occurred_at": (now + timedelta(microseconds=sent + k)).isoformat(), "store": "S1", "gross": 10 + (sent + k) % 90}
                for k in range(n)
            ]  # fmt: skip
            response = client.post("/api/v1/activities/", batch, format="json")
            assert response.status_code == 202, response.content[:500]
            sent += n
        t_ingest = time.perf_counter() - t0
        while Activity.objects.filter(status=ActivityStatus.PENDING).exists():
            time.sleep(0.5)
        t_total = time.perf_counter() - t0
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    progress_rows = Progress.objects.count()
    # Queries per activity: one batch of 200 tracked again in this process, counted.
    extra = list(Customer.objects.order_by("id")[:1])
    ids = []
    for k in range(200):
        ids.append(Activity.objects.create(organisation=org, external_id=f"q-{k}", type="transaction", customer_id=Customer.objects.order_by("id")[k].id,
                                           occurred_at=timezone.now() - timedelta(minutes=1), store_code="S1", payload={"gross": "10", "net": "10"}).id)  # fmt: skip
    reset_queries()
    with CaptureQueriesContext(connection) as ctx:
        activities_track(activity_ids=ids)
    del extra
    print(
        f"transactions: {args.transactions}  customers: {args.customers}  progress rows: {progress_rows}"
    )
    print(
        f"ingest through the API: {args.transactions / t_ingest:,.0f} transactions/s ({t_ingest:.1f} s)"
    )
    print(
        f"end to end (posted and tracked by the worker): {args.transactions / t_total:,.0f} transactions/s ({t_total:.1f} s)"
    )
    print(f"queries per activity (tracking, batch of 200): {len(ctx.captured_queries) / 200:.1f}")
    print(f"peak memory of this process: {peak_rss_mb():.0f} MB")
    if not args.keep:
        drop(DB)


if __name__ == "__main__":
    sys.exit(main())
