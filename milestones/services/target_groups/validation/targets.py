"""One target of a create or an edit: what it tracks (KPI, entity, event...), its value per
cycle, its scope, its rule and its sub-targets; and the checks across targets (unique
names, renames that promotions would notice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .... import signals
from ....catalogue import CUSTOMER_EVENTS, KPI_ENTITIES, LOCKED_WHEN_LIVE
from ....cycles import cycle_length
from ....models import CycleType, Kpi, Organisation, PointsType, Target, TargetGroup
from .cycles import PeriodSpec, cycle_ordinal
from .errors import About, Errors, amount
from .rule import resolve_rule
from .scope import resolve_scope
from .sub_targets import resolve_sub_targets

TRACKING_DETAILS = (
    "event_name", "attribute", "extended_field", "extended_field_value", "points_type",
)  # fmt: skip


@dataclass
class Milestone:
    """What a target is checked against: its milestone as the request leaves it. `live`:
    it has started, so what an existing target tracks (LOCKED_WHEN_LIVE) may not change."""

    org: Organisation
    cycle_fields: dict
    periods: list[PeriodSpec]
    start: date
    end: date
    live: bool = False
    cycles_refused: bool = False  # the cycles were refused: per-cycle values are not checked


@dataclass
class TargetRequest:
    """A target as sent: on an edit, what is not sent keeps the `existing` target's value."""

    data: dict
    existing: Target | None

    def value_of(self, attr: str, default=""):
        if attr in self.data and self.data[attr] is not None:
            return self.data[attr]
        return getattr(self.existing, attr) if self.existing else default


def validate_target(
    milestone: Milestone, data: dict, index: int, errors: Errors, existing: Target | None = None
) -> dict:
    """The target's fields (and its `sub_targets`, None when not sent) as they should be
    written; each refusal goes into `errors` as "Target N (name): ..."."""
    asked = TargetRequest(data, existing)
    about = About(
        errors,
        "targets",
        f"Target {index} ({data.get('name') or (existing.name if existing else '?')})",
    )
    out: dict = {"name": _name(asked, about)}
    kpi = asked.value_of("kpi")
    if kpi not in Kpi.values:
        about.add(f"unknown KPI {kpi!r}; use one of {', '.join(Kpi.values)}.", target_field="kpi")
        return out
    out.update(_tracking(asked, kpi, about))
    if milestone.live and existing is not None:
        _check_locked_when_live(existing, out, about)
    _check_what_the_kpi_needs(kpi, out, about)
    out["points_type"] = _points_type(kpi, out["points_type"], about)
    out["source_target_group_id"] = _source(asked, kpi, milestone, about)
    out["value"] = _value(asked, about)
    out["cycle_values"] = _cycle_values(asked, milestone, about)
    out.update(resolve_scope(milestone.org, data.get("scope"), existing, about))
    out["rule"] = resolve_rule(asked.value_of("rule", ""), out["entity"], about)
    out["sub_targets"] = resolve_sub_targets(data.get("sub_targets"), kpi, existing, about)
    return out


def _name(asked: TargetRequest, about: About) -> str:
    if "name" in asked.data:
        name = asked.data.get("name")
    else:
        name = asked.existing.name if asked.existing else ""
    name = (name or "").strip()
    if not name:
        about.add("a target needs a name.", target_field="name")
    return name


def _tracking(asked: TargetRequest, kpi: str, about: About) -> dict:
    """The KPI, what it is tracked on (the KPI's default unless sent or kept), and the
    details it counts (event name, attribute, extended field...)."""
    existing = asked.existing
    entity = (
        asked.data.get("entity")
        or (existing.entity if existing and kpi == existing.kpi else "")
        or KPI_ENTITIES[kpi][0]
    )
    if entity not in KPI_ENTITIES[kpi]:
        about.add(
            f"the KPI {kpi} is tracked on {' or '.join(KPI_ENTITIES[kpi])}, not on {entity!r}.",
            target_field="entity",
        )
    out = {"kpi": kpi, "entity": entity}
    for attr in TRACKING_DETAILS:
        value = asked.value_of(attr)
        out[attr] = value.strip() if isinstance(value, str) else value or ""
    return out


def _check_locked_when_live(existing: Target, out: dict, about: About) -> None:
    for attr, what in LOCKED_WHEN_LIVE.items():
        was, now = getattr(existing, attr) or "", out[attr] or ""
        if now != was:
            about.add(
                f"{what} cannot be changed once the milestone is live: it stays "
                f"{was or '(blank)'}, not {now or '(blank)'}. Add a new target to track "
                "something else.",
                target_field=attr,
            )


def _check_what_the_kpi_needs(kpi: str, out: dict, about: About) -> None:
    if kpi.startswith("event_") and not out["event_name"]:
        about.add("behavioural event KPIs need the event name.", target_field="event_name")
    if kpi in (Kpi.EVENT_SUM, Kpi.EVENT_DAILY_MAX_SUM) and not out["attribute"]:
        about.add(f"the {kpi} KPI needs the event attribute to add up.", target_field="attribute")
    if kpi.startswith("customer_event_") and out["event_name"] not in CUSTOMER_EVENTS:
        about.add(
            f"customer-level event must be one of {', '.join(CUSTOMER_EVENTS)}.",
            target_field="event_name",
        )
    if kpi.startswith("extended_field_") and not out["extended_field"]:
        about.add(
            "extended-field KPIs need the extended field's name.", target_field="extended_field"
        )
    if kpi == Kpi.EXTENDED_FIELD_COUNT and not out["extended_field_value"]:
        about.add(
            "the COUNT KPI needs the extended field value to count.",
            target_field="extended_field_value",
        )


