"""The replay: the organisation's stored activities in the window, customer by customer, through
the simulated milestone, then its events through the promotions (`payout`), added up per
target and cycle (`report`). It reads and never writes: no transaction, no lock.

Two ways to fold, with the same answers (tests/simulations/test_backtest_equals_reprocess.py
runs both against real reprocessing):
- set-based (`sums`, PostgreSQL): sales or bill counts in fixed cycles without a rule box,
  one query per target;
- row by row (`fold`): anything else, tracking's fold replayed activity by activity.

The customers are those reprocessing would take (`evaluation.reprocess._scope`): every
customer with a tracked activity in the milestone's dates (of a type and, for events, a
name its targets can count), and the enrolled ones without such an activity (they still get
their cycle-end events). They are read a chunk at a time. Payouts follow the order
reprocessing hands events to promotions: batch by batch of customers
(`CUSTOMERS_PER_BATCH`), the enrolments first, then the sub-target and target events in the
order tracking wrote them, then the batch's cycle-end events (docs/simulation.md says where
this order may differ from live: budget caps that run out).
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from django.db.models import Q

from enrolment.models import Customer
from evaluation import events
from evaluation.config_cache import ENTITIES_FOR_ACTIVITY
from evaluation.models import Activity, ActivityStatus, ActivityType
from evaluation.reprocess import CUSTOMERS_PER_BATCH
from milestones.cycles import day_start
from milestones.models import Entity

from . import sums
from .fold import ActivityRow, CustomerFold, customer_profile, is_enrolled
from .payout import Payout
from .report import Tally, build_result
from .scenario import Scenario

CHUNK = 2000  # customers read at once
PROFILE_FIELDS = ("id", "mobile", "email", "external_id", "name", "attributes", "is_loyalty_member")
EVENT_TYPES = (ActivityType.EVENT, ActivityType.CUSTOMER_EVENT)

Progress = Callable[[int, int], None]


def activities_in_scope(scenario: Scenario):
    """The stored activities the simulated milestone can count: tracked, inside its dates,
    of a type its targets' entities take (events and customer-level events only of the
    names its targets read; a return always, for the 'return' customer-level event)."""
    group, tz = scenario.group, scenario.organisation.tzinfo
    entities = {t.target.entity for t in scenario.gcfg.targets}
    types = {a for a, ents in ENTITIES_FOR_ACTIVITY.items() if entities & set(ents)}
    names = {t.target.event_name for t in scenario.gcfg.targets
             if t.target.entity in (Entity.EVENT, Entity.CUSTOMER_EVENT)}  # fmt: skip
    kinds = Q(type__in=sorted(types - set(EVENT_TYPES)))
    named = sorted(types & set(EVENT_TYPES))
    if named:
        kinds |= Q(type__in=named, name__in=sorted(names))
    return Activity.objects.filter(
        kinds,
        organisation_id=scenario.organisation.id,
        status=ActivityStatus.DONE,
        occurred_at__gte=day_start(group.start, tz),
        occurred_at__lt=day_start(group.end + timedelta(days=1), tz),
    )


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def simulate(scenario: Scenario, *, progress: Progress | None = None) -> dict:
    """Replay the scenario; `progress(done, total)` is told after each chunk of customers."""
    progress = progress or (lambda done, total: None)
    replay = _Replay(scenario)
    configs = scenario.gcfg.targets
    if sums.eligible(scenario) and not replay.payout.active and len(configs) == 1:
        # one target and nothing to pay: the database counts it all (`sums.target_tally`)
        progress(0, 0)
        cycles = sums.target_tally(scenario, configs[0])
        if cycles is not None:
            replay.tally.counted(configs[0].target, cycles)
            n = max((c["participants"] for c in cycles.values()), default=0)
            progress(n, n)
            return build_result(scenario, replay.tally, replay.payout)
    activities = activities_in_scope(scenario)
    in_scope = sorted(activities.order_by().values_list("customer_id", flat=True).distinct())
    enrolled = {c for c, active in scenario.known.items() if active} | set(
        scenario.created_enrolled
    )
    total = len(set(in_scope) | enrolled)
    progress(0, total)
    replay.creation_enrolments()
    settled: set[int] | None = None
    if sums.eligible(scenario):
        settled = _set_based(replay, in_scope, total, progress)
    if settled is None:
        settled = _row_by_row(replay, activities, in_scope, total, progress)
    rest = sorted(enrolled - settled)
    done = total - len(rest)
    for chunk in _chunks(rest, CHUNK):
        customers = replay.customers(chunk)
        replay.settle([(None, CustomerFold(scenario, customers[c]), False)
                       for c in chunk if c in customers])  # fmt: skip
        done += len(chunk)
        progress(done, total)
    return build_result(scenario, replay.tally, replay.payout)


def _row_by_row(replay, activities, in_scope: list[int], total: int, progress) -> set[int]:
    settled: set[int] = set()
    done = 0
    for chunk in _chunks(in_scope, CHUNK):
        customers = replay.customers(chunk, profiles=True)
        by_customer: dict[int, list[ActivityRow]] = defaultdict(list)
        rows = (
            activities.filter(customer_id__in=chunk)
            .order_by("customer_id", "occurred_at", "id")
            .values_list(*ActivityRow.FIELDS)
        )
        for values in rows.iterator(chunk_size=5000):
            by_customer[values[1]].append(ActivityRow(values))
        for batch in _chunks(chunk, CUSTOMERS_PER_BATCH):
            entries = []
            for cid in batch:
                customer = customers.get(cid)
                if customer is None:
                    continue
                entry = replay.fold_activities(customer, by_customer.get(cid, ()))
                if entry is not None:
                    entries.append(entry)
                    settled.add(cid)
            replay.settle(entries)
        done += len(chunk)
        progress(done, total)
    return settled


def _set_based(replay, in_scope: list[int], total: int, progress) -> set[int] | None:
    """`sums` for every target, merged customer by customer; None when it cannot answer
    (then the row-by-row fold replays everything)."""
    scenario = replay.scenario
    configs = scenario.gcfg.targets
    streams = []
    for index, tcfg in enumerate(configs):
        steps = sums.target_steps(scenario, tcfg, instants=replay.payout.active)
        if steps is None:
            for opened in streams:
                opened.close()
            return None
        streams.append(_tagged(steps, index))
    periods = {p.ordinal: p for p in scenario.gcfg.periods}
    settled: set[int] = set()
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda item: item[0])
    pending: list[tuple[int, list]] = []

    def flush():
        customers = replay.customers([cid for cid, _items in pending])
        for batch in _chunks(pending, CUSTOMERS_PER_BATCH):
            entries = []
            for cid, items in batch:
                customer = customers.get(cid)
                if customer is None:
                    continue
                entry = replay.fold_sums(customer, items, configs, periods)
                if entry is not None:
                    entries.append(entry)
                    settled.add(cid)
            replay.settle(entries)
        progress(bisect_right(in_scope, pending[-1][0]), total)
        pending.clear()

    for cid, items in itertools.groupby(merged, key=lambda item: item[0]):
        pending.append((cid, list(items)))
        if len(pending) >= CHUNK:
            flush()
    if pending:
        flush()
    progress(len(in_scope), total)
    return settled


def _tagged(steps, index: int):
    """A target's steps, each tagged with the target's position in the milestone."""
    for cid, kind, data in steps:
        yield cid, index, kind, data


class _Member:
    """What the fold and enrolment read of a customer when nothing reads their profile."""

    __slots__ = ("id", "is_loyalty_member")

    def __init__(self, id: int, is_loyalty_member: bool):
        self.id, self.is_loyalty_member = id, is_loyalty_member


class _Replay:
    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.by_entity = scenario.by_entity
        self.tally = Tally()
        self.payout = Payout(scenario)

    def customers(self, ids, *, profiles: bool = False) -> dict:
        """The chunk's customers: their profiles when a rule box or a promotion reads them,
        else only what enrolment reads (no model instance: a hundred thousand of them cost
        seconds)."""
        qs = Customer.objects.filter(pk__in=list(ids))
        if profiles or self.payout.active:
            return {c.id: c for c in qs.only(*PROFILE_FIELDS)}
        return {
            cid: _Member(cid, loyal) for cid, loyal in qs.values_list("id", "is_loyalty_member")
        }

    # --- folding one customer ---------------------------------------------------------------
    def fold_activities(self, customer, activities):
        """(first counted activity, fold, newly enrolled) of a customer with activities, or
        None when not enrolled (`tracking._track_batch`, steps 1 to 4)."""
        scenario = self.scenario
        matches = (
            CustomerFold.matches(scenario, self.by_entity, activities, customer_profile(customer))
            if activities
            else []
        )
        if matches:
            enrolled, new = is_enrolled(scenario, customer, scenario.known)
        else:
            enrolled, new = scenario.known.get(customer.id, False), False
        if not enrolled:
            return None
        fold = CustomerFold(scenario, customer)
        fold.fold(matches)
        first = (matches[0][0].occurred_at, matches[0][0].id) if matches else None
        return first, fold, new

    def fold_sums(self, customer, items, configs, periods):
        """The same from the set-based answer: the customer's rows from their cycle totals,
        then the steps that pass a threshold, in tracking's order."""
        scenario = self.scenario
        firsts = [data for _cid, _i, kind, data in items if kind == "first"]
        if firsts:
            enrolled, new = is_enrolled(scenario, customer, scenario.known)
        else:
            enrolled, new = scenario.known.get(customer.id, False), False
        if not enrolled:
            return None
        fold = CustomerFold(scenario, customer)
        steps = []
        for _cid, index, kind, data in items:
            tcfg = configs[index]
            if kind == "total":
                ordinal, value = data
                period = periods[ordinal]
                row = fold._row(tcfg, ordinal, period.starts_at, period.ends_at, period)
                row.achieved = value
            elif kind == "step":
                at, activity_id, ordinal, old, new_value = data
                steps.append((at, activity_id, index, ordinal, old, new_value))
        for at, _activity_id, index, ordinal, old, new_value in sorted(steps):
            tcfg = configs[index]
            fold._crossings(tcfg, fold.rows[(tcfg.target.id, ordinal)], old, new_value, at)
        fold._group_achievements()
        return (min(firsts) if firsts else None), fold, new

    # --- paying and counting ----------------------------------------------------------------
    def settle(self, entries) -> None:
        """One reprocessing batch of enrolled customers [(first, fold, newly enrolled)]: their
        enrolment events, then their tracking events (customers by their first counted
        activity, as tracking writes them), then their cycle ends; counted in the tally."""
        if self.payout.active:
            tracked = sorted((e for e in entries if e[0] is not None), key=lambda e: e[0])
            if self.scenario.listens_to_enrolments:
                for first, fold, new in tracked:
                    if new:
                        self.enrolled_event(fold.customer, at=first[0])
            for _first, fold, _new in tracked:
                for event in fold.events:
                    self.payout.pay(event, fold.customer, fold)
            for _first, fold, _new in entries:
                for event in fold.cycle_end_events():
                    self.payout.pay(event, fold.customer, fold)
        for _first, fold, _new in entries:
            self.tally.record(fold)

    def creation_enrolments(self) -> None:
        """The enrolled events of the customers the milestone enrolled when it was made (an
        audience group's members)."""
        scenario = self.scenario
        if not (self.payout.active and scenario.listens_to_enrolments):
            return
        start = day_start(scenario.group.start, scenario.organisation.tzinfo)
        for chunk in _chunks(scenario.created_enrolled, CHUNK):
            customers = self.customers(chunk)
            for cid in chunk:
                if cid in customers:
                    self.enrolled_event(customers[cid], at=start)

    def enrolled_event(self, customer: Customer, *, at) -> None:
        """The `enrolled` event promotions get for a newly enrolled customer
        (`promotions.receivers.on_customers_enrolled`), dated as if the milestone had run over
        the window: when it started (an audience's members) or at the customer's first counted
        activity (not at the moment of the replay: the promotions are live over the window)."""
        scenario = self.scenario
        group = scenario.group
        targets = scenario.targets
        target = targets[0] if len(targets) == 1 else None
        period = scenario.gcfg.period_for(at) if group.has_fixed_periods else None
        ordinal = period.ordinal if period else None
        fold = CustomerFold(scenario, customer)
        event = events.enrolled(
            org_id=scenario.organisation.id, customer_id=customer.id, group=group, target=target,
            ordinal=ordinal, period_name=period.name if period else "", at=at,
            defined=fold.defined(target, ordinal or 1) if target else None,
        )  # fmt: skip
        self.payout.pay(event, customer, fold)
