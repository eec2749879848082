"""Property-based tests of the rule language: whatever the text, compile_rule returns a
Rule or raises RuleError, and a Rule's evaluate returns a bool or raises RuleError;
never another exception, never a hang (hypothesis deadline plus a wall-clock alarm)."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rules import (
    MAX_RULE_LENGTH,
    EventProfile,
    Rule,
    RuleContext,
    RuleError,
    compile_rule,
)

PURPOSES = [
    ("promotion", None),
    ("target", "transaction"),
    ("target", "line_item"),
    ("target", "event"),
    ("target", None),
]

FRAGMENTS = [
    "currentTxn",
    "currentLineItem",
    "currentEvent",
    "currentCustomer",
    "currentTender",
    ".value",
    ".gross",
    ".net",
    ".store",
    ".sku",
    ".quantity",
    ".extendedFields",
    ".attributes",
    ".tax",
    ".targetAchieved",
    ".targetDefined",
    ".targetExists",
    ".targetGaps",
    ".isTargetAchievedEvent",
    ".milestoneValueDefined",
    ".targetMilestoneTrigger",
    ".targetName",
    ".targetPeriod",
    ".contains",
    ".startsWith",
    ".matches",
    ".size",
    ".exists",
    ".map",
    "size",
    "has",
    "int",
    "double",
    "string",
    "__import__",
    "os",
    ".system",
    "eval",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "?",
    "&&",
    "||",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    " in ",
    ".",
    '"ABC"',
    "'ABC1'",
    '"Target Name"',
    '"',
    "'",
    '"""',
    "r'",
    "b'x'",
    "\\",
    "\\u00e9",
    "0",
    "1",
    "100",
    "2.5",
    "1e308",
    "1e999",
    "0x1F",
    "9223372036854775807",
    "99999999999999999999",
    "1u",
    "true",
    "false",
    "null",
    " ",
    "\n",
    "// c\n",
    "é",
    "😀",
    "\u202e",
    "\x00",
    "let",
    "x",
]

token_soup = st.lists(st.sampled_from(FRAGMENTS), max_size=80).map("".join)
random_text = st.text(max_size=400)
adversarial = st.one_of(
    st.integers(1, 3000).map(lambda n: "(" * n + "true" + ")" * n),
    st.integers(1, 3000).map(lambda n: "(" * n),
    st.integers(1, 3000).map(lambda n: "!" * n + "true"),
    st.integers(1, 3000).map(lambda n: "-" * n + "1"),
    st.integers(1, 1000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 700).map(lambda n: "size(" * n + '"x"' + ")" * n),
    st.integers(1, 400).map(lambda n: "true ? 1 : " * n + "2"),
    st.integers(1, 600).map(lambda n: "currentTxn.extendedFields" + ".a" * n + " > 1"),
    st.integers(1, 1000).map(lambda n: "currentTxn.value" + " + 1" * n + " > 1"),
    st.integers(1, 1000).map(lambda n: "true" + " && true" * n),
    st.integers(1, 1000).map(lambda n: "[" + "1," * n + "1].contains(1)"),
    st.integers(1, 2100).map(lambda n: "9" * n),
    st.integers(1, 2100).map(lambda n: "1." + "0" * n + "1 > 0"),
    st.integers(1, 2100).map(lambda n: '"' + "a" * n),
    st.integers(1, 400).map(lambda n: '"ab"' + " + " + " + ".join(['"ab"'] * n) + ' == ""'),
    st.integers(1, 300).map(lambda n: '"a" * ' + str(10**n)),
    st.integers(1, 200).map(lambda n: '"x".matches("' + "(a*)*" * n + 'b")'),
)