def _points_type(kpi: str, points_type: str, about: About) -> str:
    """The points KPI counts regular, promotional or both kinds of points (blank: both)."""
    if kpi != Kpi.POINTS:
        return points_type
    points_type = points_type or PointsType.BOTH
    if points_type not in PointsType.values:
        about.add("points type must be regular, promotional or both.", target_field="points_type")
    return points_type


def _source(asked: TargetRequest, kpi: str, milestone: Milestone, about: About) -> int | None:
    """The 'milestones achieved' KPI's source target group (None for other KPIs)."""
    if "source_target_group" in asked.data:
        source_id = asked.data.get("source_target_group")
    else:
        source_id = asked.existing.source_target_group_id if asked.existing else None
    if kpi != Kpi.MILESTONES_ACHIEVED:
        return None
    source = (
        TargetGroup.objects.filter(organisation=milestone.org, pk=source_id).first()
        if source_id
        else None
    )
    if source is None:
        about.add(
            "choose the target group whose achievements are counted.",
            target_field="source_target_group",
        )
        return None
    group_range = (milestone.start, milestone.end)
    for problem in milestones_achieved_source_problems(source, milestone.cycle_fields, group_range):
        about.add(problem, target_field="source_target_group")
    return source.id


def milestones_achieved_source_problems(
    source: TargetGroup, group_fields: dict, group_range
) -> list[str]:
    """Why a target group may not feed a 'milestones achieved' KPI (the reference's five criteria)."""
    problems = []
    if group_fields.get("cycle_type") != CycleType.FIXED_CALENDAR:
        problems.append(
            "'milestones achieved' tracking is only for milestones with a fixed calendar window."
        )
        return problems
    if not source.has_fixed_periods:
        problems.append(
            f"the source {source.name!r} must use a fixed calendar window (with a specific start date)."
        )
    if not source.is_active:
        problems.append(f"the source {source.name!r} must be active.")
    start, end = group_range
    if start and end and (source.start < start or source.end > end):
        problems.append(
            f"the source {source.name!r} ({source.start} to {source.end}) must lie inside this milestone's duration."
        )
    mine = cycle_length(group_fields.get("cycle_frequency") or "", group_fields.get("cycle_days"))
    if source.cycle_type == CycleType.FIXED_CALENDAR:
        theirs = cycle_length(source.cycle_frequency, source.cycle_days)
    else:
        spans = [(p.end - p.start).days + 1 for p in source.periods.all()]
        theirs = timedelta(days=max(spans) if spans else 0)
    if not theirs < mine:
        problems.append(
            f"the source {source.name!r} must have a shorter cycle frequency than this milestone."
        )
    return problems


def _value(asked: TargetRequest, about: About):
    value = amount(asked.value_of("value", None), about, "the target value", "value")
    # Only asked for when no target had a refusal yet: a broken target says why first.
    if value is None and not about.errors.has(about.key):
        about.add("a target value is required.", target_field="value")
    return value


def _cycle_values(asked: TargetRequest, milestone: Milestone, about: About) -> dict:
    """Per-cycle target values, keyed by the cycle's ordinal ({"2": "1500"}); an edit that
    sends none keeps the target's."""
    given = asked.data.get("period_values")
    if given is None:
        return asked.existing.cycle_values if asked.existing else {}
    if not isinstance(given, dict):
        about.add("period_values must map a period name to a value.", target_field="period_values")
        return {}
    values = {}
    for key, raw in given.items():
        ordinal = cycle_ordinal(key, milestone.periods, milestone.cycle_fields.get("cycle_count"))
        if ordinal is None:
            if milestone.cycles_refused:
                continue  # the cycles were refused: that refusal comes first
            about.add(
                f"period_values names an unknown period {key!r}.",
                target_field=f"period_values.{key}",
            )
            continue
        number = amount(raw, about, f"the value for {key}", f"period_values.{key}")
        if number is not None:
            values[str(ordinal)] = str(number)
    return values


# --- across targets ----------------------------------------------------------------------------


def check_target_names(org, cleaned_targets: list[dict], errors: Errors, exclude_ids=()) -> None:
    """Target names are unique in the organisation."""
    names = [t.get("name") for t in cleaned_targets if t.get("name")]
    position = {}  # name -> the position of its last use (1-based)
    for i, t in enumerate(cleaned_targets, start=1):
        if t.get("name"):
            position[t["name"]] = i
    for dup in {n for n in names if names.count(n) > 1}:
        errors.add(
            "targets",
            f"The target name {dup!r} is used twice.",
            target_field="name",
            target=position[dup],
        )
    taken = Target.objects.filter(organisation=org, name__in=names).exclude(pk__in=exclude_ids)
    for tname in taken.values_list("name", flat=True):
        errors.add(
            "targets",
            f"A target named {tname!r} already exists in this organisation: target names are unique.",
            target_field="name",
            target=position[tname],
        )


def check_renames(org, renames: list[tuple[int, str, str]], errors: Errors) -> None:
    """Refuse renaming a target that something above names (promotions answer
    `target_rename_check` with the names of the promotions whose condition names it)."""
    for index, old, new in renames:
        names: list[str] = []
        for _receiver, answer in signals.target_rename_check.send(
            sender=Target, organisation_id=org.id, old=old, new=new
        ):
            names += [n for n in answer or () if n not in names]
        if names:
            listed = ", ".join(f"“{n}”" for n in names)
            errors.add(
                "targets",
                f"Target {index} ({new}): the target {old!r} is named by the "
                f"promotion{'s' if len(names) > 1 else ''} {listed}. Rename it there too "
                '("rename_in_promotions": true; in the edit screen, tick "Also rename it in '
                'the promotions that name it") or change those promotions first.',
                target_field="name",
            )
