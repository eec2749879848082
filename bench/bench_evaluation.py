"""Cycle-end evaluation speed on PostgreSQL: one cycle, N enrolled customers (default
1,000,000), closed by `evaluate_cycles`; prints events/s and peak memory.

    .venv/bin/python bench/bench_evaluation.py [--customers 1000000]
"""

import argparse
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal

from _benchdb import drop, peak_rss_mb, setup

DB = "milestones_bench_evaluation"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="processes sharing the chunks, like Celery workers"
    )
    parser.add_argument("--chunk", type=int, default=None, help="customer ids per chunk")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    setup(DB)
    from django.db import connection

    from evaluation.cycle_end import evaluate_cycles
    from evaluation.models import TargetEvent
    from milestones import services
    from milestones.services.target_groups import target_group_create

    org = services.organisation_get_or_create(slug="bench", name="Bench", tz="UTC")
    services.store_create(organisation=org, code="T1", is_till=True)  # a milestone's till
    group, _ = target_group_create(
        organisation=org, via_api=True,
        data={"name": "Monthly", "start": date(2026, 1, 1), "end": date(2026, 12, 31), "till_code": "T1",
              "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 1, 1), "count": 12},
              "targets": [{"name": "Spend", "kpi": "gross_sales", "value": Decimal(1000),
                           "sub_targets": [{"name": "Half", "criteria": "percentage", "value": Decimal(50)}]}]},
    )  # fmt: skip
    target = group.targets.get()
    period = group.periods.get(ordinal=1)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        n = args.customers
        cur.execute(
            "INSERT INTO enrolment_customer (organisation_id, mobile, name, is_loyalty_member, attributes, created_at) "
            "SELECT %s, '9' || lpad(g::text, 9, '0'), '', true, '{}'::jsonb, now() FROM generate_series(1, %s) g",
            [org.id, n],
        )
        cur.execute(
            "INSERT INTO enrolment_enrolment (organisation_id, target_group_id, customer_id, source, is_active, enrolled_at) "
            "SELECT %s, %s, id, 'api', true, now() FROM enrolment_customer WHERE organisation_id = %s",
            [org.id, group.id, org.id],
        )
        # Every third customer has progress in the cycle; one in ten reached the target.
        cur.execute(
            "INSERT INTO evaluation_progress (organisation_id, target_id, customer_id, cycle_ordinal, period_id, cycle_start, "
            "cycle_end, target_value, achieved, achieved_at, updated_at) "
            "SELECT %s, %s, id, 1, %s, %s, %s, 1000, (id %% 1500), CASE WHEN id %% 1500 >= 1000 THEN now() END, now() "
            "FROM enrolment_customer WHERE organisation_id = %s AND id %% 3 = 0",
            [org.id, target.id, period.id, period.starts_at, period.ends_at, org.id],
        )
        cur.execute("ANALYZE")
    print(f"seeded {n:,} enrolled customers in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    as_of = datetime(2026, 2, 2, tzinfo=UTC)
    if args.chunk:
        from evaluation import cycle_end

        cycle_end.CHUNK_SPAN = args.chunk
    if args.workers > 1:
        summary = _in_processes(as_of, args.workers)
    else:
        summary = evaluate_cycles(as_of=as_of)
    elapsed = time.perf_counter() - t0
    written = TargetEvent.objects.filter(type="period_elapsed").count()
    print(f"evaluation: {summary.events:,} period_elapsed events in {elapsed:.1f} s in {summary.chunks} chunks "
          f"= {summary.events / elapsed:,.0f} events/s (rows in the table: {written:,})")  # fmt: skip
    t0 = time.perf_counter()
    again = evaluate_cycles(as_of=datetime(2026, 2, 2, tzinfo=UTC))
    print(f"second run (idempotent): {again.events} events in {time.perf_counter() - t0:.1f} s")
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"peak memory: this process {peak_rss_mb():.0f} MB, largest worker process {children:.0f} MB"
    )
    if not args.keep:
        drop(DB)


def _chunk(job):
    from evaluation.cycle_end import evaluation_run_chunk

    return len(evaluation_run_chunk(run_id=job[0], lo=job[1], hi=job[2]))


def _in_processes(as_of, workers):
    """Plan like beat, then let `workers` processes take the chunks, as Celery workers would."""
    import multiprocessing

    from django.db import connections

    from evaluation.cycle_end import EvaluationSummary, evaluation_plan

    runs = evaluation_plan(as_of=as_of)
    jobs = [(run.id, lo, hi) for run in runs for lo, hi in run.chunks]
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        counts = pool.map(_chunk, jobs, chunksize=1)
    return EvaluationSummary(runs=len(runs), chunks=len(jobs), events=sum(counts))


if __name__ == "__main__":
    sys.exit(main())
