"""Benchmark: render time of the member-care Milestones page on PostgreSQL.

    .venv/bin/python bench/bench_membercare.py [--customers N] [--runs N] [--keep]

Creates its own database (milestones_bench_care, dropped at the end unless --keep) on the
server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), migrates it and
builds a realistic data set:

- one organisation (Asia/Kolkata), 20 milestones of 12 monthly cycles each (8 cycles over,
  the 9th ongoing, 3 to come), one gross-sales target each with three sub-targets;
- N background customers (default 10,000) enrolled in all 20, with a progress row in every
  started cycle and a sub-target event for most of them (set-based INSERT ... SELECT);
- the customer the agent looks at: in all 20 milestones (240 cycles), progress in the
  started cycles, sub-target and achievement events, and an award in the ledger for each
  event (so the page lists actions).

Then a member-care agent's requests go through the whole Django stack (test client:
middleware, session, view, selector, templates) `--runs` times each after a warm-up, and the
p50/p95/p99 render times, the query count and the page size are printed for: the page as
opened (20 panes, the first target's information and 12-cycle timeline), the page opened on
each target in turn, and the fragment a click on a pane fetches. The milestone insights page
(configurers) of one of the milestones is timed too.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GROUPS, CYCLES, STARTED = 20, 12, 9  # cycles 1..8 over, 9 ongoing, 10..12 to come


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def build(customers: int):
    """The data set; returns (agent, configurer, customer, first milestone)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from enrolment.models import Customer, Enrolment, EnrolmentSource
    from evaluation.models import Progress, TargetEvent, TargetEventType
    from milestones.cycles import add_months
    from milestones.models import Organisation, Role, Store, User
    from milestones.selectors import org_today
    from milestones.services.target_groups import target_group_create

    org = Organisation.objects.create(slug="acme", name="Acme", timezone="Asia/Kolkata")
    # the milestones' till
    Store.objects.create(organisation=org, code="T1", name="Till", is_till=True)
    configurer = User.objects.create_user("alice", organisation=org, role=Role.CONFIGURER, is_staff=True)  # fmt: skip
    agent = User.objects.create_user("bob", organisation=org, role=Role.MEMBER_CARE, is_staff=True)
    start = add_months(org_today(org).replace(day=1), -(STARTED - 1))
    groups = []
    for g in range(GROUPS):
        group, _ = target_group_create(
            organisation=org, user=configurer, via_api=True,
            data={"name": f"Milestone {g + 1:02d}", "start": start,
                  "end": add_months(start, CYCLES) - timedelta(days=1), "till_code": "T1",
                  "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": CYCLES},
                  "enrolment": {"mode": "custom_list"},
                  "targets": [{"name": f"Spend {g + 1:02d}", "kpi": "gross_sales",
                               "value": Decimal(10000) + 500 * g, "sub_targets": [
                                   {"name": "Quarter", "criteria": "percentage", "value": 25},
                                   {"name": "Half", "criteria": "percentage", "value": 50},
                                   {"name": "Almost", "criteria": "percentage", "value": 80}]}]},
        )  # fmt: skip
        groups.append(group)
    now = timezone.now()

    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO enrolment_customer (organisation_id, mobile, name, is_loyalty_member,
                   attributes, created_at)
               SELECT %s, (9100000000 + n)::text, 'Customer ' || n, true, '{}', now()
               FROM generate_series(1, %s) n""",
            [org.id, customers],
        )
        cur.execute(
            """INSERT INTO enrolment_enrolment (organisation_id, target_group_id, customer_id,
                   source, is_active, enrolled_at)
               SELECT %s, g.id, c.id, 'custom_list', true, now()
               FROM enrolment_customer c CROSS JOIN milestones_targetgroup g
               WHERE c.organisation_id = %s AND g.organisation_id = %s""",
            [org.id, org.id, org.id],
        )
        # achieved: a spread from 0 to 130% of the target; achieved_at when over it
        cur.execute(
            """INSERT INTO evaluation_progress (organisation_id, target_id, customer_id,
                   cycle_ordinal, period_id, cycle_start, cycle_end, target_value, achieved,
                   achieved_at, reached_at, updated_at)
               SELECT %(org)s, t.id, c.id, p.ordinal, p.id, p.starts_at, p.ends_at, t.value, v.a,
                      CASE WHEN v.a >= t.value THEN p.starts_at + interval '20 days' END,
                      p.starts_at + interval '20 days', now()
               FROM enrolment_customer c
               JOIN milestones_target t ON t.organisation_id = %(org)s
               JOIN milestones_period p ON p.target_group_id = t.target_group_id
               CROSS JOIN LATERAL (SELECT round(t.value * ((c.id * 7919 + p.ordinal * 104729
                    + t.id * 31) %% 131) / 100.0, 4) AS a) v
               WHERE c.organisation_id = %(org)s AND p.starts_at <= %(now)s""",
            {"org": org.id, "now": now},
        )
        cur.execute(
            """INSERT INTO evaluation_targetevent (organisation_id, type, dedupe_key, customer_id,
                   target_group_id, target_id, sub_target_id, cycle_ordinal, period_name,
                   achieved, defined, milestone_triggers, is_target_achieved_event,
                   occurred_at, created_at)
               SELECT %(org)s, 'sub_target_achieved',
                      'sub:' || pr.target_id || ':' || pr.customer_id || ':' || pr.cycle_ordinal
                        || ':' || s.id,
                      pr.customer_id, t.target_group_id, pr.target_id, s.id, pr.cycle_ordinal,
                      '', pr.achieved, pr.target_value, '[]', false,
                      pr.cycle_start + interval '10 days', now()
               FROM evaluation_progress pr
               JOIN milestones_target t ON t.id = pr.target_id
               JOIN milestones_subtarget s ON s.target_id = pr.target_id AND s.name = 'Quarter'
               WHERE pr.organisation_id = %(org)s AND pr.achieved >= pr.target_value * 0.25""",
            {"org": org.id},
        )
        cur.execute("ANALYZE")
    counts = {
        "customers": Customer.objects.count(),
        "enrolments": Enrolment.objects.count(),
        "progress rows": Progress.objects.count(),
        "target events": TargetEvent.objects.count(),
    }
    print(f"background data in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{v:,} {k}" for k, v in counts.items()))  # fmt: skip

    # the customer the agent opens
    customer = Customer.objects.create(organisation=org, mobile="9000000001", name="Asha Rao",
                                       email="asha@example.com", external_id="C-1")  # fmt: skip
    progress, events = [], []
    for g, group in enumerate(groups):
        Enrolment.objects.create(organisation=org, target_group=group, customer=customer,
                                 source=EnrolmentSource.CUSTOM_LIST)  # fmt: skip
        target = group.targets.get()
        subs = list(target.sub_targets.all())
        for p in group.periods.all():
            if p.starts_at > now:
                continue
            share = Decimal((37 * p.ordinal + 11 * g) % 140) / 100
            achieved = (target.value * share).quantize(Decimal("0.01"))
            hit = achieved >= target.value
            progress.append(Progress(organisation=org, target=target, customer=customer,
                cycle_ordinal=p.ordinal, period=p, cycle_start=p.starts_at, cycle_end=p.ends_at,
                target_value=target.value, achieved=achieved, reached_at=p.starts_at,
                achieved_at=p.starts_at + timedelta(days=25) if hit else None))  # fmt: skip
            for k, s in enumerate(subs):
                if achieved >= s.threshold(target.value):
                    events.append(TargetEvent(organisation=org, type=TargetEventType.SUB_TARGET_ACHIEVED,
                        dedupe_key=f"bench:{target.id}:{p.ordinal}:{s.id}", customer=customer,
                        target_group=group, target=target, sub_target=s, cycle_ordinal=p.ordinal,
                        period_name=p.name, occurred_at=p.starts_at + timedelta(days=3 + 5 * k)))  # fmt: skip
            if hit:
                events.append(TargetEvent(organisation=org, type=TargetEventType.TARGET_ACHIEVED,
                    dedupe_key=f"bench:{target.id}:{p.ordinal}:done", customer=customer,
                    target_group=group, target=target, cycle_ordinal=p.ordinal, period_name=p.name,
                    is_target_achieved_event=True, occurred_at=p.starts_at + timedelta(days=25)))  # fmt: skip
    Progress.objects.bulk_create(progress)
    TargetEvent.objects.bulk_create(events)
    awards = _awards(org, customer, configurer)
    print(f"the customer: {len(groups)} milestones, {len(groups) * CYCLES} cycles, "
          f"{len(progress)} progress rows, {len(events)} events, {awards} awards")  # fmt: skip
    return agent, configurer, customer, groups[0]


def _awards(org, customer, user) -> int:
    """One ledger row per event of the customer (when the promotions ledger is installed)."""
    from django.apps import apps

    try:
        award = apps.get_model("promotions", "Award")
        promotion_model = apps.get_model("promotions", "Promotion")
    except LookupError:
        return 0
    from evaluation.models import TargetEvent

    events = list(TargetEvent.objects.filter(customer=customer).select_related("target_group"))
    first = min(e.target_group.start for e in events)
    last = max(e.target_group.end for e in events)
    promotion = promotion_model.objects.create(
        organisation=org, name="Bench bonus", start=first, end=last, created_by=user,
        condition="currentEvent.isTargetAchievedEvent == true",
    )  # fmt: skip
    award.objects.bulk_create(
        award(organisation=org, promotion=promotion, event=e, action_index=0, type="award_points",
              status="done", customer=customer, target_group=e.target_group, target_id=e.target_id,
              period=e.period_name, cycle_ordinal=e.cycle_ordinal, points=50,
              points_type="regular", awarded_at=e.occurred_at)
        for e in events
    )  # fmt: skip
    return len(events)


def time_page(client, urls: list[str], runs: int, warmup: int = 10) -> tuple[list[float], int, int]:
    """Render times (ms) of `runs` requests cycling through `urls`; the query count and the
    size of the first one."""
    from django.db import connection

    for i in range(warmup):
        assert client.get(urls[i % len(urls)]).status_code == 200
    queries = []
    with connection.execute_wrapper(lambda execute, *a: queries.append(1) or execute(*a)):
        response = client.get(urls[0])
    size = len(response.content)
    timings = []
    for i in range(runs):
        t0 = time.perf_counter()
        response = client.get(urls[i % len(urls)])
        timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    return timings, len(queries), size


def report(label: str, timings: list[float], queries: int, size: int) -> None:
    print(f"{label}: p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 95):.1f} ms, "
          f"p99 {percentile(timings, 99):.1f} ms, max {max(timings):.1f} ms over {len(timings)} "
          f"renders; {queries} queries; {size / 1024:.0f} KB of HTML")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000, help="background customers")
    parser.add_argument("--runs", type=int, default=200, help="timed renders per page")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    import psycopg

    server = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    if not server.scheme.startswith("postgres"):
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    bench_db = "milestones_bench_care"
    admin_url = urlunparse(server._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {bench_db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {bench_db}")
    os.environ["DATABASE_URL"] = urlunparse(server._replace(path=f"/{bench_db}"))
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="bench_care_")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milestones_site.settings")
    os.environ.pop("DEBUG", None)  # templates are cached and no query log, as in production
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    try:
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"migrated {bench_db} in {time.perf_counter() - t0:.1f} s")
        agent, configurer, customer, group = build(args.customers)
        client = Client()
        client.force_login(agent)
        url = f"/care/customers/{customer.pk}/milestones/"
        body = client.get(url).content.decode()
        assert body.count('<a class="mc-pane') == GROUPS, "a pane is missing"
        assert body.count('<li class="mc-cycle ') == CYCLES, "the timeline is not drawn"
        targets = [int(t) for t in re.findall(r'class="mc-pane[^"]*" href="\?target=(\d+)"', body)]
        report(f"member-care Milestones page ({GROUPS} panes, the selected target's {CYCLES} cycles)",
               *time_page(client, [url], args.runs))  # fmt: skip
        report(f"the page opened on each target in turn (?target=, {GROUPS} targets)",
               *time_page(client, [f"{url}?target={t}" for t in targets], args.runs))  # fmt: skip
        report("a pane's details fetched on click (fragment, each target in turn)",
               *time_page(client, [f"{url}{t}/" for t in targets], args.runs))  # fmt: skip
        client.force_login(configurer)
        report(f"milestone insights ({args.customers + 1:,} enrolled)",
               *time_page(client, [f"/care/milestones/{group.pk}/insights/"],
                          max(args.runs // 4, 20), warmup=3))  # fmt: skip
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {bench_db} WITH (FORCE)")


if __name__ == "__main__":
    main()
