"""Evaluations per second of compiled rules (the rule language, no Django).

Run: python bench/bench_rules.py [--seconds 1.0]

Each figure is one core, the rule compiled once (as the application does), and
includes building the evaluation context from the caller's plain data: a
``RuleContext`` of dicts / an ``EventProfile`` with Decimal amounts, as evaluation
and promotions pass them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rules import EventProfile, RuleContext, compile_rule  # noqa: E402

TXN = RuleContext(
    txn={
        "value": Decimal("120.50"),
        "gross": Decimal("120.50"),
        "discount": Decimal("10.00"),
        "net": Decimal("110.50"),
        "store": "S001",
        "zone": "North",
        "concept": "Mall",
        "bill_number": "B-1001",
        "line_item_count": 3,
        "extended_fields": {"channel": "POS", "tax": Decimal("5.25")},
    },
    customer={"mobile": "919800000001", "email": "a@example.com", "external_id": "C1"},
)
LINE_ITEM = RuleContext(
    txn=TXN.txn,
    line_item={
        "sku": "SKU-42",
        "category": "Shoes",
        "quantity": 2,
        "value": Decimal("80.00"),
        "gross": Decimal("80.00"),
        "discount": Decimal("0"),
        "net": Decimal("80.00"),
        "extended_fields": {"brand": "Acme"},
    },
)
EVENT = RuleContext(
    event=EventProfile(
        name="targetPeriodElapsed",
        targets={
            "ABC": (Decimal("700"), Decimal("500")),
            "XYZ": (Decimal("12"), Decimal("10")),
            "Target Name": (Decimal("5"), Decimal("5")),
        },
        is_target_achieved_event=True,
        milestone_value_defined=Decimal("16"),
        target_milestone_trigger=["ABC1"],
        target_name="ABC",
        target_period="X",
    ),
    customer={"mobile": "919800000001"},
)

# (label, rule, purpose, entity, context, minimum evaluations/s or None)
CASES = [
    ("target filter", "currentTxn.value >= 100", "target", "transaction", TXN, 50_000),
    ("target filter", "currentTxn.value>=50", "target", "transaction", TXN, None),
    ("target filter", "true", "target", "transaction", TXN, None),
    (
        "line-item filter",
        'currentLineItem.sku == "SKU-42" || currentLineItem.category in ["Shoes", "Bags"]',
        "target",
        "line_item",
        LINE_ITEM,
        None,
    ),
    (
        "two-target promotion",
        'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC") && '
        'currentEvent.targetAchieved("XYZ") > currentEvent.targetDefined("XYZ")',
        "promotion",
        None,
        EVENT,
        10_000,
    ),
    (
        "promotion (immediate)",
        '(currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")) && '
        "(currentEvent.isTargetAchievedEvent == true)",
        "promotion",
        None,
        EVENT,
        None,
    ),
    (
        "promotion (B2B)",
        '(currentEvent.targetAchieved("Target Name")>currentEvent.targetDefined("Target Name"))'
        "&&(currentEvent.isTargetAchievedEvent==false)",
        "promotion",
        None,
        EVENT,
        None,
    ),
    (
        "promotion (targetExists)",
        'currentEvent.targetExists("Target Name")&&(currentEvent.targetAchieved("Target Name")'
        '>currentEvent.targetDefined("Target Name"))',
        "promotion",
        None,
        EVENT,
        None,
    ),
    (
        "promotion",
        "currentEvent.isTargetAchievedEvent",
        "promotion",
        None,
        EVENT,
        None,
    ),
    (
        "promotion",
        'currentEvent.targetMilestoneTrigger.contains("ABC1")',
        "promotion",
        None,
        EVENT,
        None,
    ),
    ("promotion", 'currentEvent.targetName.contains("ABC")', "promotion", None, EVENT, None),
    ("promotion", 'currentEvent.targetPeriod.contains("X")', "promotion", None, EVENT, None),
    (
        "promotion",
        "currentEvent.milestoneValueDefined >= 16",
        "promotion",
        None,
        EVENT,
        None,
    ),
    ("promotion", 'currentEvent.targetGaps("ABC") < 0', "promotion", None, EVENT, None),
]


def measure(rule, context, seconds: float) -> float:
    evaluate = rule.evaluate
    # warm up, and size a batch to about 1/20 of the time budget
    n = 200
    while True:
        start = time.perf_counter()
        for _ in range(n):
            evaluate(context)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 20:
            break
        n *= 2
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(n):
            evaluate(context)
        count += n
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per rule")
    args = parser.parse_args(argv)
    print(f"rule language benchmark: compiled rules, one core, {args.seconds:g} s per rule")
    print(f"{'evaluations/s':>14}  {'minimum':>8}  {'kind':<25} rule")
    failed = False
    for label, source, purpose, entity, context, minimum in CASES:
        rule = compile_rule(source, purpose=purpose, entity=entity)
        assert rule.evaluate(context) in (True, False)
        rate = measure(rule, context, args.seconds)
        ok = minimum is None or rate >= minimum
        failed |= not ok
        floor = f"{minimum:,}" if minimum else "-"
        flag = "" if ok else "  << BELOW TARGET"
        print(f"{rate:>14,.0f}  {floor:>8}  {label:<25} {source}{flag}")
    start = time.perf_counter()  # distinct sources, so the cache does not answer
    for i in range(2000):
        compile_rule(f"currentTxn.value >= {i}", purpose="target", entity="transaction")
    per = (time.perf_counter() - start) / 2000
    print(f"compile (uncached): {per * 1e6:,.0f} us per rule")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
