"""Points of an award_points action: basis x rounding (no database)."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from promotions.consumer import points_for


def action(basis, *, points=None, percent=None, rounding="actual"):
    return SimpleNamespace(basis=basis, points=points, percent=percent, rounding=rounding)


@pytest.mark.parametrize(
    "act, achieved, defined, expected",
    [
        (action("fixed", points=Decimal(500)), 5, 5, Decimal(500)),
        (action("percent_of_achieved", percent=5), Decimal("12345.50"), 10000, Decimal("617.2750")),
        (action("percent_of_achieved", percent=5, rounding="floor"), Decimal("12345.50"), 10000, Decimal(617)),
        (action("percent_of_achieved", percent=5, rounding="round"), Decimal("12345.50"), 10000, Decimal(617)),
        (action("percent_over_target", percent=5), Decimal("12345.50"), 10000, Decimal("117.2750")),
        (action("percent_over_target", percent=5, rounding="round"), Decimal("12345.50"), 10000, Decimal(117)),
        (action("percent_over_target", percent=5, rounding="round"), Decimal("12350"), 10000, Decimal(118)),
        (action("percent_over_target", percent=5), Decimal(9000), 10000, Decimal(0)),
        (action("percent_of_achieved", percent=Decimal("2.5"), rounding="floor"), Decimal("99.99"), None, Decimal(2)),
        (action("percent_of_achieved", percent=10), None, None, Decimal(0)),
    ],
)  # fmt: skip
def test_points_for_each_basis_and_rounding(act, achieved, defined, expected):
    assert points_for(act, achieved=achieved, defined=defined) == expected
