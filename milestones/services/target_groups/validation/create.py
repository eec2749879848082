"""What a new milestone is checked for: its own fields, its cycles, its targets and its
offset, all in one go, so one answer lists every problem (the cycles are checked once the
dates are right, since they depend on them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ....catalogue import MAX_TARGETS
from ....models import CycleType
from .cycles import PeriodSpec, check_period_names_free, resolve_cycles
from .details import (
    check_dates,
    check_new_name,
    check_offset,
    resolve_enrolment_mode,
    resolve_till,
    resolve_unified_mode,
    resolve_value_mode,
)
from .errors import Errors
from .events import warn_unknown_events
from .targets import Milestone, check_target_names, validate_target


@dataclass
class NewMilestone:
    """A create that passed every check: what to write."""

    fields: dict  # the TargetGroup's fields (but its organisation and creator)
    periods: list[PeriodSpec]
    targets: list[dict]  # validate_target's answers, in order
    warnings: list[str]
    audience_group: int | None  # as the caller gave it (enrolment follows it)


def validate_create(
    org, data: dict, *, via_api: bool = False, today: date | None = None
) -> NewMilestone:
    """Raises one ValidationError naming every refused field."""
    errors, warnings = Errors(), []
    name = (data.get("name") or "").strip()
    check_new_name(org, name, errors)
    start, end = data.get("start"), data.get("end")
    check_dates(org, start, end, errors, warnings, via_api, today)
    mode = resolve_value_mode(data, errors)
    enrolment = data.get("enrolment") or {}
    enrolment_mode = resolve_enrolment_mode(enrolment, mode, errors)
    till = resolve_till(org, data.get("till_code"), errors)
    unified = resolve_unified_mode(data, errors)

    cycle = data.get("cycle") or {}
    dates_ok = isinstance(start, date) and isinstance(end, date) and start <= end
    if dates_ok:
        cycle_fields, periods = resolve_cycles(name, start, end, cycle, mode, errors)
        check_period_names_free(org, periods, errors)
    else:  # refused above; the cycles are checked against the dates once they are right
        cycle_fields, periods = {"cycle_type": cycle.get("type") or CycleType.FIXED_CALENDAR}, []
    cycles_refused = not dates_ok or errors.has("cycle")
    milestone = Milestone(org, cycle_fields, periods, start, end, cycles_refused=cycles_refused)
    targets = _targets(milestone, data.get("targets") or [], unified, errors)
    offset = data.get("offset_days")
    check_offset(offset, errors)
    errors.raise_if_any()
    warn_unknown_events(org, list(enumerate(targets, start=1)), warnings)
    fields = {
        "name": name,
        "description": data.get("description") or "",
        "start": start,
        "end": end,
        "till": till,
        "target_value_mode": mode,
        "enrolment_mode": enrolment_mode,
        "offset_days": offset,
        "leaderboard_enabled": bool(data.get("leaderboard_enabled")),
        "unified_mode": unified,
        "is_active": data.get("is_active", True) is not False,
        "send_enrolment_trigger": data.get("send_enrolment_trigger", True) is not False,
        **cycle_fields,
    }
    return NewMilestone(fields, periods, targets, warnings, enrolment.get("audience_group"))


def _targets(milestone: Milestone, targets_in: list[dict], unified: str, errors: Errors):
    if not targets_in:
        errors.add("targets", "A milestone needs at least one target.")
    if len(targets_in) > MAX_TARGETS:
        errors.add(
            "targets", f"A milestone can have at most {MAX_TARGETS} targets, got {len(targets_in)}."
        )
    if unified and len(targets_in) < 2:
        errors.add("targets", "A unified milestone combines at least two targets.")
    cleaned = [
        validate_target(milestone, t, i, errors)
        for i, t in enumerate(targets_in[:MAX_TARGETS], start=1)
    ]
    check_target_names(milestone.org, cleaned, errors)
    return cleaned