@contextmanager
def alarm(seconds: float):
    """Fail (instead of hanging) if the block runs longer than ``seconds``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"rule engine took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


numbers = st.one_of(
    st.none(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.text(max_size=5),
)
plain_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
contexts = st.builds(
    RuleContext,
    txn=st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "value": numbers,
                "gross": numbers,
                "net": numbers,
                "store": st.one_of(st.text(max_size=5), st.integers()),
                "extended_fields": st.dictionaries(st.text(max_size=5), plain_values, max_size=3),
            },
        ),
    ),
    line_item=st.one_of(
        st.none(),
        st.fixed_dictionaries({}, optional={"sku": st.text(max_size=5), "quantity": numbers}),
    ),
    event=st.one_of(
        st.none(),
        st.builds(
            EventProfile,
            name=st.text(max_size=5),
            attributes=st.dictionaries(st.text(max_size=5), plain_values, max_size=3),
            targets=st.dictionaries(
                st.sampled_from(["ABC", "XYZ", "Target Name", ""]),
                st.tuples(numbers, numbers),
                max_size=3,
            ),
            is_target_achieved_event=st.booleans(),
            milestone_value_defined=st.one_of(st.none(), st.decimals(allow_nan=False, places=1)),
            target_milestone_trigger=st.lists(st.text(max_size=5), max_size=3),
            target_name=st.text(max_size=5),
            target_period=st.text(max_size=5),
        ),
    ),
    customer=st.one_of(st.none(), st.fixed_dictionaries({"mobile": st.text(max_size=5)})),
)


def check(source: str, context: RuleContext) -> None:
    for purpose, entity in PURPOSES:
        with alarm(5):
            started = time.perf_counter()
            try:
                rule = compile_rule(source, purpose=purpose, entity=entity)
            except RuleError as err:
                assert isinstance(err.message, str) and err.message
                assert err.position is None or 0 <= err.position <= len(source)
                continue
            assert isinstance(rule, Rule)
            try:
                result = rule.evaluate(context)
            except RuleError:
                pass
            else:
                assert type(result) is bool
            try:
                rule.value(context)
            except RuleError:
                pass
            assert time.perf_counter() - started < 2.0


FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(source=random_text, context=contexts)
@example(source="", context=RuleContext())
@example(source="\ud800", context=RuleContext())
@example(source="'\udfff'", context=RuleContext())
@example(source="\x00", context=RuleContext())
@example(source="x" * (MAX_RULE_LENGTH + 1), context=RuleContext())
@example(source="(" * 100_000, context=RuleContext())
@example(source='__import__("os").system("true")', context=RuleContext())
@example(source="().__class__.__bases__[0].__subclasses__()", context=RuleContext())
@example(source='"\\', context=RuleContext())
@example(source='"""abc', context=RuleContext())
@example(source='"\\u12"', context=RuleContext())
@example(source='"\\U0010FFFF" == "x"', context=RuleContext())
@example(source='"\\U00110000"', context=RuleContext())
@example(source="\"\\ud800\" == 'a'", context=RuleContext())
@example(source="1e-999 == 0", context=RuleContext())
@example(source="-9223372036854775808 < 0", context=RuleContext())
@example(source="[1,2][9223372036854775808] == 1", context=RuleContext())
@example(source="{1: 2}[1] == 2 && {1.5: 2}[1.5] == 2", context=RuleContext())
@example(source="currentTxn.value >= 100", context=RuleContext(txn={"value": 10**400}))
@example(source="currentTxn.value >= 100", context=RuleContext(txn={"value": Decimal("sNaN")}))
@example(source="currentTxn.value >= 100", context=RuleContext(txn={"value": "\ud800"}))
@example(source='currentTxn.store == "x"', context=RuleContext(txn={"store": "\ud800"}))
@example(
    source='currentTxn.store.contains("x") && currentTxn.value / 2 > 1',
    context=RuleContext(txn={"store": "\udc00", "value": 1}),
)
@example(
    source='currentEvent.targetExists("A") && currentEvent.targetName == "x"',
    context=RuleContext(event=EventProfile(target_name="\udc00")),
)
@example(source="currentTxn.value >= 100", context=RuleContext(txn=[1, 2]))  # type: ignore[arg-type]
@example(
    source='currentEvent.targetAchieved("ABC") > 1',
    context=RuleContext(event=EventProfile(targets={"ABC": "oops"})),
)
@example(
    source='currentEvent.targetAchieved("ABC") > 1',
    context=RuleContext(event=EventProfile(targets={"ABC": (Decimal("1e400"), None)})),
)
@example(
    source="currentEvent.attributes.a.b.c == 1",
    context=RuleContext(event=EventProfile(attributes={"a": {"b": {"c": {"d": {}}}}})),
)
def test_any_text_gives_a_rule_or_a_rule_error(source, context):
    check(source, context)


@FUZZ
@given(source=token_soup, context=contexts)
def test_token_soup_gives_a_rule_or_a_rule_error(source, context):
    check(source, context)


@FUZZ
@given(source=adversarial)
def test_adversarial_text_gives_a_rule_or_a_rule_error(source):
    check(source, RuleContext(txn={"value": 1, "extended_fields": {"a": {"a": 1}}}))


