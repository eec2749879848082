"""Message templates: whitelisted placeholders, never evaluated (no database)."""

from decimal import Decimal

import pytest

from promotions.templating import PLACEHOLDERS, TemplateError, placeholders_of, render


def test_placeholders_are_filled_from_the_whitelist():
    values = {
        "customer.name": "Asha",
        "achieved": Decimal("1200.0000"),
        "target.value": Decimal("1000"),
    }
    assert (
        render("Hi {customer.name}: {achieved} of {target.value}", values)
        == "Hi Asha: 1200 of 1000"
    )


def test_numbers_show_at_most_two_decimals_and_take_a_simple_format():
    assert render("{points}", {"points": Decimal("617.2835")}) == "617.28"
    assert render("{points:,.0f}", {"points": Decimal("12345.5")}) == "12,346"


def test_missing_values_are_empty_and_braces_can_be_escaped():
    assert render("{{literal}} {coupon.code}!", {}) == "{literal} !"


@pytest.mark.parametrize(
    "template, message",
    [
        ("{customer.__class__}", "Unknown placeholder {customer.__class__}"),
        ("{customer.name.__globals__}", "Unknown placeholder"),
        ("{achieved[0]}", "Unknown placeholder {achieved[0]}"),
        ("{0}", "Unknown placeholder {0}"),
        ("{}", "Empty placeholder"),
        ("{customer.name!r}", "Conversions"),
        ("{customer.name:>10}", "only numbers take a format"),
        ("{points:{achieved}}", "is not supported"),
        ("Hi {customer.name", "not valid"),
        ("   ", "empty"),
        ("x" * 2001, "too long"),
    ],
)
def test_templates_that_could_reach_anything_else_are_refused(template, message):
    with pytest.raises(
        TemplateError, match=message.replace("{", r"\{").replace("[", r"\[").replace("(", r"\(")
    ):
        placeholders_of(template)


def test_every_documented_placeholder_is_accepted():
    template = " ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    assert placeholders_of(template) == list(PLACEHOLDERS)
