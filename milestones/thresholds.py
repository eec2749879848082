"""When a sub-target is reached: the one rule, for tracking, notifications and SQL.

A percentage sub-target of P % is reached at `target value x P / 100`, rounded to the 4
decimal places a progress row keeps, **half up** (`ROUND_HALF_UP`: 500.00005 -> 500.0001), the
rounding a customer expects. An absolute sub-target is reached at its own value.

Every place that needs the value asks this module: tracking fires at it
(`SubTarget.threshold`, cached per target value by `evaluation.config_cache`, compared by
`evaluation.events.crossings` on both folds), the enrolment notification shows it
(`enrolment.notifications`), and the PostgreSQL import writes the same value in SQL with
`threshold_sql`. Pure: no database, no Django.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

PLACES = Decimal("0.0001")
PERCENTAGE = "percentage"  # milestones.models.SubTargetCriteria.PERCENTAGE


def threshold(criteria: str, value, target_value) -> Decimal:
    """The achieved value that reaches a sub-target (`criteria` "percentage" or "absolute",
    its `value`) for a target value: a percentage of the target value rounded to 4 decimal
    places, half up; an absolute value as it is."""
    if criteria != PERCENTAGE:
        return Decimal(value)
    with localcontext() as ctx:
        ctx.prec = 40  # exact before the one rounding: values < 10^14 with 4 places, P <= 100
        return (Decimal(target_value) * Decimal(value) / 100).quantize(
            PLACES, rounding=ROUND_HALF_UP
        )


def threshold_sql(criteria: str, value, target_value_sql: str) -> str:
    """`threshold` as a PostgreSQL numeric expression of `target_value_sql` (a numeric column
    or expression). `round(numeric, 4)` rounds half away from zero, which is half up for
    the values a target holds (never negative: a check constraint), so both give the same
    value; `tests/enrolment/test_threshold_one_rule.py` holds them to it."""
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"A sub-target value is a number, not {value!r}.")
    literal = f"{format(number, 'f')}::numeric"
    if criteria != PERCENTAGE:
        return literal
    return f"round(({target_value_sql}) * {literal} / 100, 4)"
