"""Set-based folding of the common case, on PostgreSQL: additive KPIs in fixed periods.

Most of what tracking does is adding an amount to a customer's progress in a calendar
period: sales, quantity, transaction and event counts, sums, points. For those the progress
rows are never read into Python: the batch's amounts are summed per customer, target and
period, and one `INSERT ... ON CONFLICT DO UPDATE SET achieved = achieved + EXCLUDED.achieved
... RETURNING` creates or increments every row at once (a new row takes the customer's own
target value from the enrolment list, else the target's default for that cycle); its
foreign keys are checked set-based (`common.bulk.references_held`) when the database role
may. The returned value less the batch's delta is the value before the batch; walking the batch's
amounts from there in time order finds each sub-target and target crossing at the activity
that made it, exactly as the row-by-row fold does (`tracking._CustomerState`), and writes
the same events with the same dedupe keys. A target reached here sets `achieved_at` with one
more statement and hands the (milestone, cycle) to the row-by-row code for group
achievements and 'milestones achieved' targets.

What stays row by row (tracking._CustomerState): day-based KPIs (per-day values), cyclic and
till-achievement cycles (anchors, open cycles), returns on sales KPIs (they find the cycle
that counted the original bill), targets fed by other milestones, and reprocessing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from common.bulk import pg_array, references_held
from enrolment.models import CustomerTargetValue
from milestones.models import Organisation, Period, Target

from . import events
from .kpis import SALES_KPIS, check_progress
from .models import ActivityType, Progress

FOUR_PLACES = Decimal("0.0001")


def enabled(*, reprocess: bool) -> bool:
    return (
        not reprocess
        and connection.vendor == "postgresql"
        and getattr(settings, "TRACKING_SQL_FOLD", True)
    )


def split(matches: dict[int, list]) -> dict[int, list]:
    """Take the set-based matches out of `matches` (customer id -> [(activity, tcfg,
    contribution)]) and return them. A customer's target is taken whole or not at all: when
    one of the batch's returns needs the row-by-row fold for it, all its matches stay."""
    fast: dict[int, list] = {}
    for cid in list(matches):
        ms = matches[cid]
        slow_targets = {
            t.target.id
            for a, t, _ in ms
            if not t.additive_in_fixed_periods
            or (a.type == ActivityType.RETURN and t.target.kpi in SALES_KPIS)
        }
        taken = [m for m in ms if m[1].target.id not in slow_targets]
        if not taken:
            continue
        fast[cid] = taken
        rest = [m for m in ms if m[1].target.id in slow_targets]
        if rest:
            matches[cid] = rest
        else:
            del matches[cid]
    return fast


@dataclass
class Folded:
    events: list = field(default_factory=list)
    changed: list = field(default_factory=list)  # (target, cycle, customer, achieved) for ranks
    contributions: dict = field(default_factory=lambda: defaultdict(Decimal))
    # customer id -> [(group id, cycle, when)] with a target reached here
    newly_achieved: dict = field(default_factory=lambda: defaultdict(list))
    reached_targets: set = field(default_factory=set)  # target ids reached here


