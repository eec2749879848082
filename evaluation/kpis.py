"""KPI folding: how much one activity adds to one target. Pure: no database.

`contribution(target, activity, ...)` answers a `Contribution` with the amount to add (or,
for day-based KPIs, the day and its value) — or None when the activity does not count for
the target (wrong entity or event, outside the scope, the rule box says no).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from rules import RuleContext, RuleError

log = logging.getLogger(__name__)
ZERO = Decimal(0)
ONE = Decimal(1)

SALES_KPIS = ("gross_sales", "net_sales", "quantity")
DAY_KPIS = ("days_of_activity", "event_days", "customer_event_days")
DAILY_MAX_KPIS = ("event_daily_max_sum",)

# An amount (and each number a target may sum) is at most this in size; the sum of a
# transaction's line items too. Progress is stored as numeric(22, 4) (below 10**18): a
# customer's value for one target and cycle may not pass PROGRESS_LIMIT, checked at ingest
# and again when it is folded (the activity that would pass it fails alone, see tracking).
AMOUNT_LIMIT = 10**14
PROGRESS_LIMIT = Decimal(10**17)


class ProgressOverflow(Exception):
    """Folding an activity would take a progress value past PROGRESS_LIMIT."""

    def __init__(self, activity_id, value):
        self.activity_id = activity_id
        super().__init__(
            f"Activity {activity_id} would take a progress value to {value:f}, past the "
            f"limit of {PROGRESS_LIMIT:,f}; it was not counted."
        )


def check_progress(activity, value: Decimal) -> None:
    if abs(value) >= PROGRESS_LIMIT:
        raise ProgressOverflow(getattr(activity, "id", None), value)


@dataclass(frozen=True)
class Contribution:
    amount: Decimal = ZERO
    day: date | None = None  # day-based KPIs: the calendar day (org timezone) ...
    day_value: Decimal = ONE  # ... and its value (1 for days, the attribute for daily max)


def to_decimal(value) -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        return ZERO
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ZERO
    return number if number.is_finite() else ZERO


def txn_profile(activity, store: tuple[str, str] | None) -> dict:
    """The currentTxn profile; built once per activity (it is shared by every target)."""
    cached = getattr(activity, "_txn_profile", None)
    if cached is not None:
        return cached
    activity._txn_profile = _txn_profile(activity, store)
    return activity._txn_profile


def _txn_profile(activity, store: tuple[str, str] | None) -> dict:
    p = activity.payload
    gross = to_decimal(p.get("gross"))
    return {
        "value": gross,
        "gross": gross,
        "discount": to_decimal(p.get("discount")),
        "net": to_decimal(p.get("net")),
        "store": activity.store_code,
        "zone": store[0] if store else "",
        "concept": store[1] if store else "",
        "billNumber": activity.bill_number,
        "lineItemCount": len(p.get("line_items") or []),
        "extendedFields": p.get("extended_fields") or {},
    }


def line_item_profiles(activity) -> list[dict]:
    cached = getattr(activity, "_line_items", None)
    if cached is None:
        cached = activity._line_items = [
            line_item_profile(item) for item in activity.payload.get("line_items") or []
        ]
    return cached


def line_item_profile(item: dict) -> dict:
    gross = to_decimal(item.get("gross"))
    return {
        "sku": item.get("sku") or "",
        "category": item.get("category") or "",
        "quantity": to_decimal(item.get("quantity")),
        "value": gross,
        "gross": gross,
        "discount": to_decimal(item.get("discount")),
        "net": to_decimal(item.get("net")),
        "extendedFields": item.get("extended_fields") or {},
    }


def event_profile(activity) -> dict:
    return {"name": activity.name, "attributes": activity.payload.get("attributes") or {}}


def _rule_ok(rule, context: RuleContext, memo: dict | None = None, key=None) -> bool:
    """The rule's verdict on `context`. With a `memo` (one per activity) and a `key` naming
    the context, a rule evaluated once for this activity is not evaluated again: milestones
    often share a condition ("any bill over 500"), and the activity and customer are the same
    for every target."""
    if rule is None:
        return True
    if memo is not None and key is not None:
        slot = ("rule", rule.source, rule.entity, key)
        if slot not in memo:
            memo[slot] = _rule_ok(rule, context)
        return memo[slot]
    try:
        return rule.evaluate(context)
    except RuleError as exc:
        log.info("rule %r did not evaluate: %s", rule.source, exc)
        return False


def in_scope(target, activity, store: tuple[str, str] | None) -> bool:
    if not (target.scope_stores or target.scope_zones or target.scope_concepts):
        return True
    if activity.store_code and activity.store_code in target.scope_stores:
        return True
    if store and store[0] and store[0] in target.scope_zones:
        return True
    return bool(store and store[1] and store[1] in target.scope_concepts)


def contribution(
    target,
    rule,
    activity,
    *,
    tz: ZoneInfo,
    store,
    customer_profile: dict,
    allow_returns: bool,
    memo: dict | None = None,
):
    """What `activity` adds to `target`, or None if it does not count for it. `memo`, one dict
    per activity, shares rule verdicts between its targets (profiles are cached on the activity)."""
    kpi, entity, atype = target.kpi, target.entity, activity.type
    day = activity.occurred_at.astimezone(tz).date()

    if atype in ("transaction", "return") and entity in ("transaction", "line_item"):
        if atype == "return" and not (allow_returns and kpi in SALES_KPIS):
            return None
        if not in_scope(target, activity, store):
            return None
        txn = txn_profile(activity, store)
        sign = -ONE if atype == "return" else ONE
        if entity == "line_item" or kpi == "quantity":
            items = []
            for n, li in enumerate(line_item_profiles(activity)):
                if entity == "line_item":
                    ctx = RuleContext(txn=txn, line_item=li, customer=customer_profile)
                    if not _rule_ok(rule, ctx, memo, ("line_item", n)):
                        continue
                items.append(li)
            if entity == "transaction" and not _rule_ok(
                rule, RuleContext(txn=txn, customer=customer_profile), memo, "txn"
            ):
                return None
            if not items and kpi != "transaction_count":
                return None
            return _line_items_amount(target, kpi, items, sign)
        if not _rule_ok(rule, RuleContext(txn=txn, customer=customer_profile), memo, "txn"):
            return None
        return _txn_amount(target, kpi, txn, day, sign)

    if atype == "return" and entity == "customer_event":
        # The returns-count KPI counts return transactions whatever ALLOW_RETURN_ON_TARGET says.
        if target.event_name != "return":
            return None
        return _count_or_day(kpi, day)

    if atype == "event" and entity == "event":
        if activity.name != target.event_name:
            return None
        ev = event_profile(activity)
        if not _rule_ok(rule, RuleContext(event=ev, customer=customer_profile)):
            return None
        if kpi == "event_count":
            return Contribution(ONE)
        if kpi == "event_days":
            return Contribution(day=day)
        value = to_decimal(ev["attributes"].get(target.attribute))
        if kpi == "event_sum":
            return Contribution(value)
        if kpi == "event_daily_max_sum":
            return Contribution(day=day, day_value=value)
        return None

    if atype == "customer_event" and entity == "customer_event":
        if activity.name != target.event_name:
            return None
        if not _rule_ok(
            rule, RuleContext(event=event_profile(activity), customer=customer_profile)
        ):
            return None
        return _count_or_day(kpi, day)

    if atype == "points" and entity == "points":
        p = activity.payload
        regular, promotional = to_decimal(p.get("regular")), to_decimal(p.get("promotional"))
        amount = {"regular": regular, "promotional": promotional}.get(
            target.points_type, regular + promotional
        )
        return Contribution(amount) if amount else None
    return None


def _count_or_day(kpi, day):
    if kpi.endswith("_days"):
        return Contribution(day=day)
    return Contribution(ONE)


def _txn_amount(target, kpi, txn, day, sign):
    if kpi == "gross_sales":
        return Contribution(sign * txn["gross"])
    if kpi == "net_sales":
        return Contribution(sign * txn["net"])
    if kpi == "transaction_count":
        return Contribution(ONE)
    if kpi == "days_of_activity":
        return Contribution(day=day)
    fields = txn["extendedFields"]
    if kpi == "extended_field_count":
        return (
            Contribution(ONE)
            if str(fields.get(target.extended_field)) == target.extended_field_value
            else None
        )
    if kpi == "extended_field_sum":
        return Contribution(to_decimal(fields.get(target.extended_field)))
    return None


def _line_items_amount(target, kpi, items, sign):
    if kpi == "gross_sales":
        return Contribution(sign * sum((li["gross"] for li in items), ZERO))
    if kpi == "net_sales":
        return Contribution(sign * sum((li["net"] for li in items), ZERO))
    if kpi == "quantity":
        return Contribution(sign * sum((li["quantity"] for li in items), ZERO))
    if kpi == "extended_field_count":
        n = sum(
            1
            for li in items
            if str(li["extendedFields"].get(target.extended_field)) == target.extended_field_value
        )
        return Contribution(Decimal(n)) if n else None
    if kpi == "extended_field_sum":
        return Contribution(
            sum((to_decimal(li["extendedFields"].get(target.extended_field)) for li in items), ZERO)
        )
    if kpi == "transaction_count":
        return Contribution(ONE)
    return None


def is_day_based(kpi: str) -> bool:
    return kpi in DAY_KPIS or kpi in DAILY_MAX_KPIS
