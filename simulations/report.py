"""The result of a simulation, in the API's shape (../shared/API.md, "Simulations"):

    {"targets": [{"name", "cycles": [{"name", "start", "end", "participants", "achieved",
       "sub_targets": [{"name", "reached"}], "distribution": {"0-25": n, "25-50": n,
       "50-75": n, "75-100": n, "achieved": n}, "awards": {"count", "points", "coupons"}}]}],
     "liability": {"points": x, "coupons": n}}

with these additions: per target its `kpi` and `value`; per cycle the cycle's `target`
value, the `median` and `top` achieved values of its participants, and `awards` also count
`messages`, `capped`, `failed` and `skipped` actions; at the top, the `window` replayed
(`start`, `end`: the days the cycles cover), the awards not tied to a target's cycle
(`other_awards`: a unified milestone's achievement, enrolments outside every cycle) and `notes` for the reader.

A participant of a cycle is a customer enrolled in it: for fixed cycles every enrolled
customer, for cyclic windows every enrolled customer with a first activity, for
till-achievement cycles those who started it. Each is in exactly one distribution bucket:
`achieved` if they reached the target in the cycle, else by their achieved value against
their target value (below 25 %, 25 to 50 %, 50 to 75 %, 75 % and over).
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from milestones.models import CycleType

from .fold import ZERO, CustomerFold, stored
from .payout import Paid, Payout

BUCKETS = ("0-25", "25-50", "50-75", "75-100", "achieved")
QUARTER, HALF, THREE_QUARTERS = Decimal("0.25"), Decimal("0.5"), Decimal("0.75")


def number(value) -> int | float:
    """A Decimal as a JSON number: whole numbers as integers."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def bucket_of(value: Decimal, defined: Decimal, achieved: bool) -> str:
    """A participant's bucket: `achieved`, else their value's share of their target value."""
    if achieved:
        return "achieved"
    if defined <= 0:
        return "0-25"
    quarter, half, three_quarters = _quarters(defined)
    if value < quarter:
        return "0-25"
    if value < half:
        return "25-50"
    if value < three_quarters:
        return "50-75"
    return "75-100"


@lru_cache(maxsize=4096)
def _quarters(defined: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    return defined * QUARTER, defined * HALF, defined * THREE_QUARTERS


@dataclass
class CycleTally:
    participants: int = 0
    achieved: int = 0
    subs: Counter = field(default_factory=Counter)
    buckets: Counter = field(default_factory=Counter)
    values: array = field(default_factory=lambda: array("d"))  # each participant's value
    top: Decimal | None = None
    counted_median: float | None = None  # the median as the database worked it out

    def add(self, value: Decimal) -> None:
        self.values.append(float(value))
        if self.top is None or value > self.top:
            self.top = value

    def median(self) -> Decimal | None:
        """The middle value (the mean of the two middle ones for an even count), to 4
        places: values are kept as floats (8 bytes per participant and cycle)."""
        if self.counted_median is not None:
            return _four(self.counted_median)
        n = len(self.values)
        if not n:
            return None
        ordered = sorted(self.values)
        return _four((ordered[(n - 1) // 2] + ordered[n // 2]) / 2)


def _four(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("0.0001"))


@dataclass
class Tally:
    """Per (target, cycle): participants, achievers, sub-targets reached, the distribution."""

    cycles: dict = field(default_factory=lambda: defaultdict(CycleTally))

    def record(self, fold: CustomerFold) -> None:
        subs = fold.subs
        rows = fold.rows
        targets = fold.scenario.targets
        for ordinal, _period in fold.cycles():
            for target in targets:
                key = (target.id, ordinal)
                row = rows.get(key)
                tally = self.cycles[key]
                if row is None:
                    value, achieved = ZERO, False
                else:
                    value, achieved = stored(row.achieved), row.achieved_at is not None
                tally.participants += 1
                if achieved:
                    tally.achieved += 1
                    tally.buckets["achieved"] += 1
                else:
                    tally.buckets[bucket_of(value, fold.defined(target, ordinal), False)] += 1
                tally.add(value)
                for sub in subs.get(key, ()):
                    tally.subs[sub.name] += 1

    def counted(self, target, cycles: dict) -> None:
        """A target's figures as `sums.target_tally` counted them."""
        names = {s.id: s.name for s in target.sub_targets.all()}
        for ordinal, figures in cycles.items():
            tally = self.cycles[(target.id, ordinal)]
            tally.participants = figures["participants"]
            tally.achieved = figures["achieved"]
            tally.buckets = Counter(figures["buckets"])
            tally.top = figures["top"]
            tally.counted_median = figures["median"]
            tally.subs = Counter({names[k]: n for k, n in figures["subs"].items()})


def _awards(paid: Paid) -> dict:
    return {
        "count": paid.count,
        "points": number(paid.points),
        "coupons": paid.coupons,
        "messages": paid.messages,
        "capped": paid.capped,
        "failed": paid.failed,
        "skipped": paid.skipped,
    }


def _cycles_of(scenario) -> list[tuple[int, str, str | None, str | None]]:
    """(ordinal, name, first day, last day) of the simulated milestone's cycles; cyclic and
    till-achievement cycles are each customer's own, so they have no dates."""
    group = scenario.group
    if group.has_fixed_periods:
        return [(p.ordinal, p.name, p.start.isoformat(), p.end.isoformat())
                for p in scenario.gcfg.periods]  # fmt: skip
    count = group.cycle_count or 0
    if group.cycle_type == CycleType.TILL_ACHIEVEMENT:
        count = max(count, 1)
    return [(k, f"{group.name} C{k}", None, None) for k in range(1, count + 1)]


def build_result(scenario, tally: Tally, payout: Payout) -> dict:
    targets = []
    for target in scenario.targets:
        cycles = []
        for ordinal, name, start, end in _cycles_of(scenario):
            t = tally.cycles.get((target.id, ordinal)) or CycleTally()
            median, top = t.median(), t.top
            cycles.append(
                {
                    "name": name,
                    "start": start,
                    "end": end,
                    "target": number(target.value_for_cycle(ordinal)),
                    "participants": t.participants,
                    "achieved": t.achieved,
                    "sub_targets": [
                        {"name": s.name, "reached": t.subs.get(s.name, 0)}
                        for s in target.sub_targets.all()
                    ],
                    "distribution": {b: t.buckets.get(b, 0) for b in BUCKETS},
                    "median": None if median is None else number(median),
                    "top": None if top is None else number(top),
                    "awards": _awards(payout.by_bucket.get((target.id, ordinal)) or Paid()),
                }
            )
        targets.append(
            {
                "name": target.name,
                "kpi": target.kpi,
                "value": number(target.value),
                "cycles": cycles,
            }
        )
    total = payout.total()
    group = scenario.group
    return {
        "targets": targets,
        "liability": {"points": number(total.points), "coupons": total.coupons},
        "window": {"start": group.start.isoformat(), "end": group.end.isoformat()},
        "cycle_type": group.cycle_type,
        "other_awards": _awards(payout.by_bucket.get(None) or Paid()),
        "promotions": [
            {
                "id": p.promotion.pk if not p.draft else None,
                "name": p.promotion.name,
                "draft": p.draft,
            }
            for p in scenario.promotions
        ],  # fmt: skip
        "notes": list(scenario.notes),
    }
