"""Message templates: `Hi {customer.name}, you reached {achieved} of {target.value}`.

Rendering never evaluates anything. A template is split by `string.Formatter().parse`
(which also handles `{{` and `}}`), and every `{placeholder}` is looked up as a *whole
text* in a flat whitelist of values: `{customer.name}` is the key "customer.name", not an
attribute access, so `{customer.__class__}` or `{x[0]}` is simply an unknown placeholder,
refused when the template is saved. Conversions (`!r`) are refused; a format spec is
allowed only on numbers and only in the simple form `{points:,.0f}`.
"""

from __future__ import annotations

import re
import string
from decimal import Decimal, InvalidOperation

MAX_TEMPLATE_LENGTH = 2000

#: placeholder -> what it is (shown in the admin and in docs/promotions.md)
PLACEHOLDERS: dict[str, str] = {
    "customer.name": "the customer's name",
    "customer.mobile": "the customer's mobile number",
    "customer.email": "the customer's email address",
    "customer.external_id": "the customer's external id",
    "milestone.name": "the milestone (target group) name",
    "target.name": "the target name (the milestone name for a unified milestone)",
    "target.value": "the target value defined for the customer in the cycle",
    "period.name": "the cycle (period) name",
    "achieved": "the value the customer achieved in the cycle",
    "gap": "target value minus achieved (0 once reached)",
    "over_achievement": "achieved minus target value (0 if not reached)",
    "sub_target.name": "the sub-target(s) reached, comma separated",
    "sub_target.value": "the value of the sub-target that fired",
    "promotion.name": "the promotion's name",
    "points": "points awarded by this promotion's earlier actions for this event",
    "points.expiry": "the expiry date of those points",
    "coupon.code": "the coupon code issued by an earlier action",
}

NUMERIC = frozenset(
    {
        "target.value",
        "achieved",
        "gap",
        "over_achievement",
        "sub_target.value",
        "points",
    }
)

_SPEC = re.compile(r"^,?(\.\d{1,2})?[f]?$")


class TemplateError(ValueError):
    pass


def placeholders_of(template: str) -> list[str]:
    """The placeholders a template uses; raise TemplateError if it is not a valid template."""
    if not isinstance(template, str) or not template.strip():
        raise TemplateError("The message template is empty.")
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(
            f"The message template is too long: {len(template)} characters "
            f"(the limit is {MAX_TEMPLATE_LENGTH})."
        )
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(
            f"The message template is not valid: {exc}. Write {{{{ and }}}} for literal braces."
        ) from None
    names = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "":
            raise TemplateError("Empty placeholder {}: name a value, e.g. {customer.name}.")
        if name not in PLACEHOLDERS:
            raise TemplateError(
                f"Unknown placeholder {{{name}}}; use one of "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                + "."
            )
        if conversion:
            raise TemplateError(f"Conversions such as !{conversion} are not supported.")
        if spec:
            if name not in NUMERIC or not _SPEC.match(spec):
                raise TemplateError(
                    f"Format {{{name}:{spec}}} is not supported: only numbers take a format, "
                    "such as {points:,.0f}."
                )
        names.append(name)
    return names


def validate_template(template: str) -> None:
    placeholders_of(template)


def format_number(value) -> str:
    """1200.0000 -> '1200', 617.2835 -> '617.28'."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    number = number.quantize(Decimal("0.01"))
    if number == number.to_integral_value():
        return str(number.to_integral_value())
    return f"{number:.2f}"


#: what a text placeholder shows when the customer has no such value: "Hi there", never "Hi ,"
FALLBACKS = {"customer.name": "there"}


def render(template: str, values: dict) -> str:
    """Render with the whitelisted `values` (keys as in PLACEHOLDERS); missing ones are ''
    (or their FALLBACKS entry)."""
    out = []
    for literal, name, spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in PLACEHOLDERS:  # validated at save; never resolved anyway
            raise TemplateError(f"Unknown placeholder {{{name}}}")
        value = values.get(name)
        if value is None or value == "":
            value = FALLBACKS.get(name)
        if value is None:
            continue
        if name in NUMERIC:
            if spec and _SPEC.match(spec):
                try:
                    out.append(format(Decimal(str(value)), spec))
                    continue
                except (InvalidOperation, ValueError):
                    pass
            out.append(format_number(value))
        else:
            out.append(str(value))
    return "".join(out)
