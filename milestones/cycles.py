"""Cycle arithmetic: pure functions, no database.

Fixed calendar windows: cycle k runs from start + (k-1)·step to start + k·step, in calendar
days at 00:00 in the organisation's timezone. Months are added from the first start each time
(never chained), so a cycle starting Jan 31 is followed by Feb 28/29, then Mar 31, Apr 30...

Cyclic windows run on a 24-hour basis from an exact instant (the customer's first tracked
activity): cycle k covers [t0 + (k-1)·step, t0 + k·step).
"""

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}
DAYS = {"daily": 1, "weekly": 7}


class CycleError(ValueError):
    pass


def add_months(value, months: int):
    """Same day `months` later, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    month_index = value.month - 1 + months
    year = value.year + month_index // 12
    month = month_index % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def step(value, frequency: str, days: int | None, k: int):
    """`value` moved forward by k cycle lengths (a date or an aware datetime)."""
    if frequency in MONTHS:
        return add_months(value, MONTHS[frequency] * k)
    if frequency in DAYS:
        return value + timedelta(days=DAYS[frequency] * k)
    if frequency == "days":
        if not days or days < 1:
            raise CycleError("A cycle of N days needs a number of days of at least 1.")
        return value + timedelta(days=days * k)
    raise CycleError(f"Unknown cycle frequency {frequency!r}.")


def fixed_windows(
    start: date, frequency: str, days: int | None, count: int
) -> list[tuple[date, date]]:
    """[(first day, last day inclusive)] for `count` consecutive calendar windows."""
    out = []
    for k in range(count):
        first = step(start, frequency, days, k)
        nxt = step(start, frequency, days, k + 1)
        out.append((first, nxt - timedelta(days=1)))
    return out


def windows_that_fit(
    start: date, end: date, frequency: str, days: int | None, limit: int = 100
) -> int:
    """How many whole windows from `start` end on or before `end` (at most `limit`)."""
    count = 0
    while count < limit and step(start, frequency, days, count + 1) - timedelta(days=1) <= end:
        count += 1
    return count


def day_start(value: date, tz: ZoneInfo) -> datetime:
    """00:00 of a calendar day in the organisation's timezone, as an aware datetime."""
    return datetime.combine(value, time.min, tzinfo=tz)


def date_range_instants(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) instants for inclusive calendar dates."""
    return day_start(first, tz), day_start(last + timedelta(days=1), tz)


def cyclic_window(
    anchor: datetime, frequency: str, days: int | None, ordinal: int
) -> tuple[datetime, datetime]:
    """[start, end) of cycle `ordinal` (1-based) of a cyclic window anchored at an instant."""
    return step(anchor, frequency, days, ordinal - 1), step(anchor, frequency, days, ordinal)


def cycle_length(frequency: str, days: int | None) -> timedelta:
    """Nominal length, to compare frequencies (a month counts as 30 days)."""
    if frequency in MONTHS:
        return timedelta(days=30 * MONTHS[frequency])
    if frequency in DAYS:
        return timedelta(days=DAYS[frequency])
    return timedelta(days=days or 0)


def cyclic_cycle_at(anchor, frequency, days, count, at):
    """(ordinal, start, end, None) of the cyclic window `at` falls in, counted from the
    customer's anchor; None before the anchor (retro activities never move it) or after the
    last window. One rule for tracking and the simulation."""
    if at < anchor:
        return None
    for k in range(1, (count or 0) + 1):
        start, end = cyclic_window(anchor, frequency, days, k)
        if start <= at < end:
            return k, start, end, None
    return None


def till_cycle_at(last, count, at):
    """(ordinal, start, None, None) of a till-achievement cycle for an activity at `at`:
    the open cycle, or the next one once the last was achieved. `last` is the customer's
    latest cycle as (ordinal, start, achieved_at), or None. One rule for tracking and the
    simulation."""
    if last is None:
        return 1, at, None, None
    ordinal, start, achieved_at = last
    if achieved_at is None:
        return (ordinal, start, None, None) if at >= start else None
    if ordinal >= (count or 0) or at < achieved_at:
        return None
    return ordinal + 1, achieved_at, None, None
