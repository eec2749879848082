from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from milestones.cycles import (
    CycleError,
    add_months,
    cyclic_window,
    date_range_instants,
    fixed_windows,
    windows_that_fit,
)


def test_jan_31_plus_one_month_is_end_of_february():
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)


def test_monthly_windows_from_the_31st_are_computed_from_the_first_start_not_chained():
    windows = fixed_windows(date(2027, 1, 31), "monthly", None, 4)
    assert windows == [
        (date(2027, 1, 31), date(2027, 2, 27)),
        (date(2027, 2, 28), date(2027, 3, 30)),
        (date(2027, 3, 31), date(2027, 4, 29)),
        (date(2027, 4, 30), date(2027, 5, 30)),
    ]


@pytest.mark.parametrize(
    ("frequency", "days", "second_start"),
    [
        ("daily", None, date(2026, 1, 2)),
        ("weekly", None, date(2026, 1, 8)),
        ("monthly", None, date(2026, 2, 1)),
        ("quarterly", None, date(2026, 4, 1)),
        ("half_yearly", None, date(2026, 7, 1)),
        ("yearly", None, date(2027, 1, 1)),
        ("days", 10, date(2026, 1, 11)),
    ],
)
def test_every_frequency_is_continuous_without_gaps(frequency, days, second_start):
    (a_start, a_end), (b_start, _) = fixed_windows(date(2026, 1, 1), frequency, days, 2)
    assert a_start == date(2026, 1, 1)
    assert b_start == second_start
    assert (b_start - a_end).days == 1


def test_windows_that_fit_counts_whole_cycles_only():
    assert windows_that_fit(date(2026, 1, 1), date(2026, 12, 31), "monthly", None) == 12
    assert windows_that_fit(date(2026, 1, 1), date(2026, 12, 30), "monthly", None) == 11
    assert windows_that_fit(date(2026, 1, 1), date(2026, 12, 31), "daily", None) == 100  # capped


def test_calendar_days_start_at_midnight_in_the_org_timezone():
    start, end = date_range_instants(date(2026, 3, 1), date(2026, 3, 31), ZoneInfo("Asia/Kolkata"))
    assert start.astimezone(UTC) == datetime(2026, 2, 28, 18, 30, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 3, 31, 18, 30, tzinfo=UTC)


def test_cyclic_windows_are_exact_24_hour_blocks_from_the_anchor():
    anchor = datetime(2021, 9, 4, 11, 0, tzinfo=UTC)
    assert cyclic_window(anchor, "days", 30, 1) == (
        anchor,
        datetime(2021, 10, 4, 11, 0, tzinfo=UTC),
    )
    assert cyclic_window(anchor, "days", 30, 3)[0] == datetime(2021, 11, 3, 11, 0, tzinfo=UTC)


def test_a_days_cycle_needs_a_number_of_days():
    with pytest.raises(CycleError):
        fixed_windows(date(2026, 1, 1), "days", None, 2)
