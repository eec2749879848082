"""What an edit of a milestone is checked for. The name, the target value mode and the
tracking type never change; once the milestone has started, neither do its start, its
cycles, nor what each existing target tracks (LOCKED_WHEN_LIVE). A target that a promotion
names is renamed only with `rename_in_promotions`.

A started milestone may still end earlier: the cycles that would end after the new end are
dropped when the request asks for it (`drop_cycles`) and none of them has started yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ....catalogue import MAX_TARGETS
from ....models import MilestoneStatus, Period, Target, TargetGroup
from ....selectors import org_today
from .cycles import PeriodSpec, check_period_names_free, cycle_ordinal, resolve_cycles
from .details import check_dates, check_offset, check_unchangeable, resolve_till
from .errors import Errors
from .events import warn_unknown_events
from .targets import Milestone, check_renames, check_target_names, validate_target

CYCLE_FIELDS = ("cycle_type", "cycle_frequency", "cycle_days", "cycle_start", "cycle_count")


@dataclass
class MilestoneEdit:
    """An edit that passed every check: what to write."""

    fields: dict  # the TargetGroup's editable fields as they should become
    periods: list[PeriodSpec] | None  # None: the request left the cycles alone
    targets: list[tuple[Target | None, dict]]  # (the target edited or None, its new fields)
    renames: list[tuple[int, str, str]]  # (position in the request, old name, new name)
    warnings: list[str]


def validate_update(group: TargetGroup, data: dict, *, via_api: bool = False) -> MilestoneEdit:
    """Raises one ValidationError naming every refused field."""
    org = group.organisation
    errors, warnings = Errors(), []
    started = group.status() != MilestoneStatus.UPCOMING
    check_unchangeable(group, data, started, errors)
    errors.raise_if_any()

    start = data.get("start", group.start)
    end = data.get("end", group.end)
    dates_sent = "start" in data or "end" in data
    if "start" in data:
        check_dates(org, start, end, errors, warnings, via_api)
    if dates_sent and end < start:
        errors.add("end", f"The end date {end} is before the start date {start}.")
    cycles_sent = bool(data.get("cycle")) or dates_sent
    late = []
    if started and dates_sent and not data.get("cycle") and start <= end:
        late = _late_cycles(group, end)
    if late:
        cycle_fields, periods = _drop_late_cycles(group, late, end, data, errors, warnings)
        data = _without_values_of(data, group, late)
    elif cycles_sent and end < start:
        cycle_fields = {name: getattr(group, name) for name in CYCLE_FIELDS}
        periods = []  # refused above: the cycles are checked once the dates are right
    elif cycles_sent:
        cycle = _cycle_of(group) | (data.get("cycle") or {})
        cycle_fields, periods = resolve_cycles(
            group.name, start, end, cycle, group.target_value_mode, errors
        )
        check_period_names_free(org, periods, errors, exclude_group=group)
    else:
        cycle_fields = {name: getattr(group, name) for name in CYCLE_FIELDS}
        periods = [PeriodSpec(p.ordinal, p.name, p.start, p.end) for p in group.periods.all()]
    till = resolve_till(org, data.get("till_code"), errors) if "till_code" in data else group.till
    milestone = Milestone(org, cycle_fields, periods, start, end, live=started,
                          cycles_refused=errors.has("cycle") or end < start)  # fmt: skip
    targets, renames = _targets(group, data, milestone, errors)
    dropped = {str(p.ordinal) for p in late}
    for _old, cleaned in targets if late else ():
        if cleaned.get("cycle_values"):
            cleaned["cycle_values"] = {
                k: v for k, v in cleaned["cycle_values"].items() if k not in dropped
            }
    offset = data.get("offset_days", group.offset_days)
    check_offset(offset, errors)
    errors.raise_if_any()
    warn_unknown_events(
        org, [(i, cleaned) for i, (_old, cleaned) in enumerate(targets, start=1)], warnings
    )
    fields = {
        "description": data.get("description", group.description),
        "offset_days": offset,
        "leaderboard_enabled": data.get("leaderboard_enabled", group.leaderboard_enabled),
        "send_enrolment_trigger": data.get("send_enrolment_trigger", group.send_enrolment_trigger),
        "start": start,
        "end": end,
        "till": till,
        **cycle_fields,
    }
    return MilestoneEdit(fields, periods if cycles_sent else None, targets, renames, warnings)


def _late_cycles(group: TargetGroup, end: date) -> list[Period]:
    """The fixed cycles that end after `end`."""
    return [p for p in group.periods.all() if p.end > end]


def _drop_late_cycles(group, late, end, data, errors: Errors, warnings: list[str]):
    """A started milestone ending on `end`, before its `late` cycles end: they are dropped
    if the request says so (`drop_cycles`) and none has started; otherwise refused at `end`,
    saying what to do."""
    names = ", ".join(p.name for p in late)
    plural = len(late) > 1
    started = [p for p in late if p.start <= org_today(group.organisation)]
    kept = [
        PeriodSpec(p.ordinal, p.name, p.start, p.end) for p in group.periods.all() if p.end <= end
    ]
    if started:
        errors.add(
            "end",
            f"The new end date {end} would cut the cycle{'s' if len(started) > 1 else ''} "
            f"{', '.join(p.name for p in started)}, which {'have' if len(started) > 1 else 'has'} "
            f"already started: the milestone can end no earlier than "
            f"{max(p.end for p in started)}.",
        )
    elif not data.get("drop_cycles"):
        errors.add(
            "end",
            f"The cycle{'s' if plural else ''} {names} end{'' if plural else 's'} after the new "
            f"end date {end}. Drop {'them' if plural else 'it'} (in the edit screen, tick "
            f'"Drop cycles"; in the API, "drop_cycles": true), or end the milestone on or '
            f"after {max(p.end for p in late)}.",
        )
    elif not kept:
        errors.add("end", f"The new end date {end} leaves no cycle: keep at least one.")
    else:
        warnings.append(
            f"The cycle{'s' if plural else ''} {names} {'were' if plural else 'was'} dropped: "
            f"the milestone now ends on {end}."
        )
    fields = {name: getattr(group, name) for name in CYCLE_FIELDS}
    fields["cycle_count"] = len(kept)
    return fields, kept


def _without_values_of(data: dict, group: TargetGroup, late: list[Period]) -> dict:
    """The request without the per-cycle values of the cycles it drops."""
    if not data.get("targets"):
        return data
    everything = [PeriodSpec(p.ordinal, p.name, p.start, p.end) for p in group.periods.all()]
    dropped = {p.ordinal for p in late}
    targets = []
    for t in data["targets"]:
        values = t.get("period_values")
        if isinstance(values, dict):
            t = {**t, "period_values": {
                k: v for k, v in values.items()
                if cycle_ordinal(k, everything, group.cycle_count) not in dropped
            }}  # fmt: skip
        targets.append(t)
    return {**data, "targets": targets}


def _cycle_of(group: TargetGroup) -> dict:
    """The milestone's cycle configuration in the API's shape (what a request changes)."""
    return {
        "type": group.cycle_type,
        "frequency": group.cycle_frequency,
        "days": group.cycle_days,
        "start": group.cycle_start,
        "count": group.cycle_count,
        "periods": [{"name": p.name, "start": p.start, "end": p.end} for p in group.periods.all()],
    }


def _targets(group: TargetGroup, data: dict, milestone: Milestone, errors: Errors):
    """The targets sent (None: all kept as they are): each matched to the existing target
    of its id, else of its name, else new."""
    targets_in = data.get("targets")
    if targets_in is None:
        return [], []
    existing = {t.id: t for t in group.targets.all()}
    by_name = {t.name: t for t in existing.values()}
    added = sum(1 for t in targets_in if not (t.get("id") in existing or t.get("name") in by_name))
    if len(existing) + added > MAX_TARGETS:
        errors.add("targets", f"A milestone can have at most {MAX_TARGETS} targets.")
    pairs: list[tuple[Target | None, dict]] = []
    renames: list[tuple[int, str, str]] = []
    for i, t in enumerate(targets_in, start=1):
        old = existing.get(t.get("id")) or (by_name.get(t.get("name")) if not t.get("id") else None)
        if t.get("id") and old is None:
            errors.add("targets", f"Target {i}: no target with id {t['id']} in this milestone.")
            continue
        cleaned = validate_target(milestone, t, i, errors, old)
        pairs.append((old, cleaned))
        if old is not None and cleaned.get("name") and cleaned["name"] != old.name:
            renames.append((i, old.name, cleaned["name"]))
    check_target_names(
        milestone.org,
        [c for _, c in pairs],
        errors,
        exclude_ids=[o.id for o, _ in pairs if o],
    )
    if renames and not data.get("rename_in_promotions"):
        check_renames(milestone.org, renames, errors)
    return pairs, renames
