"""Leaderboard reads on PostgreSQL: N progress rows in one period (default 1,000,000);
prints p50/p95 of the top-100 and of a customer's rank, through the API views' functions.

    .venv/bin/python bench/bench_leaderboard.py [--rows 1000000] [--samples 200]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import date
from decimal import Decimal

from _benchdb import drop, setup

DB = "milestones_bench_leaderboard"


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    setup(DB)
    from django.db import connection

    from evaluation.leaderboards import rank_of, top
    from milestones import services
    from milestones.services.target_groups import target_group_create

    org = services.organisation_get_or_create(slug="bench", name="Bench", tz="UTC")
    services.store_create(organisation=org, code="T1", is_till=True)  # a milestone's till
    group, _ = target_group_create(
        organisation=org, via_api=True,
        data={"name": "Board", "start": date(2026, 1, 1), "end": date(2026, 12, 31), "leaderboard_enabled": True,
              "till_code": "T1",
              "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 1, 1), "count": 12},
              "targets": [{"name": "Spend", "kpi": "gross_sales", "value": Decimal(1000)}]},
    )  # fmt: skip
    target = group.targets.get()
    period = group.periods.get(ordinal=1)
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO enrolment_customer (organisation_id, mobile, name, is_loyalty_member, attributes, created_at) "
            "SELECT %s, '9' || lpad(g::text, 9, '0'), '', true, '{}'::jsonb, now() FROM generate_series(1, %s) g",
            [org.id, args.rows],
        )
        cur.execute(
            "INSERT INTO evaluation_progress (organisation_id, target_id, customer_id, cycle_ordinal, period_id, cycle_start, "
            "cycle_end, target_value, achieved, reached_at, updated_at) "
            "SELECT %s, %s, id, 1, %s, %s, %s, 1000, (random() * 5000)::int + 1, now() - (random() * interval '20 days'), now() "
            "FROM enrolment_customer WHERE organisation_id = %s",
            [org.id, target.id, period.id, period.starts_at, period.ends_at, org.id],
        )
        cur.execute("ANALYZE")
        cur.execute("SELECT min(id), max(id) FROM enrolment_customer")
        lo, hi = cur.fetchone()
    tops, ranks = [], []
    for _ in range(args.samples):
        t0 = time.perf_counter()
        rows = top(target=target, ordinal=1, limit=100)
        tops.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rank_of(target_id=target.id, ordinal=1, customer_id=random.randint(lo, hi))
        ranks.append(time.perf_counter() - t0)
    assert len(rows) == 100
    print(f"{args.rows:,} progress rows in one period")
    print(f"top-100:        p50 {pct(tops, 0.5):.1f} ms  p95 {pct(tops, 0.95):.1f} ms")
    print(
        f"customer rank:  p50 {pct(ranks, 0.5):.1f} ms  p95 {pct(ranks, 0.95):.1f} ms  (mean {statistics.mean(ranks) * 1000:.1f} ms)"
    )
    if not args.keep:
        drop(DB)


if __name__ == "__main__":
    sys.exit(main())
