"""Tracking's fold for one customer of the simulated milestone, in memory.

Reprocessing (`evaluation.reprocess`) rebuilds a customer's progress for a milestone from
their stored activities with tracking's row-by-row fold (`evaluation.tracking`,
`_CustomerState`, with `reprocess=True`: every cycle open, no state from before). This module
replays the same fold without a database row: the pieces that decide what counts are
tracking's own, called as they are (`kpis.contribution` for what an activity adds to a
target, `events.crossings` for the sub-target and target events of each step,
`GroupConfig.period_for` and `milestones.cycles.cyclic_window` for the cycle an activity falls
in, `Target.value_for_cycle` and `SubTarget.threshold` for the values); what is written
there as rows is kept here as `Row`s. The order is tracking's: a customer's activities by
(occurred_at, id), each activity's targets in the milestone's order.

`cycle_end_events` then writes, in memory, the `period_elapsed` events the cycle-end
evaluation (`evaluation.cycle_end`) would write for the customer once the cycles are due.

The equality with reprocessing is what `tests/simulations/test_backtest_equals_reprocess.py`
checks, cycle type by cycle type, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import cache

from django.db import connection

from evaluation import events
from evaluation.config_cache import ENTITIES_FOR_ACTIVITY
from evaluation.kpis import (
    DAILY_MAX_KPIS,
    SALES_KPIS,
    ProgressOverflow,
    check_progress,
    contribution,
    is_day_based,
)
from evaluation.models import ActivityType, TargetEvent
from milestones.cycles import cyclic_cycle_at, cyclic_window, day_start, till_cycle_at
from milestones.models import CycleType, EnrolmentMode, UnifiedMode

ZERO = Decimal(0)
ONE = Decimal(1)
FOUR_PLACES = Decimal("0.0001")


def stored(value: Decimal | None) -> Decimal | None:
    """A value as a progress or event row keeps it (4 places): PostgreSQL rounds half away
    from zero, Django's SQLite adapter half to even. Promotions read events back from their
    rows, so they see the stored value."""
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = Decimal(value)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -4:
        return value  # four places or fewer: stored as it is
    return value.quantize(FOUR_PLACES, rounding=_rounding())


@cache
def _rounding() -> str:
    return ROUND_HALF_UP if connection.vendor == "postgresql" else ROUND_HALF_EVEN


class ActivityRow:
    """What tracking reads of a stored activity (kpis caches its profiles on it)."""

    __slots__ = (
        "id", "customer_id", "type", "occurred_at", "store_code", "name", "bill_number",
        "payload", "_txn_profile", "_line_items",
    )  # fmt: skip

    FIELDS = ("id", "customer_id", "type", "occurred_at", "store_code", "name", "bill_number",
              "payload")  # fmt: skip

    def __init__(self, values: tuple):
        (self.id, self.customer_id, self.type, self.occurred_at, self.store_code, self.name,
         self.bill_number, self.payload) = values  # fmt: skip


class Row:
    """A progress row of the simulated milestone (evaluation.models.Progress's fields)."""

    __slots__ = ("target", "ordinal", "period", "start", "end", "target_value", "achieved",
                 "achieved_at", "reached_at", "days")  # fmt: skip

    def __init__(self, target, ordinal, period, start, end, target_value):
        self.target, self.ordinal, self.period = target, ordinal, period
        self.start, self.end, self.target_value = start, end, target_value
        self.achieved = ZERO
        self.achieved_at = self.reached_at = None
        self.days: dict | None = None


def customer_profile(customer) -> dict:
    """Tracking's `currentCustomer` profile (evaluation.tracking._customer_profile)."""
    return {
        "mobile": customer.mobile or "",
        "email": customer.email or "",
        "externalId": customer.external_id or "",
        "name": customer.name,
        "attributes": customer.attributes or {},
    }


class CustomerFold:
    """One customer's progress for the simulated milestone (tracking's `_CustomerState`)."""

    def __init__(self, scenario, customer):
        self.scenario = scenario
        self.customer = customer
        self.org = scenario.organisation
        self.rows: dict[tuple[int, int], Row] = {}  # (target id, cycle) -> row
        self.anchor: datetime | None = None  # cyclic windows: the customer's first activity
        self.events: list[TargetEvent] = []  # sub-target and target events, in order
        self.keys: set = set()  # their dedupe keys (or (target, cycle), sub-target id)
        self.subs: dict[tuple[int, int], list] = {}  # (target, cycle) -> sub-targets reached
        self.want_events = scenario.promotions != []
        self.bills: list[tuple] = []  # (activity, key) of billed sales, in time order
        self.newly_achieved: list[tuple[int, datetime]] = []  # (cycle, when)
        self.custom = scenario.custom_values.get(customer.id, {})

    # --- what counts -------------------------------------------------------------------------
    @staticmethod
    def matches(scenario, by_entity, activities, profile) -> list[tuple]:
        """[(activity, target config, contribution)] in tracking's order (step 1 of
        `tracking._track_batch`): each activity, its entities, their targets."""
        org = scenario.organisation
        tz, stores = org.tzinfo, scenario.stores
        out = []
        for activity in activities:
            memo: dict = {}
            same: dict = {}
            mine = []
            try:
                for entity in ENTITIES_FOR_ACTIVITY.get(activity.type, ()):
                    for tcfg in by_entity.get(entity, ()):
                        if activity.occurred_at >= tcfg.group.end_at:
                            continue
                        signature = tcfg.signature
                        if signature in same:
                            c = same[signature]
                        else:
                            c = same[signature] = contribution(
                                tcfg.target, tcfg.rule, activity, tz=tz,
                                store=stores.get(activity.store_code), customer_profile=profile,
                                allow_returns=org.allow_return_on_target, memo=memo,
                            )  # fmt: skip
                        if c is not None:
                            mine.append((activity, tcfg, c))
            except Exception:  # noqa: BLE001 - tracking fails such an activity alone
                continue
            out += mine
        return out

    def fold(self, matches) -> None:
        for activity, tcfg, c in matches:
            try:
                self.apply(activity, tcfg, c)
            except ProgressOverflow:
                continue  # tracking fails that activity alone: it counts nowhere
        self._group_achievements()

    # --- cycles (tracking._CustomerState._cycle) ---------------------------------------------
    def _cycle(self, tcfg, at: datetime):
        gcfg = tcfg.group
        group = gcfg.group
        if group.has_fixed_periods:
            period = gcfg.period_for(at)
            if period is None:
                return None
            return period.ordinal, period.starts_at, period.ends_at, period
        if at < gcfg.cycle_start_at:
            return None
        if group.cycle_type == CycleType.CYCLIC:
            if self.anchor is None:
                self.anchor = at  # the first tracked activity on or after the cycle start
            return cyclic_cycle_at(
                self.anchor, group.cycle_frequency, group.cycle_days, group.cycle_count, at
            )
        # till achievement: the open cycle, or the next one when the last was achieved
        target_id = tcfg.target.id
        rows = sorted((o, r) for (t, o), r in self.rows.items() if t == target_id)
        last = (rows[-1][0], rows[-1][1].start, rows[-1][1].achieved_at) if rows else None
        return till_cycle_at(last, group.cycle_count, at)

    def _row(self, tcfg, ordinal, start, end, period) -> Row:
        key = (tcfg.target.id, ordinal)
        row = self.rows.get(key)
        if row is None:
            value = self.custom.get(key)
            row = self.rows[key] = Row(
                tcfg.target, ordinal, period, start, end,
                value if value is not None else tcfg.target.value_for_cycle(ordinal),
            )  # fmt: skip
        return row

    # --- folding (tracking._CustomerState.apply) ---------------------------------------------
    def apply(self, activity, tcfg, c) -> None:
        target = tcfg.target
        at = activity.occurred_at
        if activity.type == ActivityType.RETURN and target.kpi in SALES_KPIS:
            row = self._original_bill_row(activity, tcfg)
            if row is None:
                return
        else:
            cycle = self._cycle(tcfg, at)
            if cycle is None:
                return  # reprocessing keeps every cycle open
            row = self._row(tcfg, *cycle)
        old = row.achieved
        if is_day_based(target.kpi):
            if row.days is None:
                row.days = {}
            current = row.days.get(c.day)
            if target.kpi in DAILY_MAX_KPIS:
                value = c.day_value if current is None else max(current, c.day_value)
            else:
                value = ONE
            if current == value:
                return
            row.days[c.day] = value
            new = (
                sum(row.days.values(), ZERO)
                if target.kpi in DAILY_MAX_KPIS
                else Decimal(len(row.days))
            )
        else:
            new = old + c.amount
            check_progress(activity, new)
        row.achieved = new
        row.reached_at = at if row.reached_at is None else max(row.reached_at, at)
        if activity.bill_number and target.kpi in SALES_KPIS:
            self.bills.append((activity, (target.id, row.ordinal)))
        self._crossings(tcfg, row, old, new, at)

    def _original_bill_row(self, activity, tcfg) -> Row | None:
        """A return lowers the cycle that counted its bill: the earliest transaction with that
        bill number folded for the target (reprocessing starts with no stored ones)."""
        if not activity.bill_number:
            return None
        target_id = tcfg.target.id
        for earlier, key in self.bills:
            if (
                key[0] == target_id
                and earlier.type == ActivityType.TRANSACTION
                and earlier.bill_number == activity.bill_number
            ):
                return self.rows[key]
        return None

    def _crossings(self, tcfg, row: Row, old, new, at) -> None:
        """The sub-targets and the target this step passes. With promotions to pay, the
        events themselves (`events.crossings`, as tracking writes them); without, only what
        they say (`crossed`, the same comparisons, tested against it), which spares building
        a row object per crossing."""
        if self.want_events:
            written, reached = events.crossings(
                org=self.org, customer_id=self.customer.id, tcfg=tcfg, ordinal=row.ordinal,
                defined=row.target_value, old=old, new=new, at=at, achieved_at=row.achieved_at,
            )  # fmt: skip
            subs = []
            for event in written:
                # a sub-target passed again after a return lowered the value: the event's
                # dedupe key keeps the first one (tracking inserts ON CONFLICT DO NOTHING)
                if event.dedupe_key not in self.keys:
                    self.keys.add(event.dedupe_key)
                    self.events.append(event)
                    if event.sub_target is not None:
                        subs.append(event.sub_target)
        else:
            subs, reached = crossed(tcfg, row.target_value, old, new, row.achieved_at)
            key = (tcfg.target.id, row.ordinal)
            subs = [s for s in subs if (key, s.id) not in self.keys]
            self.keys.update((key, s.id) for s in subs)
        if subs:
            self.subs.setdefault((tcfg.target.id, row.ordinal), []).extend(subs)
        if reached:
            row.achieved_at = at
            self.newly_achieved.append((row.ordinal, at))
            if tcfg.group.group.cycle_type == CycleType.TILL_ACHIEVEMENT:
                row.end = at

    def _group_achievements(self) -> None:
        """A unified milestone (all or any of its targets reached in a cycle) sends its own
        achievement event, once per cycle (tracking's `group_achievements`)."""
        group = self.scenario.group
        if (
            not self.want_events
            or group.unified_mode == UnifiedMode.NONE
            or not self.org.award_when_target_achieved
        ):
            return  # only promotions read that event
        target_ids = [t.target.id for t in self.scenario.gcfg.targets]
        seen = set()
        for ordinal, _at in sorted(self.newly_achieved, key=lambda reached: reached[1]):
            if ordinal in seen:
                continue
            seen.add(ordinal)
            rows = [self.rows.get((t, ordinal)) for t in target_ids]
            reached = [r is not None and r.achieved_at is not None for r in rows]
            ok = any(reached) if group.unified_mode == UnifiedMode.ANY else all(reached)
            if not ok:
                continue
            when = max(r.achieved_at for r in rows if r is not None and r.achieved_at is not None)
            self.events.append(events.unified_achieved(
                org_id=self.org.id, customer_id=self.customer.id, group=group, ordinal=ordinal,
                reached=sum(reached), at=when,
                defined=len(target_ids) if group.unified_mode == UnifiedMode.ALL else 1,
                period_name=self.scenario.gcfg.period_name(ordinal),
            ))  # fmt: skip

    # --- cycle ends (evaluation.cycle_end) ---------------------------------------------------
    def reached_subs(self) -> dict[tuple[int, int], list[str]]:
        """(target, cycle) -> names of the sub-targets reached, by their value (the order the
        cycle-end event lists them in)."""
        return {
            k: [s.name for s in sorted(subs, key=lambda s: s.value)]
            for k, subs in self.subs.items()
        }

    def cycles(self) -> list[tuple[int, object]]:
        """[(cycle, period or None)] the customer takes part in: every fixed period; for
        cyclic windows every cycle once they have a first activity; for till-achievement
        cycles those they started."""
        group = self.scenario.group
        if group.has_fixed_periods:
            return [(p.ordinal, p) for p in self.scenario.gcfg.periods]
        if group.cycle_type == CycleType.CYCLIC:
            if self.anchor is None:
                return []
            return [(k, None) for k in range(1, (group.cycle_count or 0) + 1)]
        return sorted({(o, None) for (_t, o) in self.rows}, key=lambda c: c[0])

    def defined(self, target, ordinal: int) -> Decimal:
        row = self.rows.get((target.id, ordinal))
        if row is not None:
            return row.target_value
        value = self.custom.get((target.id, ordinal))
        return value if value is not None else target.value_for_cycle(ordinal)

    def cycle_end_events(self) -> list[TargetEvent]:
        """The `period_elapsed` events the cycle-end evaluation writes for this (enrolled)
        customer: for each cycle due (its end plus the offset days past `as_of`), one per
        target with the cycle's stored achieved value, the defined value and the sub-targets
        reached."""
        scenario = self.scenario
        group, org = scenario.group, self.org
        offset = timedelta(days=group.effective_offset_days)
        reached = self.reached_subs()
        out = []

        def event(target, ordinal, end, name):
            row = self.rows.get((target.id, ordinal))
            return events.period_elapsed(
                org_id=org.id, customer_id=self.customer.id, group=group, target=target,
                ordinal=ordinal, period_name=name,
                achieved=stored(row.achieved) if row else ZERO,
                defined=self.defined(target, ordinal),
                triggers=reached.get((target.id, ordinal), []), at=end + offset,
            )  # fmt: skip

        if group.has_fixed_periods:
            for period in scenario.gcfg.periods:
                if period.ends_at + offset <= scenario.as_of:
                    out += [event(t, period.ordinal, period.ends_at, period.name)
                            for t in scenario.targets]  # fmt: skip
        elif group.cycle_type == CycleType.CYCLIC:
            if self.anchor is not None:
                for k in range(1, (group.cycle_count or 0) + 1):
                    end = cyclic_window(self.anchor, group.cycle_frequency, group.cycle_days, k)[1]
                    if end + offset <= scenario.as_of:
                        out += [event(t, k, end, f"{group.name} C{k}") for t in scenario.targets]
        else:
            group_end = day_start(group.end + timedelta(days=1), org.tzinfo)
            by_id = {t.id: t for t in scenario.targets}
            for (target_id, ordinal), row in sorted(self.rows.items(), key=lambda kv: kv[0][1]):
                end = row.end or group_end
                if end + offset <= scenario.as_of and target_id in by_id:
                    out.append(event(by_id[target_id], ordinal, end, f"{group.name} C{ordinal}"))
        return out


def crossed(tcfg, defined, old, new, achieved_at) -> tuple[list, bool]:
    """What `evaluation.events.crossings` decides for one step from `old` to `new`, without
    its events: the sub-targets passed and whether the target is reached for the first time
    in the cycle (whatever the award switch, which only decides whether an event is
    written). tests/simulations/test_fold.py holds the two to the same answers."""
    subs = [sub for sub, threshold in tcfg.thresholds(defined) if old < threshold <= new]
    return subs, old < defined <= new and achieved_at is None


def is_enrolled(scenario, customer, known: dict[int, bool]) -> tuple[bool, bool]:
    """(enrolled, newly) for a customer with a matching activity, as tracking's
    auto-enrolment decides (`enrolment.services.auto_enrol_on_activities`): an existing
    enrolment row decides; otherwise an 'all customers' milestone enrols a loyalty member."""
    if customer.id in known:
        return known[customer.id], False
    if scenario.group.enrolment_mode == EnrolmentMode.ALL_CUSTOMERS and customer.is_loyalty_member:
        return True, True
    return False, False
