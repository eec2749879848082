"""Rule expressions through the API (promotion conditions, target rules): whatever the text,
a 201 or a 400 naming the field, never a 500, and nothing stored on a 400. The service-level
property tests (compile_rule returns a Rule or raises RuleError) are in
tests/promotions/test_rules_fuzz.py; this checks no other exception reaches the API and that
the rule language is never handed to eval/exec."""

from __future__ import annotations

import ast
import pathlib
from datetime import date

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from milestones.models import TargetGroup
from promotions.models import Promotion
from rules import MAX_RULE_LENGTH
from tests.factories import TillFactory

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOKENS = [
    "currentTxn", "currentEvent", "currentLineItem", "currentCustomer", ".value", ".gross",
    ".targetAchieved", '("Spend")', ".attributes", '["k"]', ".size()", "size", "has(",
    "int(", "double(", "string(", "__import__('os')", ".system('id')", "eval", "exec",
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "?", "!", "-", "+", "*", "/", "%",
    "==", "!=", "<", "<=", ">=", ">", "&&", "||", "in", "true", "false", "null",
    "0", "1", "-1", "1.5", "1e308", "9" * 40, '"s"', "'s'", 'b"x"', "u8", " ", "\n", "\x00",
]  # fmt: skip
expressions = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
    st.text(max_size=80),
    st.integers(min_value=1, max_value=400).map(lambda n: "(" * n + "1" + ")" * n),
    st.integers(min_value=1, max_value=400).map(lambda n: "-" * n + "1"),
    st.just("1 + " * (MAX_RULE_LENGTH // 4) + "1"),
)


def _promotion(condition: str) -> dict:
    return {
        "name": "Fuzz",
        "activity": "target_period_elapsed",
        "start": str(date(2026, 1, 1)),
        "end": str(date(2026, 12, 31)),
        "condition": condition,
        "actions": [{"type": "award_points", "points": 10, "basis": "fixed"}],
    }


@pytest.fixture
def till(org):
    """The organisation's till T1: every milestone names one."""
    return TillFactory(organisation=org)


def _group(rule: str) -> dict:
    return {
        "name": "Fuzz",
        "start": "2026-01-01",
        "end": "2026-12-31",
        "till_code": "T1",
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": "2026-01-01"},
        "targets": [{"name": "Spend", "kpi": "gross_sales", "value": 1000, "rule": rule}],
    }


@FUZZ
@given(condition=expressions)
def test_any_promotion_condition_is_a_201_or_a_400(api, configurer, condition):
    note(repr(condition))
    before = Promotion.objects.count()
    response = api(configurer).post("/api/v1/promotions/", _promotion(condition), format="json")
    assert response.status_code in (201, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        assert Promotion.objects.count() == before
        assert response.json(), response.content
    else:
        Promotion.objects.filter(pk=response.json()["id"]).delete()


@FUZZ
@given(rule=expressions)
def test_any_target_rule_is_a_201_or_a_400(api, configurer, till, rule):
    note(repr(rule))
    before = TargetGroup.objects.count()
    response = api(configurer).post("/api/v1/target-groups/", _group(rule), format="json")
    assert response.status_code in (201, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        assert TargetGroup.objects.count() == before
        assert response.json(), response.content
    else:
        TargetGroup.objects.filter(pk=response.json()["id"]).delete()


@pytest.mark.parametrize(
    "condition",
    ["__import__('os').system('id')", "eval('1')", "exec('x=1')", "open('/etc/passwd')"],
)
def test_python_in_a_condition_is_a_400_naming_the_position(api, configurer, condition):
    response = api(configurer).post("/api/v1/promotions/", _promotion(condition), format="json")
    assert response.status_code == 400
    assert "condition" in response.json()
    assert not Promotion.objects.exists()


def test_the_rule_language_never_calls_eval_or_exec():
    """No eval/exec/compile call in the rule package (ruff S307/S102 guard the rest)."""
    package = pathlib.Path(__file__).resolve().parents[2] / "promotions" / "rules"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "compile", "__import__"), source


def test_the_fuzzed_bodies_are_valid_apart_from_the_rule(api, configurer, till):
    """So the 400s above are about the expression, not the rest of the body."""
    client = api(configurer)
    ok_group = client.post(
        "/api/v1/target-groups/", _group("currentTxn.value >= 100"), format="json"
    )
    assert ok_group.status_code == 201, ok_group.content
    ok_promo = client.post(
        "/api/v1/promotions/",
        _promotion('currentEvent.targetAchieved("Spend") >= 1000'),
        format="json",
    )
    assert ok_promo.status_code == 201, ok_promo.content
