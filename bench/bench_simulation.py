"""Simulation (backtest) speed on PostgreSQL: one target over N stored transactions of N/10
customers (default 1,000,000 of 100,000) in a three-month window; prints the simulation's
time and, beside it, the floor: a bare `SELECT customer_id, sum(gross) ... GROUP BY
customer_id` over the same rows in the same run, and the ratio of the two.

    .venv/bin/python bench/bench_simulation.py [--transactions 1000000] [--customers 100000]
        [--promotion] [--row-by-row]

By default the target is counted by one query (no promotion to pay: `simulations.sums`);
`--promotion` adds a draft promotion paying each achievement (every customer's events go
through the promotions, set-based still); `--row-by-row` replays activity by activity
(`simulations.fold`), as a target with a rule box would.

The simulation is run as the worker runs it (`simulations.services.simulation_run`: the
scenario built in a rolled-back transaction, then the replay), after the request was
checked as the API checks it.
"""

import argparse
import sys
import time
from datetime import timedelta

from _benchdb import drop, peak_rss_mb, setup

DB = "milestones_bench_simulation"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=None, help="default: transactions / 10")
    parser.add_argument("--promotion", action="store_true", help="pay a draft promotion")
    parser.add_argument("--row-by-row", action="store_true", help="no set-based fold")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    transactions = args.transactions
    customers = args.customers or max(transactions // 10, 1)
    setup(DB)
    from django.conf import settings
    from django.db import connection

    from milestones import services
    from milestones.cycles import add_months
    from milestones.selectors import org_today
    from simulations.services import simulation_create, simulation_run

    org = services.organisation_get_or_create(slug="bench", name="Bench", tz="UTC")
    user, _ = services.user_get_or_create(organisation=org, username="bench", role="configurer")
    services.store_create(organisation=org, code="S1")
    services.store_create(organisation=org, code="T1", is_till=True)
    first = org_today(org).replace(day=1)
    start, end = add_months(first, -3), first - timedelta(days=1)
    seconds = int((end - start).days + 1) * 86400

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO enrolment_customer (organisation_id, mobile, name, is_loyalty_member, "
            "attributes, created_at) SELECT %s, '9' || lpad(g::text, 9, '0'), '', true, '{}'::jsonb, "
            "now() FROM generate_series(1, %s) g",
            [org.id, customers],
        )
        cur.execute("SELECT min(id) FROM enrolment_customer WHERE organisation_id = %s", [org.id])
        (lo,) = cur.fetchone()
        # Every customer gets transactions spread over the window: gross 10..2,009, bills of one
        # line item; a customer's month sums to about 10 x 1,000 / 3.
        cur.execute(
            "INSERT INTO evaluation_activity (organisation_id, external_id, type, customer_id, "
            "occurred_at, store_code, name, bill_number, payload, status, attempts, error, "
            "received_at, processed_at) "
            "SELECT %s, 't' || g, 'transaction', %s + (g %% %s), "
            "%s::timestamptz + make_interval(secs => (g::bigint * 7919) %% %s), 'S1', '', 'B' || g, "
            "jsonb_build_object('gross', ((g * 37) %% 2000 + 10)::text, 'discount', '0', "
            "'net', ((g * 37) %% 2000 + 10)::text, 'line_items', jsonb_build_array(jsonb_build_object("
            "'sku', 'P-1', 'quantity', '1', 'gross', ((g * 37) %% 2000 + 10)::text))), "
            "'done', 0, '', now(), now() FROM generate_series(1, %s) g",
            [org.id, lo, customers, f"{start.isoformat()} 00:00:00+00", seconds, transactions],
        )
        cur.execute("ANALYZE")
    print(f"seeded {customers:,} customers and {transactions:,} transactions "
          f"({start} to {end}) in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    body = {
        "target_group": {
            "name": "Monthly spend", "start": start.isoformat(), "end": end.isoformat(),
            "till_code": "T1", "cycle": {"type": "fixed_calendar", "frequency": "monthly"},
            "targets": [{"name": "Spend 5000", "kpi": "gross_sales", "value": "5000",
                         "sub_targets": [{"name": "Half", "criteria": "percentage", "value": "50"}]}],
        },
        "window": {"start": start.isoformat(), "end": end.isoformat()},
    }  # fmt: skip
    if args.promotion:
        body["draft_promotions"] = [{"name": "Reached", "condition": "currentEvent.isTargetAchievedEvent",
                                     "actions": [{"type": "award_points", "points": 100}]}]  # fmt: skip
    if args.row_by_row:
        settings.SIMULATION_SET_BASED = False
    how = (
        "row by row"
        if args.row_by_row
        else "set-based" + (", with a promotion" if args.promotion else "")
    )
    t0 = time.perf_counter()
    simulation = simulation_create(organisation=org, user=user, data=body, queue=False)
    checked = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulation = simulation_run(simulation_id=simulation.pk)
    simulated = time.perf_counter() - t0
    if simulation.status != "done":
        print(f"simulation {simulation.status}: {simulation.error}")
        return 1

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT customer_id, sum((payload->>'gross')::numeric) FROM evaluation_activity "
            "WHERE organisation_id = %s AND status = 'done' AND occurred_at >= %s "
            "AND occurred_at < %s GROUP BY customer_id",
            [org.id, f"{start.isoformat()} 00:00:00+00",
             f"{(end + timedelta(days=1)).isoformat()} 00:00:00+00"],
        )  # fmt: skip
        rows = cur.fetchall()
    floor = time.perf_counter() - t0

    (target,) = simulation.result["targets"]
    for c in target["cycles"]:
        print(f"  {c['name']}: {c['participants']:,} taking part, {c['achieved']:,} reached "
              f"the target, {c['sub_targets'][0]['reached']:,} the half; median {c['median']}, "
              f"top {c['top']}")  # fmt: skip
    print(f"request checked (scenario built, rolled back): {checked:.2f} s")
    print(f"simulation ({how}): {transactions:,} transactions of {simulation.total:,} customers "
          f"in {simulated:.1f} s ({transactions / simulated:,.0f} transactions/s)")  # fmt: skip
    if args.promotion:
        print(f"liability: {simulation.result['liability']}")
    print(f"floor (bare SELECT customer_id, sum(gross) ... GROUP BY customer_id, {len(rows):,} "
          f"rows): {floor:.2f} s")  # fmt: skip
    print(f"ratio simulation / floor: {simulated / floor:.1f}")
    print(f"peak memory: {peak_rss_mb():.0f} MB")
    if not args.keep:
        drop(DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
