"""What the promotions would pay for the simulated events, without a ledger row.

The consumer (`promotions.consumer`) claims each target event, finds the live promotions
that hear it, evaluates their conditions on the event's `currentEvent` profile and runs each
matching promotion's actions in order, each one a ledger row: done, skipped (0 points),
capped (a budget cap) or failed (a coupon series run out, no recipient for a message).
This module takes the same decisions with the consumer's own functions
(`activities_for`, `hears`, `points_for`, `event_day`, `event_profile`, `customer_profile`,
`Promotion.is_live_on`, the compiled conditions, `messaging.recipient_for`) and keeps the
outcome as counts. What it does not do is the side effects: no coupon is claimed (the
series' free codes are counted down), no message is written, no points are fed back.

Two things are read differently, because the simulated milestone has no rows:
- a condition reading another target of the simulated milestone
  (`currentEvent.targetAchieved("T")`) gets that target's value in the customer's cycle
  from the simulated progress, as `promotions.selectors.event_targets` reads it from the
  progress table; names of other milestones are read from the database as usual;
- caps count what the promotion gave before the simulation plus what the simulation gives.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from evaluation.models import TargetEvent
from promotions.consumer import activities_for, hears, points_for
from promotions.messaging import NoRecipient, recipient_for
from promotions.models import ActionType, AwardStatus
from promotions.selectors import customer_profile, event_day, event_instant, event_profile
from promotions.templating import placeholders_of
from rules import RuleContext, RuleError

from .fold import stored

ZERO = Decimal(0)
_ORGANISATION = TargetEvent._meta.get_field("organisation")
_GROUP = TargetEvent._meta.get_field("target_group")
_CUSTOMER = TargetEvent._meta.get_field("customer")


@dataclass
class Paid:
    """Awards of one kind of event bucket (a target's cycle, or the milestone's others)."""

    count: int = 0  # done awards
    points: Decimal = ZERO
    coupons: int = 0
    messages: int = 0
    capped: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, action_type: str, status: str, points: Decimal | None) -> None:
        if status == AwardStatus.DONE:
            self.count += 1
            if action_type == ActionType.AWARD_POINTS:
                self.points += points or ZERO
            elif action_type == ActionType.ISSUE_COUPON:
                self.coupons += 1
            else:
                self.messages += 1
        elif status == AwardStatus.CAPPED:
            self.capped += 1
        elif status == AwardStatus.FAILED:
            self.failed += 1
        else:
            self.skipped += 1


@dataclass
class Payout:
    scenario: object
    by_bucket: dict = field(default_factory=lambda: defaultdict(Paid))
    _points: dict = field(default_factory=lambda: defaultdict(Decimal))  # promotion -> points
    _coupons: dict = field(default_factory=lambda: defaultdict(int))  # promotion -> coupons
    _per_cycle: dict = field(default_factory=lambda: defaultdict(Decimal))

    def __post_init__(self):
        for plan in self.scenario.promotions:
            self._points[plan.promotion.pk] = plan.spent_points
            self._coupons[plan.promotion.pk] = plan.spent_coupons
        self._free = dict(self.scenario.free_coupons)

    @property
    def active(self) -> bool:
        return bool(self.scenario.promotions)

    def pay(self, event: TargetEvent, customer, fold) -> None:
        """Run the promotions on one event (`consumer._consume_one` without its writes)."""
        scenario = self.scenario
        # the rows the consumer reads through the event (put in its cache: no query)
        _ORGANISATION.set_cached_value(event, scenario.organisation)
        _GROUP.set_cached_value(event, scenario.group)
        _CUSTOMER.set_cached_value(event, customer)
        # promotions read the event back from its row: values as stored
        event.achieved = stored(event.achieved)
        event.defined = stored(event.defined)
        event.milestone_value_defined = stored(event.milestone_value_defined)
        activities = activities_for(event)
        day = event_day(event)
        live = [
            p
            for p in scenario.promotions
            if p.promotion.activity in activities
            and p.promotion.is_live_on(day)
            and hears(p.rule, event)
        ]
        if not live:
            return
        names = set()
        for plan in live:
            names |= set(plan.rule.target_names)
        profile = event_profile(event, names, scenario.index)
        own = names & scenario.names
        if own:
            profile.targets.update(self._own_targets(event, own, fold))
        context = RuleContext(event=profile, customer=customer_profile(customer))
        bucket = self.by_bucket[
            (event.target_id, event.cycle_ordinal)
            if event.target_id and event.cycle_ordinal
            else None
        ]
        for plan in live:
            try:
                matched = plan.rule.evaluate(context)
            except RuleError:
                continue
            if matched:
                self._run(plan, event, customer, bucket)

    # --- the actions (consumer._EventRun) ---------------------------------------------------
    def _run(self, plan, event, customer, bucket: Paid) -> None:
        state = {"coupon": False}
        for action in plan.actions:
            try:
                status, points = self._action(plan, action, event, customer, state)
            except Exception:  # noqa: BLE001 - the consumer records any error as a failed row
                status, points = AwardStatus.FAILED, None
            bucket.add(action.type, status, points)

    def _action(self, plan, action, event, customer, state) -> tuple[str, Decimal | None]:
        promotion = plan.promotion
        pid = promotion.pk
        if action.type == ActionType.AWARD_POINTS:
            points = points_for(action, achieved=event.achieved, defined=event.defined)
            if points <= 0:
                return AwardStatus.SKIPPED, None
            if promotion.has_caps:
                if (
                    promotion.cap_points_total is not None
                    and self._points[pid] + points > promotion.cap_points_total
                ):
                    return AwardStatus.CAPPED, None
                key = (pid, event.customer_id, event.target_group_id, event.cycle_ordinal)
                cap = promotion.cap_points_per_customer_per_cycle
                if cap is not None and self._per_cycle[key] + points > cap:
                    return AwardStatus.CAPPED, None
                self._per_cycle[key] += points
            self._points[pid] += points
            return AwardStatus.DONE, points
        if action.type == ActionType.ISSUE_COUPON:
            if (
                promotion.cap_coupons_total is not None
                and self._coupons[pid] + 1 > promotion.cap_coupons_total
            ):
                return AwardStatus.CAPPED, None
            if self._free.get(action.series_id, 0) <= 0:
                return AwardStatus.FAILED, None  # the series has run out
            self._free[action.series_id] -= 1
            self._coupons[pid] += 1
            state["coupon"] = True
            return AwardStatus.DONE, None
        uses = placeholders_of(action.template)
        if action.subject:
            uses += placeholders_of(action.subject)
        if "coupon.code" in uses and not state["coupon"]:
            return AwardStatus.FAILED, None
        try:
            recipient_for(customer, action.channel)
        except NoRecipient:
            return AwardStatus.FAILED, None
        return AwardStatus.DONE, None

    # --- currentEvent.targetAchieved("T") for the simulated milestone's own targets ---------
    def _own_targets(self, event, names, fold) -> dict[str, tuple]:
        """What `promotions.selectors.event_targets` answers for names of the simulated
        milestone, from the customer's simulated progress."""
        scenario = self.scenario
        group = scenario.group
        targets = {t.name: t for t in scenario.targets}
        out: dict[str, tuple] = {}
        for name in names:
            target = targets.get(name)
            if target is None and name == group.name:
                if event.target_id is None:
                    out[name] = (event.achieved, event.defined)
                    continue
                if len(scenario.targets) != 1:
                    continue
                target = scenario.targets[0]
            if target is None:
                continue
            if target.id == event.target_id:
                out[name] = (event.achieved, event.defined)
                continue
            mine = [r for (tid, _o), r in fold.rows.items() if tid == target.id]
            row = None
            if event.cycle_ordinal:
                row = next((r for r in mine if r.ordinal == event.cycle_ordinal), None)
            else:
                instant = event_instant(event)
                row = next(
                    (r for r in mine if r.start <= instant and (r.end is None or instant < r.end)),
                    None,
                )
                if row is None and mine:
                    row = max(mine, key=lambda r: r.ordinal)
            if row is not None:
                out[name] = (stored(row.achieved), row.target_value)
            else:  # enrolled without progress: 0 against the defined value
                ordinal = event.cycle_ordinal or _period_ordinal(scenario, event_instant(event))
                out[name] = (ZERO, fold.defined(target, ordinal))
        return out

    # --- the result -------------------------------------------------------------------------
    def total(self) -> Paid:
        out = Paid()
        for paid in self.by_bucket.values():
            for name in ("count", "coupons", "messages", "capped", "failed", "skipped"):
                setattr(out, name, getattr(out, name) + getattr(paid, name))
            out.points += paid.points
        return out


def _period_ordinal(scenario, instant) -> int:
    period = scenario.gcfg.period_for(instant) if scenario.group.has_fixed_periods else None
    return period.ordinal if period is not None else 1