# Well-formed rules built from the grammar (typed, so that most of them evaluate), to
# exercise evaluation as well as compilation.
number_atoms = st.one_of(
    st.sampled_from(
        [
            "currentTxn.value",
            "currentTxn.gross",
            "currentTxn.net",
            'currentTxn.extendedFields["tax"]',
            "currentTxn.extendedFields.tax",
            "currentLineItem.quantity",
            'currentEvent.targetAchieved("ABC")',
            'currentEvent.targetDefined("XYZ")',
            'currentEvent.targetGaps("ABC")',
            'currentEvent.targetAchieved("NOPE")',
            "currentEvent.milestoneValueDefined",
            "currentEvent.attributes.rating",
            "size(currentEvent.targetMilestoneTrigger)",
        ]
    ),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
text_atoms = st.one_of(
    st.sampled_from(
        [
            "currentTxn.store",
            "currentLineItem.sku",
            "currentEvent.targetName",
            "currentEvent.targetPeriod",
            "currentEvent.name",
            "currentCustomer.mobile",
            'currentTxn.extendedFields["channel"]',
        ]
    ),
    st.text(max_size=6).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
)
numbers_expr = st.recursive(
    number_atoms,
    lambda c: st.one_of(
        st.tuples(c, st.sampled_from(["+", "-", "*", "/", "%"]), c).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        c.map(lambda x: f"-{x}"),
    ),
    max_leaves=6,
)
texts_expr = st.one_of(text_atoms, st.tuples(text_atoms, text_atoms).map(" + ".join))
comparisons = st.one_of(
    st.sampled_from(
        [
            "true",
            "false",
            "currentEvent.isTargetAchievedEvent",
            'currentEvent.targetExists("Target Name")',
            "has(currentTxn.extendedFields.tax)",
        ]
    ),
    st.tuples(numbers_expr, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), numbers_expr).map(
        " ".join
    ),
    st.tuples(texts_expr, st.sampled_from(["==", "!="]), texts_expr).map(" ".join),
    st.tuples(texts_expr, st.sampled_from(["contains", "startsWith", "endsWith"]), texts_expr).map(
        lambda t: f"({t[0]}).{t[1]}({t[2]})"
    ),
    texts_expr.map(lambda t: f"currentEvent.targetMilestoneTrigger.contains({t})"),
    st.tuples(texts_expr, st.lists(texts_expr, max_size=3)).map(
        lambda t: f"{t[0]} in [{', '.join(t[1])}]"
    ),
    st.tuples(numbers_expr, st.lists(numbers_expr, max_size=3)).map(
        lambda t: f"{t[0]} in [{', '.join(t[1])}]"
    ),
)
conditions = st.recursive(
    comparisons,
    lambda c: st.one_of(
        st.tuples(c, st.sampled_from(["&&", "||", "==", "!="]), c).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        c.map(lambda x: f"!({x})"),
        st.tuples(c, c, c).map(lambda t: f"({t[0]}) ? ({t[1]}) : ({t[2]})"),
    ),
    max_leaves=8,
)
full_contexts = st.builds(
    RuleContext,
    txn=st.fixed_dictionaries(
        {
            "value": numbers,
            "gross": numbers,
            "net": numbers,
            "store": st.text(max_size=4),
            "extended_fields": st.fixed_dictionaries(
                {"tax": numbers, "channel": st.text(max_size=3)}
            ),
        }
    ),
    line_item=st.fixed_dictionaries({"sku": st.text(max_size=4), "quantity": numbers}),
    event=st.builds(
        EventProfile,
        name=st.text(max_size=4),
        attributes=st.fixed_dictionaries({"rating": numbers}),
        targets=st.dictionaries(
            st.sampled_from(["ABC", "XYZ", "Target Name"]),
            st.tuples(numbers, numbers),
            max_size=3,
        ),
        is_target_achieved_event=st.booleans(),
        milestone_value_defined=st.one_of(st.none(), st.decimals(allow_nan=False, places=1)),
        target_milestone_trigger=st.lists(st.text(max_size=3), max_size=3),
        target_name=st.text(max_size=4),
        target_period=st.text(max_size=4),
    ),
    customer=st.fixed_dictionaries({"mobile": st.text(max_size=4)}),
)


@FUZZ
@given(source=conditions, context=st.one_of(full_contexts, contexts))
def test_generated_rules_evaluate_to_a_bool_or_a_rule_error(source, context):
    check(source, context)