def fold(*, org, fast: dict[int, list], closed: dict, closed_periods: set) -> Folded:
    """Fold the set-based matches (customers locked by the caller, activities in time order):
    one upsert for every row, then the crossings in Python from the values it returns."""
    out = Folded()
    amounts: dict[tuple, list] = {}  # (customer, target, cycle) -> [(activity, amount)]
    where: dict[tuple, tuple] = {}  # key -> (tcfg, period)
    for cid, ms in fast.items():
        shut = closed.get(cid, ())
        for activity, tcfg, c in ms:
            period = tcfg.group.period_for(activity.occurred_at)
            if period is None:
                continue  # outside every cycle: counts nowhere
            ordinal = period.ordinal
            tid = tcfg.target.id
            if (tid, ordinal) in shut or (tcfg.group.group.id, ordinal) in closed_periods:
                continue  # the cycle's end was evaluated: late arrivals past the offset
            key = (cid, tid, ordinal)
            entry = amounts.get(key)
            if entry is None:
                entry = amounts[key] = []
                where[key] = (tcfg, period)
            entry.append((activity, c.amount))
    if not amounts:
        return out
    keys = list(amounts)
    deltas = [sum((a for _, a in amounts[k]), Decimal(0)) for k in keys]
    periods = [where[k][1] for k in keys]
    params = [
        org.id,
        timezone.now(),
        pg_array([k[0] for k in keys]),
        pg_array([k[1] for k in keys]),
        pg_array([k[2] for k in keys]),
        pg_array([p.id for p in periods]),
        pg_array([p.starts_at for p in periods]),
        pg_array([p.ends_at for p in periods]),
        pg_array([where[k][0].target.value_for_cycle(k[2]) for k in keys]),
        pg_array(deltas),
        pg_array([amounts[k][-1][0].occurred_at for k in keys]),
        org.id,
    ]
    progress_t, values_t = Progress._meta.db_table, CustomerTargetValue._meta.db_table
    held = {Organisation: [org.id], Target: {k[1] for k in keys}, Period: {p.id for p in periods}}
    # the customers are locked FOR NO KEY UPDATE by the caller: no entry needed
    with connection.cursor() as cursor, references_held(cursor, held):
        cursor.execute(
            f"""
            INSERT INTO {progress_t} AS p (organisation_id, updated_at, customer_id, target_id,
                cycle_ordinal, period_id, cycle_start, cycle_end, target_value, achieved,
                reached_at)
            SELECT %s, %s, u.c, u.t, u.o, u.period, u.cs, u.ce, coalesce(v.value, u.dv), u.d, u.r
            FROM unnest(%s::bigint[], %s::bigint[], %s::integer[], %s::bigint[],
                        %s::timestamptz[], %s::timestamptz[], %s::numeric[], %s::numeric[],
                        %s::timestamptz[]) AS u(c, t, o, period, cs, ce, dv, d, r)
            LEFT JOIN {values_t} v
                ON v.target_id = u.t AND v.customer_id = u.c AND v.cycle_ordinal = u.o
                AND v.organisation_id = %s
            ON CONFLICT (target_id, customer_id, cycle_ordinal) DO UPDATE SET
                achieved = p.achieved + EXCLUDED.achieved,
                reached_at = greatest(p.reached_at, EXCLUDED.reached_at),
                updated_at = EXCLUDED.updated_at
            RETURNING p.id, p.customer_id, p.target_id, p.cycle_ordinal, p.achieved,
                      p.target_value, p.achieved_at
            """,
            params,
        )
        returned = cursor.fetchall()
    delta_of = dict(zip(keys, deltas, strict=True))
    reached: list[tuple[int, object]] = []  # (progress id, achieved_at)
    for pid, cid, tid, ordinal, new, defined, achieved_at in returned:
        key = (cid, tid, ordinal)
        tcfg = where[key][0]
        out.changed.append((tid, ordinal, cid, new))
        # the row holds 4 places: PostgreSQL rounded the delta (half away from zero)
        running = new - delta_of[key].quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
        sales = tcfg.target.kpi in SALES_KPIS
        was = achieved_at
        for activity, amount in amounts[key]:
            before, running = running, running + amount
            check_progress(activity, running)
            if sales and activity.bill_number:
                # kept where a return may need to find the cycle that counted its bill
                out.contributions[(activity.id, pid)] += amount
            at = activity.occurred_at
            written, hit = events.crossings(
                org=org, customer_id=cid, tcfg=tcfg, ordinal=ordinal, defined=defined,
                old=before, new=running, at=at, achieved_at=achieved_at,
            )  # fmt: skip
            out.events += written
            if hit:
                achieved_at = at
                out.newly_achieved[cid].append((tcfg.group.group.id, ordinal, at))
                out.reached_targets.add(tcfg.target.id)
        if was is None and achieved_at is not None:
            reached.append((pid, achieved_at))
    if reached:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {progress_t} SET achieved_at = u.at FROM unnest(%s::bigint[], "
                f"%s::timestamptz[]) AS u(id, at) WHERE {progress_t}.id = u.id "
                f"AND {progress_t}.organisation_id = %s",
                [pg_array([r[0] for r in reached]), pg_array([r[1] for r in reached]), org.id],
            )
    return out
