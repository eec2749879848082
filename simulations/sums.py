"""The set-based replay of the common case, on PostgreSQL: sales or transaction counts of
bills, in fixed cycles, without a rule box.

For such a target, what an activity adds is one number the database can read itself (the
bill's `gross` or `net`, or 1 per bill) and the cycle it counts in is a range of instants,
so one query per target does what the row-by-row fold does activity by activity:

- it picks the bills that count (tracked, in the milestone's dates, in the target's scope of
  stores, zones and concepts: `kpis.in_scope` in SQL), and places each in its period;
- it runs `sum(amount) OVER (PARTITION BY customer, cycle ORDER BY occurred_at, id)`: the
  running value after each bill, the value before it being that less its amount, exactly
  the `old` and `new` of tracking's fold, bill by bill, in tracking's order;
- it answers, per customer, their first counted bill (enrolment, and the order events go to
  promotions), each cycle's total, and only the bills whose step passes a sub-target or the
  target value (`old < threshold <= new`, the thresholds computed by `SubTarget.threshold`).

Python then builds each customer's rows from the totals and hands the passing steps, in
(occurred_at, id) order, to the same crossing code as the row-by-row fold
(`fold.CustomerFold._crossings`, via `engine._Replay.fold_sums`): events, sub-targets and achievements come out identical,
and the equality with reprocessing is tested on both paths.

Amounts are read as tracking reads them (`kpis.to_decimal`): a missing or null amount is 0.
The query also counts amounts in another form (a negative, an exponent, a text that is not
a number); when there is any, or a running value would pass kpis.PROGRESS_LIMIT, the answer is
thrown away and the row-by-row fold replays everything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from common.bulk import pg_array
from evaluation.kpis import PROGRESS_LIMIT
from evaluation.models import Activity
from milestones.cycles import day_start
from milestones.models import EnrolmentMode, Entity, Kpi, Store

# instants travel as microseconds since 1970 (an integer is read far faster than a timestamp)
MICROS = "(extract(epoch FROM occurred_at) * 1000000)::bigint"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AMOUNTS = {Kpi.GROSS_SALES: "gross", Kpi.NET_SALES: "net", Kpi.TRANSACTION_COUNT: None}
PLAIN_NUMBER = r"^[0-9]+(\.[0-9]+)?$"  # what to_decimal and ::numeric read alike


def enabled() -> bool:
    return connection.vendor == "postgresql" and getattr(settings, "SIMULATION_SET_BASED", True)


def eligible(scenario) -> bool:
    """Every target of the milestone can be replayed set-based (see the module docstring)."""
    group = scenario.group
    configs = scenario.gcfg.targets
    if not enabled() or not group.has_fixed_periods or not configs:
        return False
    if len(configs) != len(scenario.targets) or scenario.custom_values:
        return False
    for tcfg in configs:
        t = tcfg.target
        if t.entity != Entity.TRANSACTION or t.kpi not in AMOUNTS or tcfg.rule is not None:
            return False
        if t.kpi != Kpi.TRANSACTION_COUNT and scenario.organisation.allow_return_on_target:
            return False  # returns count: they go to the cycle of their bill, row by row
    return True


def _counted(scenario, tcfg) -> tuple[str, dict]:
    """The CTEs every query here starts with: `periods` (ordinal, starts_at, ends_at),
    `thresholds` (ordinal, t: each cycle's target value and its sub-targets' thresholds)
    and `counted` (customer_id, id, occurred_at, amount, bad): the bills the target counts,
    with their amounts; and their parameters."""
    group, target = scenario.group, tcfg.target
    tz = scenario.organisation.tzinfo
    periods = scenario.gcfg.periods
    thresholds: list[tuple[int, object]] = []
    for period in periods:
        defined = target.value_for_cycle(period.ordinal)
        thresholds.append((period.ordinal, defined))
        thresholds += [(period.ordinal, t) for _sub, t in tcfg.thresholds(defined)]
    field = AMOUNTS[target.kpi]
    if field is None:
        amount, bad = "1::numeric", "false"
    else:
        raw = f"a.payload->>'{field}'"
        amount = f"(CASE WHEN {raw} ~ %(plain)s THEN ({raw})::numeric ELSE 0 END)"
        bad = f"({raw} IS NOT NULL AND {raw} !~ %(plain)s)"
    scope, store_join = "TRUE", ""
    if target.scope_stores or target.scope_zones or target.scope_concepts:
        store_join = (
            f"LEFT JOIN {Store._meta.db_table} s ON s.organisation_id = a.organisation_id "
            "AND s.code = a.store_code"
        )
        scope = (
            "((a.store_code <> '' AND a.store_code = ANY(%(stores)s::text[])) "
            "OR (s.zone <> '' AND s.zone = ANY(%(zones)s::text[])) "
            "OR (s.concept <> '' AND s.concept = ANY(%(concepts)s::text[])))"
        )
    sql = f"""
        WITH periods(ordinal, starts_at, ends_at) AS (
            SELECT * FROM unnest(%(ordinals)s::int[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
        ), thresholds(ordinal, t) AS (
            SELECT * FROM unnest(%(t_ordinals)s::int[], %(t_values)s::numeric[])
        ), counted AS MATERIALIZED (
            SELECT a.customer_id, a.id, a.occurred_at, {amount} AS amount, {bad} AS bad
            FROM {Activity._meta.db_table} a {store_join}
            WHERE a.organisation_id = %(org)s AND a.status = 'done' AND a.type = 'transaction'
              AND a.occurred_at >= %(start)s AND a.occurred_at < %(end)s AND {scope}
        )"""
    params = {
        "plain": PLAIN_NUMBER,
        "stores": pg_array(list(target.scope_stores or [])),
        "zones": pg_array(list(target.scope_zones or [])),
        "concepts": pg_array(list(target.scope_concepts or [])),
        "ordinals": pg_array([p.ordinal for p in periods]),
        "starts": pg_array([p.starts_at for p in periods]),
        "ends": pg_array([p.ends_at for p in periods]),
        "t_ordinals": pg_array([o for o, _t in thresholds]),
        "t_values": pg_array([t for _o, t in thresholds]),
        "org": scenario.organisation.id,
        "start": day_start(group.start, tz),
        "end": tcfg.group.end_at,
    }
    return sql, params


def target_steps(scenario, tcfg, *, instants: bool = True):
    """Yield, ordered by customer: (customer, "first", (at, id)), (customer, "total",
    (cycle, value)) and (customer, "step", (at, id, cycle, old, new)); None when the
    set-based answer cannot be used (see the module docstring). `at` is the activity's
    instant, or with `instants=False` its microseconds since 1970 (enough to order them and
    to tell that a target was reached, when no promotion reads the events' times)."""
    ctes, params = _counted(scenario, tcfg)
    sql = f"""{ctes}, run AS MATERIALIZED (
            SELECT c.customer_id, p.ordinal, c.id, c.occurred_at, c.amount,
                   sum(c.amount) OVER (PARTITION BY c.customer_id, p.ordinal
                                       ORDER BY c.occurred_at, c.id) AS new
            FROM counted c JOIN periods p ON c.occurred_at >= p.starts_at AND c.occurred_at < p.ends_at
        )
        SELECT customer_id, 0 AS kind, NULL::int AS ordinal, {MICROS} AS at, id,
               NULL::numeric, NULL::numeric
        FROM (SELECT DISTINCT ON (customer_id) customer_id, occurred_at, id FROM counted
              ORDER BY customer_id, occurred_at, id) AS firsts
        UNION ALL
        SELECT customer_id, 1, ordinal, NULL, NULL, NULL, sum(amount)
        FROM run GROUP BY customer_id, ordinal
        UNION ALL
        SELECT customer_id, 2, ordinal, {MICROS}, id, new - amount, new FROM run r
        WHERE EXISTS (SELECT 1 FROM thresholds t WHERE t.ordinal = r.ordinal
                      AND r.new - r.amount < t.t AND t.t <= r.new)
        UNION ALL
        SELECT NULL, 3, NULL, NULL, (SELECT count(*) FROM counted WHERE bad), NULL,
               (SELECT max(abs(new)) FROM run)
        ORDER BY 1 NULLS FIRST, 2, 3, 4, 5
    """
    cursor = connection.chunked_cursor()  # a server-side cursor: rows come as they are read
    cursor.execute(sql, params)
    head = cursor.fetchone()
    if head is None or head[1] != 3:
        cursor.close()
        return None
    bad, largest = head[4], head[6]
    if bad or (largest is not None and largest >= PROGRESS_LIMIT):
        cursor.close()
        return None
    return _steps(cursor, instants)


def target_tally(scenario, tcfg) -> dict | None:
    """With no promotion to pay and one target, the whole tally in one query: who is
    enrolled (`fold.is_enrolled`: an enrolment row decides, else an 'all customers'
    milestone enrols a loyalty member with a counted bill; the enrolled without one too),
    then per cycle the participants, the distribution, the top and median values, and the
    customers who reached the target and each sub-target. Amounts are never negative here
    (the set-based path refuses any: see the module docstring), so a cycle's running value
    only grows: a threshold is passed at some bill exactly when the cycle's total reaches
    it. None when the set-based answer cannot be used.

    Returns {cycle: {"participants", "achieved", "buckets": {...}, "top", "median",
    "subs": {sub-target id: reached}}}."""
    from enrolment.models import Customer

    from .report import BUCKETS

    target = tcfg.target
    ctes, params = _counted(scenario, tcfg)
    periods = scenario.gcfg.periods
    subs = []  # (ordinal, sub-target, threshold)
    for period in periods:
        defined = target.value_for_cycle(period.ordinal)
        subs += [(period.ordinal, sub, t) for sub, t in tcfg.thresholds(defined)]
    known = sorted(scenario.known.items())
    params.update(
        known_ids=pg_array([c for c, _a in known]),
        known_active=pg_array(["t" if a else "f" for _c, a in known]),
        auto=scenario.group.enrolment_mode == EnrolmentMode.ALL_CUSTOMERS,
        defined=pg_array([target.value_for_cycle(p.ordinal) for p in periods]),
        s_ordinals=pg_array([o for o, _s, _t in subs]),
        s_ids=pg_array([s.id for _o, s, _t in subs]),
        s_values=pg_array([t for _o, _s, t in subs]),
    )
    reached = "(g.defined > 0 AND g.value >= g.defined)"
    share = "NOT {r} AND g.defined > 0 AND g.kept >= g.defined * {lo} AND g.kept < g.defined * {hi}"
    sql = f"""{ctes}, known(customer_id, active) AS (
            SELECT * FROM unnest(%(known_ids)s::bigint[], %(known_active)s::boolean[])
        ), enrolled AS (
            SELECT m.customer_id FROM (SELECT DISTINCT customer_id FROM counted) m
            JOIN {Customer._meta.db_table} c ON c.id = m.customer_id
            LEFT JOIN known k ON k.customer_id = m.customer_id
            WHERE CASE WHEN k.customer_id IS NULL THEN %(auto)s AND c.is_loyalty_member
                       ELSE k.active END
            UNION SELECT customer_id FROM known WHERE active
        ), totals AS (
            SELECT c.customer_id, p.ordinal, sum(c.amount) AS value
            FROM counted c JOIN periods p ON c.occurred_at >= p.starts_at AND c.occurred_at < p.ends_at
            GROUP BY c.customer_id, p.ordinal
        ), defined(ordinal, defined) AS (
            SELECT * FROM unnest(%(ordinals)s::int[], %(defined)s::numeric[])
        ), subs(ordinal, sub_id, t) AS (
            SELECT * FROM unnest(%(s_ordinals)s::int[], %(s_ids)s::bigint[], %(s_values)s::numeric[])
        ), grid AS MATERIALIZED (
            SELECT d.ordinal, d.defined, coalesce(t.value, 0) AS value,
                   round(coalesce(t.value, 0), 4) AS kept
            FROM enrolled e CROSS JOIN defined d
            LEFT JOIN totals t ON t.customer_id = e.customer_id AND t.ordinal = d.ordinal
        )
        SELECT 0 AS kind, g.ordinal, NULL::bigint AS sub_id, count(*) AS n,
               count(*) FILTER (WHERE {reached}) AS achieved,
               count(*) FILTER (WHERE NOT {reached} AND (g.defined <= 0 OR g.kept < g.defined * 0.25)),
               count(*) FILTER (WHERE {share.format(r=reached, lo="0.25", hi="0.5")}),
               count(*) FILTER (WHERE {share.format(r=reached, lo="0.5", hi="0.75")}),
               count(*) FILTER (WHERE NOT {reached} AND g.defined > 0 AND g.kept >= g.defined * 0.75),
               max(g.kept) AS top,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY g.kept) AS median
        FROM grid g GROUP BY g.ordinal
        UNION ALL
        SELECT 1, g.ordinal, s.sub_id, count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM grid g JOIN subs s ON s.ordinal = g.ordinal AND s.t > 0 AND g.value >= s.t
        GROUP BY g.ordinal, s.sub_id
        UNION ALL
        SELECT 2, NULL, (SELECT count(*) FROM counted WHERE bad), NULL, NULL, NULL, NULL, NULL,
               NULL, (SELECT max(value) FROM totals), NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out: dict = {}
    for kind, ordinal, sub_id, n, achieved, b0, b1, b2, b3, top, median in rows:
        if kind == 2:
            if sub_id or (top is not None and abs(top) >= PROGRESS_LIMIT):
                return None
        elif kind == 0:
            out[ordinal] = {
                "participants": n, "achieved": achieved, "top": top, "median": median,
                "buckets": dict(zip(BUCKETS, (b0, b1, b2, b3, achieved), strict=True)),
                "subs": {},
            }  # fmt: skip
    for kind, ordinal, sub_id, n, *_rest in rows:
        if kind == 1:
            out[ordinal]["subs"][sub_id] = n
    return out


def _steps(cursor, instants: bool):
    try:
        while True:
            rows = cursor.fetchmany(5000)
            if not rows:
                return
            for customer_id, kind, ordinal, micros, row_id, old, new in rows:
                at = EPOCH + timedelta(microseconds=micros) if instants and micros else micros
                if kind == 0:
                    yield customer_id, "first", (at, row_id)
                elif kind == 1:
                    yield customer_id, "total", (ordinal, new)
                else:
                    yield customer_id, "step", (at, row_id, ordinal, old, new)
    finally:
        cursor.close()
