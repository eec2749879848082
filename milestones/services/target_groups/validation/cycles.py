"""A milestone's cycles: fixed calendar windows, custom periods, cyclic windows or "till
target achievement", checked against the milestone's duration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ....catalogue import MAX_CYCLE_DAYS, MAX_CYCLES
from ....cycles import fixed_windows, windows_that_fit
from ....models import CycleType, Frequency, Period, TargetValueMode
from .errors import Errors


@dataclass
class PeriodSpec:
    ordinal: int
    name: str
    start: date
    end: date


@dataclass
class CycleRequest:
    """A cycle configuration as asked for, for a milestone running from `start` to `end`."""

    milestone: str  # the milestone's name: fixed periods are named "<name> P1", "<name> P2"...
    start: date
    end: date
    type: str
    frequency: str
    days: int | None
    count: int | None
    first: date  # the first cycle's start (blank: the milestone's start)
    periods: list[dict]

    @classmethod
    def of(cls, name: str, start: date, end: date, cycle: dict) -> CycleRequest:
        return cls(
            milestone=name,
            start=start,
            end=end,
            type=cycle.get("type") or CycleType.FIXED_CALENDAR,
            frequency=cycle.get("frequency") or "",
            days=cycle.get("days"),
            count=cycle.get("count"),
            first=cycle.get("start") or start,
            periods=cycle.get("periods") or [],
        )


def resolve_cycles(
    name: str, start: date, end: date, cycle: dict, mode: str, errors: Errors
) -> tuple[dict, list[PeriodSpec]]:
    """Validate the cycle configuration; return the milestone's cycle fields and its fixed
    periods, if any (none when refused: the refusals are in `errors`)."""
    asked = CycleRequest.of(name, start, end, cycle)
    fields = {
        "cycle_type": asked.type,
        "cycle_frequency": "",
        "cycle_days": None,
        "cycle_start": None,
        "cycle_count": None,
    }
    if not _type_and_count_allowed(asked, mode, errors):
        return fields, []
    if asked.type == CycleType.CUSTOM_PERIODS:
        periods = _custom_periods(asked, fields, errors)
    elif asked.type == CycleType.TILL_ACHIEVEMENT:
        periods = _till_achievement(asked, fields, errors)
    else:
        periods = _calendar_windows(asked, fields, errors)
    _check_inside_duration(asked, periods, errors)
    return fields, periods


def _type_and_count_allowed(asked: CycleRequest, mode: str, errors: Errors) -> bool:
    if asked.type not in CycleType.values:
        errors.add(
            "cycle",
            f"Unknown cycle type {asked.type!r}: use one of {', '.join(CycleType.values)}.",
            field="type",
        )
        return False
    if asked.count is not None and not (1 <= int(asked.count) <= MAX_CYCLES):
        errors.add(
            "cycle",
            f"The number of cycles must be between 1 and {MAX_CYCLES}, got {asked.count}.",
            field="count",
        )
        return False
    if mode == TargetValueMode.PER_CUSTOMER and asked.type == CycleType.TILL_ACHIEVEMENT:
        errors.add(
            "cycle",
            "Till target achievement cycles need the same target for all customers; "
            "per-customer targets are not allowed with this cycle type.",
            field="type",
        )
        return False
    return True


def _custom_periods(asked: CycleRequest, fields: dict, errors: Errors) -> list[PeriodSpec]:
    """Periods with their own dates: each has both, none overlaps, names differ."""
    given = asked.periods
    if not given:
        errors.add(
            "cycle",
            "Custom periods need at least one period with a start and an end date.",
            field="periods",
        )
        return []
    if len(given) > MAX_CYCLES:
        errors.add(
            "cycle",
            f"A milestone can have at most {MAX_CYCLES} cycles, got {len(given)}.",
            field="periods",
        )
        return []
    periods: list[PeriodSpec] = []
    for i, p in enumerate(given, start=1):
        pname = (p.get("name") or f"{asked.milestone} P{i}").strip()
        pstart, pend = p.get("start"), p.get("end")
        if not pstart or not pend:
            errors.add(
                "cycle",
                f"Period {i} ({pname}) needs a start and an end date.",
                field=f"periods.{i}.{'end' if pstart else 'start'}",
            )
        elif pend < pstart:
            errors.add(
                "cycle",
                f"Period {i} ({pname}) ends on {pend}, before it starts on {pstart}.",
                field=f"periods.{i}.end",
            )
        else:
            periods.append(PeriodSpec(i, pname, pstart, pend))
    ordered = sorted(periods, key=lambda p: p.start)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start <= a.end:
            errors.add(
                "cycle",
                f"Periods {a.name} and {b.name} overlap: custom periods may not overlap.",
                field=f"periods.{b.ordinal}.start",
            )
    names = [p.name for p in periods]
    for dup in {n for n in names if names.count(n) > 1}:
        last = max(p.ordinal for p in periods if p.name == dup)
        errors.add("cycle", f"The period name {dup!r} is used twice.", field=f"periods.{last}.name")
    fields["cycle_count"] = len(given)
    return periods


def _calendar_windows(asked: CycleRequest, fields: dict, errors: Errors) -> list[PeriodSpec]:
    """Fixed calendar windows (periods from the first cycle's start) or cyclic windows (one
    per customer, from their first activity: no fixed periods)."""
    if asked.frequency not in Frequency.values:
        errors.add(
            "cycle",
            f"A {asked.type.replace('_', ' ')} cycle needs a frequency: one of "
            f"{', '.join(Frequency.values)}.",
            field="frequency",
        )
        return []
    days = asked.days
    if asked.frequency == Frequency.DAYS and (not days or not 1 <= int(days) <= MAX_CYCLE_DAYS):
        errors.add(
            "cycle",
            f"A cycle of N days needs a number of days between 1 and {MAX_CYCLE_DAYS}.",
            field="days",
        )
        return []
    if not _first_cycle_inside(asked, errors):
        return []
    fields.update(
        cycle_frequency=asked.frequency,
        cycle_days=int(days) if asked.frequency == Frequency.DAYS else None,
        cycle_start=asked.first,
    )
    if asked.type == CycleType.FIXED_CALENDAR:
        periods = _fixed_windows(asked, fields["cycle_days"], errors)
        if periods:
            fields["cycle_count"] = len(periods)
        return periods
    if asked.count is None:
        errors.add(
            "cycle",
            f"A cyclic window needs the number of cycles (1 to {MAX_CYCLES}).",
            field="count",
        )
        return []
    fields["cycle_count"] = int(asked.count)
    return []


def _fixed_windows(asked: CycleRequest, days: int | None, errors: Errors) -> list[PeriodSpec]:
    """`count` windows, or as many whole ones as fit before the milestone ends."""
    count = asked.count
    if count is None:
        count = windows_that_fit(asked.first, asked.end, asked.frequency, days, MAX_CYCLES)
        if count == 0:
            errors.add(
                "cycle",
                f"Not one whole {asked.frequency} cycle from {asked.first} fits before the "
                f"milestone ends on {asked.end}.",
                field="frequency",
            )
            return []
    windows = fixed_windows(asked.first, asked.frequency, days, int(count))
    last_end = windows[-1][1]
    if last_end > asked.end:
        errors.add(
            "cycle",
            f"Cycle {len(windows)} would end on {last_end}, after the milestone ends on "
            f"{asked.end}: cycles must lie inside the milestone's duration.",
            field="count",
        )
        return []
    return [
        PeriodSpec(i, f"{asked.milestone} P{i}", a, b) for i, (a, b) in enumerate(windows, start=1)
    ]


def _till_achievement(asked: CycleRequest, fields: dict, errors: Errors) -> list[PeriodSpec]:
    """Cycles that restart when the target is reached, up to a maximum number."""
    if asked.count is None:
        errors.add(
            "cycle",
            f"Till target achievement needs a maximum number of cycles (1 to {MAX_CYCLES}).",
            field="count",
        )
        return []
    if _first_cycle_inside(asked, errors):
        fields.update(cycle_start=asked.first, cycle_count=int(asked.count))
    return []


def _first_cycle_inside(asked: CycleRequest, errors: Errors) -> bool:
    if asked.start <= asked.first <= asked.end:
        return True
    errors.add(
        "cycle",
        f"The cycle start {asked.first} must lie inside the milestone's duration "
        f"({asked.start} to {asked.end}).",
        field="start",
    )
    return False


def _check_inside_duration(asked: CycleRequest, periods: list[PeriodSpec], errors: Errors):
    for p in periods:
        if p.start < asked.start or p.end > asked.end:
            errors.add(
                "cycle",
                f"Period {p.name} ({p.start} to {p.end}) lies outside the milestone's "
                f"duration ({asked.start} to {asked.end}).",
                field=f"periods.{p.ordinal}.{'start' if p.start < asked.start else 'end'}",
            )


def check_period_names_free(
    org, periods: list[PeriodSpec], errors: Errors, exclude_group=None
) -> None:
    """Period names are unique in the organisation."""
    taken = Period.objects.filter(organisation=org, name__in=[p.name for p in periods])
    if exclude_group is not None:
        taken = taken.exclude(target_group=exclude_group)
    ordinals = {p.name: p.ordinal for p in periods}
    for pname in taken.values_list("name", flat=True):
        errors.add(
            "cycle",
            f"A period named {pname!r} already exists in this organisation: period names are "
            "unique.",
            field=f"periods.{ordinals[pname]}.name",
        )


def cycle_ordinal(key, periods: list[PeriodSpec], count: int | None) -> int | None:
    """The cycle a period_values key names: the period's name, 'P2', 'C2' or '2'."""
    key = str(key).strip()
    for p in periods:
        if p.name == key:
            return p.ordinal
    match = re.fullmatch(r"[PpCc]?(\d+)", key)
    if match:
        n = int(match.group(1))
        limit = len(periods) if periods else (count or 0)
        if 1 <= n <= limit:
            return n
    return None
