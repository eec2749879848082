"""Configuration rules for milestones, in one place for the admin and the API.

`target_group_create` / `target_group_update` take the API's shape as plain Python values
(dates as `date`, amounts as `Decimal`) and either write everything or raise one
`ValidationError` whose dict names each refused field with a message meant for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from rules import RuleError, validate_rule

from .. import signals
from ..cycles import (
    add_months,
    cycle_length,
    date_range_instants,
    fixed_windows,
    windows_that_fit,
)
from ..models import (
    AuditEntry,
    CycleType,
    EnrolmentMode,
    Entity,
    Frequency,
    Kpi,
    Organisation,
    Period,
    PointsType,
    Store,
    SubTarget,
    SubTargetCriteria,
    Target,
    TargetGroup,
    TargetValueMode,
    Template,
    UnifiedMode,
    User,
)

MAX_CYCLES = 100
MAX_TARGETS = 50
BACKDATE_MONTHS = 6

KPI_ENTITIES: dict[str, tuple[str, ...]] = {
    Kpi.GROSS_SALES: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.NET_SALES: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.QUANTITY: (Entity.LINE_ITEM, Entity.TRANSACTION),
    Kpi.TRANSACTION_COUNT: (Entity.TRANSACTION,),
    Kpi.DAYS_OF_ACTIVITY: (Entity.TRANSACTION,),
    Kpi.EXTENDED_FIELD_COUNT: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.EXTENDED_FIELD_SUM: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.POINTS: (Entity.POINTS,),
    Kpi.EVENT_COUNT: (Entity.EVENT,),
    Kpi.EVENT_DAYS: (Entity.EVENT,),
    Kpi.EVENT_SUM: (Entity.EVENT,),
    Kpi.EVENT_DAILY_MAX_SUM: (Entity.EVENT,),
    Kpi.CUSTOMER_EVENT_COUNT: (Entity.CUSTOMER_EVENT,),
    Kpi.CUSTOMER_EVENT_DAYS: (Entity.CUSTOMER_EVENT,),
    Kpi.MILESTONES_ACHIEVED: (Entity.MILESTONE,),
}
CUSTOMER_EVENTS = (
    "points_redemption",
    "coupon_redemption",
    "return",
    "points_transfer",
    "transaction_update",
    "profile_update",
    "promised_points_conversion",
    "redemption_reversal",
    "referral",
)
PERCENTAGE_KPIS = (Kpi.GROSS_SALES, Kpi.NET_SALES)
REPROCESS_FIELDS = ("rule", "scope_stores", "scope_zones", "scope_concepts", "kpi", "entity")
#: What tracking counts may not change once a milestone has started: the progress and the
#: payouts made so far would stop meaning what they meant.
LOCKED_WHEN_LIVE = {
    "kpi": "the KPI (kpi)",
    "entity": "what it is tracked on (entity)",
    "event_name": "the event name (event_name)",
}
TARGET_FIELD_CODE = "target_field:"
TILL_REQUIRED = (
    "A till is required: points this milestone gives are attributed to it. Give the code "
    "of a store of this organisation marked as a till."
)
TARGET_FIELDS = (
    "kpi", "entity", "event_name", "attribute", "extended_field", "extended_field_value",
    "points_type", "value", "rule",
)  # fmt: skip


@dataclass
class Errors:
    """Collects refusals so one answer lists every problem of a request."""

    items: dict[str, list[str | ValidationError]] = field(default_factory=dict)

    def add(self, key: str, message: str, *, target_field: str | None = None) -> None:
        """`target_field`: the field of the target a "Target N (...): ..." message is about,
        carried as the error's code (`target_field:kpi`) so a screen can show it there."""
        if target_field:
            self.items.setdefault(key, []).append(
                ValidationError(message, code=f"{TARGET_FIELD_CODE}{target_field}")
            )
        else:
            self.items.setdefault(key, []).append(message)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.items)


def _today(org: Organisation) -> date:
    return timezone.now().astimezone(org.tzinfo).date()


def _decimal(value, errors: Errors, key: str, label: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.add(key, f"{label} must be a number, got {value!r}.")
        return None
    if not number.is_finite():
        errors.add(key, f"{label} must be a finite number.")
        return None
    if number < 0:
        errors.add(key, f"{label} cannot be negative.")
        return None
    if abs(number) >= Decimal("1e14"):
        errors.add(key, f"{label} is too large.")
        return None
    return number


# --- cycles -----------------------------------------------------------------------------------


@dataclass
class PeriodSpec:
    ordinal: int
    name: str
    start: date
    end: date


def _resolve_cycles(
    org, name, start, end, cycle: dict, mode: str, errors: Errors
) -> tuple[dict, list[PeriodSpec]]:
    """Validate the cycle configuration; return model fields and the fixed periods, if any."""
    ctype = cycle.get("type") or CycleType.FIXED_CALENDAR
    fields = {
        "cycle_type": ctype,
        "cycle_frequency": "",
        "cycle_days": None,
        "cycle_start": None,
        "cycle_count": None,
    }
    periods: list[PeriodSpec] = []
    if ctype not in CycleType.values:
        errors.add(
            "cycle", f"Unknown cycle type {ctype!r}: use one of {', '.join(CycleType.values)}."
        )
        return fields, periods
    frequency = cycle.get("frequency") or ""
    days = cycle.get("days")
    count = cycle.get("count")
    cstart = cycle.get("start") or start

    if count is not None and not (1 <= int(count) <= MAX_CYCLES):
        errors.add(
            "cycle", f"The number of cycles must be between 1 and {MAX_CYCLES}, got {count}."
        )
        return fields, periods
    if mode == TargetValueMode.PER_CUSTOMER and ctype == CycleType.TILL_ACHIEVEMENT:
        errors.add(
            "cycle",
            "Till target achievement cycles need the same target for all customers; "
            "per-customer targets are not allowed with this cycle type.",
        )
        return fields, periods

    if ctype == CycleType.CUSTOM_PERIODS:
        given = cycle.get("periods") or []
        if not given:
            errors.add(
                "cycle", "Custom periods need at least one period with a start and an end date."
            )
            return fields, periods
        if len(given) > MAX_CYCLES:
            errors.add(
                "cycle", f"A milestone can have at most {MAX_CYCLES} cycles, got {len(given)}."
            )
            return fields, periods
        for i, p in enumerate(given, start=1):
            pname = (p.get("name") or f"{name} P{i}").strip()
            pstart, pend = p.get("start"), p.get("end")
            if not pstart or not pend:
                errors.add("cycle", f"Period {i} ({pname}) needs a start and an end date.")
                continue
            if pend < pstart:
                errors.add(
                    "cycle", f"Period {i} ({pname}) ends on {pend}, before it starts on {pstart}."
                )
                continue
            periods.append(PeriodSpec(i, pname, pstart, pend))
        ordered = sorted(periods, key=lambda p: p.start)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.start <= a.end:
                errors.add(
                    "cycle",
                    f"Periods {a.name} and {b.name} overlap: custom periods may not overlap.",
                )
        names = [p.name for p in periods]
        for dup in {n for n in names if names.count(n) > 1}:
            errors.add("cycle", f"The period name {dup!r} is used twice.")
        fields["cycle_count"] = len(given)
    elif ctype in (CycleType.FIXED_CALENDAR, CycleType.CYCLIC):
        if frequency not in Frequency.values:
            errors.add(
                "cycle",
                f"A {ctype.replace('_', ' ')} cycle needs a frequency: one of {', '.join(Frequency.values)}.",
            )
            return fields, periods
        if frequency == Frequency.DAYS and (not days or int(days) < 1 or int(days) > 3660):
            errors.add("cycle", "A cycle of N days needs a number of days between 1 and 3660.")
            return fields, periods
        if cstart < start or cstart > end:
            errors.add(
                "cycle",
                f"The cycle start {cstart} must lie inside the milestone's duration ({start} to {end}).",
            )
            return fields, periods
        fields.update(
            cycle_frequency=frequency,
            cycle_days=int(days) if frequency == Frequency.DAYS else None,
            cycle_start=cstart,
        )
        if ctype == CycleType.FIXED_CALENDAR:
            if count is None:
                count = windows_that_fit(cstart, end, frequency, fields["cycle_days"], MAX_CYCLES)
                if count == 0:
                    errors.add(
                        "cycle",
                        f"Not one whole {frequency} cycle from {cstart} fits before the milestone ends on {end}.",
                    )
                    return fields, periods
            windows = fixed_windows(cstart, frequency, fields["cycle_days"], int(count))
            last_end = windows[-1][1]
            if last_end > end:
                errors.add(
                    "cycle",
                    f"Cycle {len(windows)} would end on {last_end}, after the milestone ends on {end}: "
                    "cycles must lie inside the milestone's duration.",
                )
                return fields, periods
            periods = [
                PeriodSpec(i, f"{name} P{i}", a, b) for i, (a, b) in enumerate(windows, start=1)
            ]
        else:
            if count is None:
                errors.add("cycle", "A cyclic window needs the number of cycles (1 to 100).")
                return fields, periods
        fields["cycle_count"] = int(count)
    else:  # till achievement
        if count is None:
            errors.add(
                "cycle", "Till target achievement needs a maximum number of cycles (1 to 100)."
            )
            return fields, periods
        if cstart < start or cstart > end:
            errors.add(
                "cycle",
                f"The cycle start {cstart} must lie inside the milestone's duration ({start} to {end}).",
            )
            return fields, periods
        fields.update(cycle_start=cstart, cycle_count=int(count))

    for p in periods:
        if p.start < start or p.end > end:
            errors.add(
                "cycle",
                f"Period {p.name} ({p.start} to {p.end}) lies outside the milestone's duration ({start} to {end}).",
            )
    return fields, periods


def _check_period_names_free(
    org, periods: list[PeriodSpec], errors: Errors, exclude_group=None
) -> None:
    names = [p.name for p in periods]
    taken = Period.objects.filter(organisation=org, name__in=names)
    if exclude_group is not None:
        taken = taken.exclude(target_group=exclude_group)
    for pname in taken.values_list("name", flat=True):
        errors.add(
            "cycle",
            f"A period named {pname!r} already exists in this organisation: period names are unique.",
        )


# --- targets ----------------------------------------------------------------------------------


def _cycle_ordinal(key, periods: list[PeriodSpec], count: int | None) -> int | None:
    """A period_values key: the period's name, 'P2', 'C2' or '2'."""
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


def _validate_target(
    org,
    group_fields: dict,
    periods,
    data: dict,
    index: int,
    errors: Errors,
    existing: Target | None,
    group_range,
    live: bool = False,
) -> dict:
    """One target of a create or an edit; `live`: the milestone has started, so what an
    existing target tracks (LOCKED_WHEN_LIVE) may not change."""
    label = f"Target {index} ({data.get('name') or (existing.name if existing else '?')})"
    key = "targets"
    out: dict = {}
    name = (data.get("name") if "name" in data else (existing.name if existing else "")) or ""
    name = name.strip()
    if not name:
        errors.add(key, f"{label}: a target needs a name.")
    out["name"] = name

    def cur(attr, default=""):
        if attr in data and data[attr] is not None:
            return data[attr]
        return getattr(existing, attr) if existing else default

    kpi = cur("kpi")
    if kpi not in Kpi.values:
        errors.add(key, f"{label}: unknown KPI {kpi!r}; use one of {', '.join(Kpi.values)}.")
        return out
    entity = (
        data.get("entity")
        or (existing.entity if existing and kpi == existing.kpi else "")
        or KPI_ENTITIES[kpi][0]
    )
    if entity not in KPI_ENTITIES[kpi]:
        errors.add(
            key,
            f"{label}: the KPI {kpi} is tracked on {' or '.join(KPI_ENTITIES[kpi])}, not on {entity!r}.",
        )
    out.update(kpi=kpi, entity=entity)
    for attr in (
        "event_name",
        "attribute",
        "extended_field",
        "extended_field_value",
        "points_type",
    ):
        out[attr] = (cur(attr) or "").strip() if isinstance(cur(attr), str) else cur(attr) or ""
    if live and existing is not None:
        for attr, what in LOCKED_WHEN_LIVE.items():
            was, now = getattr(existing, attr) or "", out[attr] or ""
            if now != was:
                errors.add(
                    key,
                    f"{label}: {what} cannot be changed once the milestone is live: it stays "
                    f"{was or '(blank)'}, not {now or '(blank)'}. Add a new target to track "
                    "something else.",
                    target_field=attr,
                )
    if kpi.startswith("event_") and not out["event_name"]:
        errors.add(key, f"{label}: behavioural event KPIs need the event name.")
    if kpi in (Kpi.EVENT_SUM, Kpi.EVENT_DAILY_MAX_SUM) and not out["attribute"]:
        errors.add(key, f"{label}: the {kpi} KPI needs the event attribute to add up.")
    if kpi.startswith("customer_event_") and out["event_name"] not in CUSTOMER_EVENTS:
        errors.add(
            key, f"{label}: customer-level event must be one of {', '.join(CUSTOMER_EVENTS)}."
        )
    if kpi.startswith("extended_field_") and not out["extended_field"]:
        errors.add(key, f"{label}: extended-field KPIs need the extended field's name.")
    if kpi == Kpi.EXTENDED_FIELD_COUNT and not out["extended_field_value"]:
        errors.add(key, f"{label}: the COUNT KPI needs the extended field value to count.")
    if kpi == Kpi.POINTS:
        out["points_type"] = out["points_type"] or PointsType.BOTH
        if out["points_type"] not in PointsType.values:
            errors.add(key, f"{label}: points type must be regular, promotional or both.")

    # milestones achieved: the reference's five criteria for the source target group
    source_id = (
        data.get("source_target_group")
        if "source_target_group" in data
        else (existing.source_target_group_id if existing else None)
    )
    out["source_target_group_id"] = None
    if kpi == Kpi.MILESTONES_ACHIEVED:
        source = (
            TargetGroup.objects.filter(organisation=org, pk=source_id).first()
            if source_id
            else None
        )
        if source is None:
            errors.add(key, f"{label}: choose the target group whose achievements are counted.")
        else:
            out["source_target_group_id"] = source.id
            problems = milestones_achieved_source_problems(source, group_fields, group_range)
            for problem in problems:
                errors.add(key, f"{label}: {problem}")

    value = _decimal(cur("value", None), errors, key, f"{label}: the target value")
    if value is None and not errors.items.get(key):
        errors.add(key, f"{label}: a target value is required.")
    out["value"] = value
    # per-cycle values
    raw_cycle_values = data.get("period_values")
    if raw_cycle_values is None:
        out["cycle_values"] = existing.cycle_values if existing else {}
    else:
        cycle_values = {}
        if not isinstance(raw_cycle_values, dict):
            errors.add(key, f"{label}: period_values must map a period name to a value.")
        else:
            for pkey, pval in raw_cycle_values.items():
                ordinal = _cycle_ordinal(pkey, periods, group_fields.get("cycle_count"))
                if ordinal is None:
                    errors.add(key, f"{label}: period_values names an unknown period {pkey!r}.")
                    continue
                number = _decimal(pval, errors, key, f"{label}: the value for {pkey}")
                if number is not None:
                    cycle_values[str(ordinal)] = str(number)
        out["cycle_values"] = cycle_values

    # scope
    scope = data.get("scope")
    if scope is None and existing is not None:
        out.update(
            scope_stores=existing.scope_stores,
            scope_zones=existing.scope_zones,
            scope_concepts=existing.scope_concepts,
        )
    else:
        scope = scope or {}
        stores = [str(s) for s in scope.get("stores") or []]
        zones = [str(z) for z in scope.get("zones") or []]
        concepts = [str(c) for c in scope.get("concepts") or []]
        known = Store.objects.filter(organisation=org)
        missing = set(stores) - set(known.filter(code__in=stores).values_list("code", flat=True))
        if missing:
            errors.add(
                key, f"{label}: unknown store code(s) in the scope: {', '.join(sorted(missing))}."
            )
        missing_zones = set(zones) - set(
            known.filter(zone__in=zones).values_list("zone", flat=True)
        )
        if missing_zones:
            errors.add(key, f"{label}: no store is in zone(s) {', '.join(sorted(missing_zones))}.")
        missing_concepts = set(concepts) - set(
            known.filter(concept__in=concepts).values_list("concept", flat=True)
        )
        if missing_concepts:
            errors.add(
                key, f"{label}: no store has concept(s) {', '.join(sorted(missing_concepts))}."
            )
        out.update(scope_stores=stores, scope_zones=zones, scope_concepts=concepts)

    rule = cur("rule", "") or ""
    rule = rule.strip()
    if rule:
        try:
            validate_rule(rule, purpose="target", entity=entity)
        except RuleError as exc:
            errors.add(key, f"{label}: rule {exc}")
    out["rule"] = rule

    # sub-targets
    subs = data.get("sub_targets")
    out["sub_targets"] = None
    if subs is not None:
        existing_subs = {s.name: s for s in existing.sub_targets.all()} if existing else {}
        by_id = {s.id: s for s in existing_subs.values()}
        cleaned = []
        for j, sub in enumerate(subs, start=1):
            sname = (sub.get("name") or "").strip()
            slabel = f"{label}, sub-target {j} ({sname or '?'})"
            if not sname:
                errors.add(key, f"{slabel}: a sub-target needs a name.")
            old = by_id.get(sub.get("id")) or existing_subs.get(sname)
            criteria = sub.get("criteria") or (old.criteria if old else SubTargetCriteria.ABSOLUTE)
            if criteria not in SubTargetCriteria.values:
                errors.add(key, f"{slabel}: criteria must be percentage or absolute.")
            if old is not None and criteria != old.criteria:
                errors.add(
                    key,
                    f"{slabel}: the achievement criteria cannot be changed after creation; only the value can.",
                )
            if criteria == SubTargetCriteria.PERCENTAGE and kpi not in PERCENTAGE_KPIS:
                errors.add(
                    key,
                    f"{slabel}: percentage sub-targets are only for gross and net sales; use an absolute value.",
                )
            svalue = _decimal(sub.get("value"), errors, key, f"{slabel}: the value")
            if svalue is None or svalue == 0:
                errors.add(key, f"{slabel}: the value must be greater than 0.")
            elif criteria == SubTargetCriteria.PERCENTAGE and svalue > 100:
                errors.add(key, f"{slabel}: a percentage cannot exceed 100.")
            cleaned.append(
                {
                    "id": old.id if old else None,
                    "name": sname,
                    "criteria": criteria,
                    "value": svalue,
                }
            )
        names = [c["name"] for c in cleaned]
        for dup in {n for n in names if names.count(n) > 1}:
            errors.add(key, f"{label}: the sub-target name {dup!r} is used twice.")
        out["sub_targets"] = cleaned
    return out


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
    if source.start < start or source.end > end:
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


# --- create / update --------------------------------------------------------------------------


def _resolve_till(org, till_code, errors: Errors) -> Store | None:
    """The milestone's till: required, a store of the organisation marked as a till
    (the reference: "Till is a mandatory parameter for point allocation")."""
    if till_code is None or not str(till_code).strip():
        errors.add("till_code", TILL_REQUIRED)
        return None
    till = Store.objects.filter(organisation=org, code=till_code).first()
    if till is None:
        errors.add(
            "till_code",
            f"Unknown till code {till_code!r}: no store of this organisation has that code.",
        )
        return None
    if not till.is_till:
        errors.add(
            "till_code",
            f"The store {till_code!r} is not a till: choose a store marked as a till "
            "(points are attributed to a till).",
        )
        return None
    return till


def sole_till_code(org) -> str | None:
    """The code of the organisation's till when it has exactly one (what a template or a
    clone without a till picks), else None."""
    codes = list(
        Store.objects.filter(organisation=org, is_till=True).values_list("code", flat=True)[:2]
    )
    return codes[0] if len(codes) == 1 else None


def _check_dates(
    org, start, end, errors: Errors, warnings: list[str], via_api: bool, today=None
) -> None:
    if start is None or end is None:
        errors.add(
            "start" if start is None else "end", "The milestone needs a start and an end date."
        )
        return
    if end < start:
        errors.add("end", f"The end date {end} is before the start date {start}.")
    today = today or _today(org)
    limit = add_months(today, -BACKDATE_MONTHS)
    if start < limit:
        if via_api:
            warnings.append(
                f"The start date {start} is more than {BACKDATE_MONTHS} months in the past; past activities "
                "must be re-processed, and backdated milestones suit immediate-benefit use only."
            )
        else:
            errors.add(
                "start",
                f"A milestone can start at most {BACKDATE_MONTHS} months in the past (on or after {limit}).",
            )
    elif start < today:
        warnings.append(
            f"The start date {start} is in the past: re-process the stored activities to count them "
            "(backdated milestones suit immediate-benefit use only)."
        )


def audit(*, organisation, user, action: str, obj, changes: dict | None = None) -> None:
    AuditEntry.objects.create(
        organisation=organisation,
        user=user if user and user.pk else None,
        action=action,
        object_type=obj._meta.model_name,
        object_id=obj.pk,
        object_name=str(obj)[:200],
        changes=changes or {},
    )


def _jsonable(value):
    if isinstance(value, (date, Decimal)):
        return str(value)
    return value


def _write_periods(group: TargetGroup, periods: list[PeriodSpec]) -> None:
    tz = group.organisation.tzinfo
    group.periods.all().delete()
    Period.objects.bulk_create(
        [
            Period(
                organisation=group.organisation,
                target_group=group,
                ordinal=p.ordinal,
                name=p.name,
                start=p.start,
                end=p.end,
                starts_at=date_range_instants(p.start, p.end, tz)[0],
                ends_at=date_range_instants(p.start, p.end, tz)[1],
            )
            for p in periods
        ]
    )


def _write_target(
    group, cleaned: dict, ordinal: int, existing: Target | None = None
) -> tuple[Target, dict]:
    subs = cleaned.pop("sub_targets")
    target = existing or Target(
        organisation=group.organisation, target_group=group, ordinal=ordinal
    )
    changes = {}
    for attr, value in cleaned.items():
        old = getattr(target, attr, None)
        if existing is None or old != value:
            changes[attr] = [_jsonable(old) if existing else None, _jsonable(value)]
        setattr(target, attr, value)
    target.full_clean(exclude=["organisation", "target_group", "source_target_group"])
    target.save()
    if subs is not None:
        keep = []
        for s in subs:
            sub = SubTarget.objects.filter(pk=s["id"], target=target).first() if s["id"] else None
            if sub is None:
                sub = SubTarget(
                    target=target, name=s["name"], criteria=s["criteria"], value=s["value"]
                )
            else:
                sub.name, sub.value = s["name"], s["value"]
            sub.save()
            keep.append(sub.pk)
        target.sub_targets.exclude(pk__in=keep).delete()
        changes["sub_targets"] = [[s["name"], s["criteria"], str(s["value"])] for s in subs]
    return target, changes


def _check_target_names(org, cleaned_targets: list[dict], errors: Errors, exclude_ids=()) -> None:
    names = [t.get("name") for t in cleaned_targets if t.get("name")]
    for dup in {n for n in names if names.count(n) > 1}:
        errors.add("targets", f"The target name {dup!r} is used twice.")
    taken = Target.objects.filter(organisation=org, name__in=names).exclude(pk__in=exclude_ids)
    for tname in taken.values_list("name", flat=True):
        errors.add(
            "targets",
            f"A target named {tname!r} already exists in this organisation: target names are unique.",
        )


@transaction.atomic
def target_group_create(
    *,
    organisation: Organisation,
    data: dict,
    user: User | None = None,
    via_api: bool = False,
    today: date | None = None,
) -> tuple[TargetGroup, list[str]]:
    """Create a milestone with its cycles, targets and sub-targets. Returns it and warnings."""
    data = dict(data)
    if data.get("template"):
        data = apply_template(
            organisation=organisation, template_id=data.pop("template"), data=data
        )
    errors = Errors()
    warnings: list[str] = []
    name = (data.get("name") or "").strip()
    if not name:
        errors.add("name", "A milestone needs a name.")
    elif TargetGroup.objects.filter(organisation=organisation, name=name).exists():
        errors.add(
            "name", f"A milestone named {name!r} already exists: milestone names are unique."
        )
    start, end = data.get("start"), data.get("end")
    _check_dates(organisation, start, end, errors, warnings, via_api, today)
    mode = data.get("target_value_mode") or TargetValueMode.SAME_FOR_ALL
    if mode not in TargetValueMode.values:
        errors.add("target_value_mode", "Use same_for_all or per_customer.")
    enrolment = data.get("enrolment") or {}
    enrolment_mode = enrolment.get("mode") or (
        EnrolmentMode.CUSTOM_LIST
        if mode == TargetValueMode.PER_CUSTOMER
        else EnrolmentMode.ALL_CUSTOMERS
    )
    if enrolment_mode not in EnrolmentMode.values:
        errors.add("enrolment", f"Unknown enrolment mode {enrolment_mode!r}.")
    elif mode == TargetValueMode.PER_CUSTOMER and enrolment_mode != EnrolmentMode.CUSTOM_LIST:
        errors.add(
            "enrolment",
            "Different targets for each customer are uploaded as a custom list: use the custom_list enrolment.",
        )
    till = _resolve_till(organisation, data.get("till_code"), errors)
    unified = data.get("unified_mode") or ("all" if data.get("tracking_type") == "unified" else "")
    if unified not in UnifiedMode.values:
        errors.add("unified_mode", "Unified targets combine with 'all' or 'any'.")
    errors.raise_if_any()

    cycle_fields, periods = _resolve_cycles(
        organisation, name, start, end, data.get("cycle") or {}, mode, errors
    )
    _check_period_names_free(organisation, periods, errors)
    targets_in = data.get("targets") or []
    if not targets_in:
        errors.add("targets", "A milestone needs at least one target.")
    if len(targets_in) > MAX_TARGETS:
        errors.add(
            "targets", f"A milestone can have at most {MAX_TARGETS} targets, got {len(targets_in)}."
        )
    if unified and len(targets_in) < 2:
        errors.add("targets", "A unified milestone combines at least two targets.")
    cleaned = [
        _validate_target(organisation, cycle_fields, periods, t, i, errors, None, (start, end))
        for i, t in enumerate(targets_in[:MAX_TARGETS], start=1)
    ]
    _check_target_names(organisation, cleaned, errors)
    offset = data.get("offset_days")
    if offset is not None and not (0 <= int(offset) <= 365):
        errors.add("offset_days", "Offset days must be between 0 and 365.")
    errors.raise_if_any()

    group = TargetGroup(
        organisation=organisation,
        name=name,
        description=data.get("description") or "",
        start=start,
        end=end,
        till=till,
        target_value_mode=mode,
        enrolment_mode=enrolment_mode,
        offset_days=offset,
        leaderboard_enabled=bool(data.get("leaderboard_enabled")),
        unified_mode=unified,
        is_active=data.get("is_active", True) is not False,
        send_enrolment_trigger=data.get("send_enrolment_trigger", True) is not False,
        created_by=user if user and user.pk else None,
        created_by_role=getattr(user, "role", "")
        or ("superuser" if getattr(user, "is_superuser", False) else ""),
        **cycle_fields,
    )
    group.full_clean(exclude=["till", "created_by"])
    group.save()
    _write_periods(group, periods)
    for i, t in enumerate(cleaned, start=1):
        _write_target(group, t, i)
    audit(
        organisation=organisation,
        user=user,
        action="create",
        obj=group,
        changes={"data": _summary(group)},
    )
    signals.target_group_saved.send(
        sender=TargetGroup,
        target_group=group,
        created=True,
        audience_group=enrolment.get("audience_group"),
    )
    return group, warnings


def _summary(group: TargetGroup) -> dict:
    return {
        "start": str(group.start),
        "end": str(group.end),
        "cycle_type": group.cycle_type,
        "cycle_frequency": group.cycle_frequency,
        "cycle_count": group.cycle_count,
        "targets": [t.name for t in group.targets.all()],
    }


LOCKED_ONCE_STARTED = ("start", "cycle", "target_value_mode")


def _check_renames(org, renames: list[tuple[int, str, str]], errors: Errors) -> None:
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


@transaction.atomic
def target_group_update(
    *, target_group: TargetGroup, data: dict, user: User | None = None, via_api: bool = False
) -> tuple[TargetGroup, list[str], bool]:
    """Edit within limits. Returns (group, warnings, reprocess_suggested).

    The limits: the name, the target value mode and the tracking type never change; once
    the milestone has started, neither do its start, its cycles, nor what each existing
    target tracks (LOCKED_WHEN_LIVE). A target that a promotion names is renamed only with
    `rename_in_promotions`, which renames it in those promotions' conditions too."""
    group = TargetGroup.objects.select_for_update().get(pk=target_group.pk)
    org = group.organisation
    errors = Errors()
    warnings: list[str] = []
    status = group.status()
    if "name" in data and (data["name"] or "").strip() != group.name:
        errors.add("name", "The milestone's name cannot be changed after creation.")
    if "target_value_mode" in data and data["target_value_mode"] != group.target_value_mode:
        errors.add("target_value_mode", "The target value mode cannot be changed after creation.")
    if status != "upcoming":
        if "start" in data and data["start"] != group.start:
            errors.add("start", "The start date cannot be changed once the milestone has started.")
        if "cycle" in data and data["cycle"]:
            errors.add("cycle", "Cycles cannot be changed once the milestone has started.")
    errors.raise_if_any()
    changes: dict = {}
    start = data.get("start", group.start)
    end = data.get("end", group.end)
    if "start" in data or "end" in data:
        _check_dates(org, start, end, errors, warnings, via_api) if "start" in data else None
        if end < start:
            errors.add("end", f"The end date {end} is before the start date {start}.")
    cycle_in = data.get("cycle")
    periods: list[PeriodSpec]
    if cycle_in or "start" in data or "end" in data:
        base_cycle = {
            "type": group.cycle_type,
            "frequency": group.cycle_frequency,
            "days": group.cycle_days,
            "start": group.cycle_start,
            "count": group.cycle_count,
            "periods": [
                {"name": p.name, "start": p.start, "end": p.end} for p in group.periods.all()
            ],
        }
        if cycle_in:
            base_cycle.update(cycle_in)
        cycle_fields, periods = _resolve_cycles(
            org, group.name, start, end, base_cycle, group.target_value_mode, errors
        )
        _check_period_names_free(org, periods, errors, exclude_group=group)
    else:
        cycle_fields = {
            "cycle_type": group.cycle_type, "cycle_frequency": group.cycle_frequency, "cycle_days": group.cycle_days,
            "cycle_start": group.cycle_start, "cycle_count": group.cycle_count,
        }  # fmt: skip
        periods = [PeriodSpec(p.ordinal, p.name, p.start, p.end) for p in group.periods.all()]
    till = _resolve_till(org, data.get("till_code"), errors) if "till_code" in data else group.till
    targets_in = data.get("targets")
    cleaned_pairs = []
    renames: list[tuple[int, str, str]] = []  # (position in the request, old name, new name)
    started = status != "upcoming"
    if targets_in is not None:
        existing = {t.id: t for t in group.targets.all()}
        by_name = {t.name: t for t in existing.values()}
        total = len(existing) + sum(
            1 for t in targets_in if not (t.get("id") in existing or t.get("name") in by_name)
        )
        if total > MAX_TARGETS:
            errors.add("targets", f"A milestone can have at most {MAX_TARGETS} targets.")
        for i, t in enumerate(targets_in, start=1):
            old = existing.get(t.get("id")) or (
                by_name.get(t.get("name")) if not t.get("id") else None
            )
            if t.get("id") and old is None:
                errors.add("targets", f"Target {i}: no target with id {t['id']} in this milestone.")
                continue
            cleaned = _validate_target(
                org, cycle_fields, periods, t, i, errors, old, (start, end), live=started
            )
            cleaned_pairs.append((old, cleaned))
            if old is not None and cleaned.get("name") and cleaned["name"] != old.name:
                renames.append((i, old.name, cleaned["name"]))
        _check_target_names(
            org,
            [c for _, c in cleaned_pairs],
            errors,
            exclude_ids=[o.id for o, _ in cleaned_pairs if o],
        )
        if renames and not data.get("rename_in_promotions"):
            _check_renames(org, renames, errors)
    offset = data.get("offset_days", group.offset_days)
    if offset is not None and not (0 <= int(offset) <= 365):
        errors.add("offset_days", "Offset days must be between 0 and 365.")
    errors.raise_if_any()

    simple = {"description": data.get("description", group.description), "offset_days": offset,
              "leaderboard_enabled": data.get("leaderboard_enabled", group.leaderboard_enabled),
              "send_enrolment_trigger": data.get("send_enrolment_trigger", group.send_enrolment_trigger),
              "start": start, "end": end, "till": till, **cycle_fields}  # fmt: skip
    for attr, value in simple.items():
        if getattr(group, attr) != value:
            changes[attr] = [
                _jsonable(getattr(group, attr)) if attr != "till" else str(group.till or ""),
                _jsonable(value) if attr != "till" else str(value or ""),
            ]
            setattr(group, attr, value)
    group.full_clean(exclude=["till", "created_by"])
    group.save()
    if cycle_in or "start" in data or "end" in data:
        if [(p.name, p.start, p.end) for p in periods] != [
            (p.name, p.start, p.end) for p in group.periods.all()
        ]:
            _write_periods(group, periods)
    reprocess = False
    next_ordinal = (
        group.targets.order_by("-ordinal").values_list("ordinal", flat=True).first() or 0
    ) + 1
    for old, cleaned in cleaned_pairs:
        target, tchanges = _write_target(group, cleaned, next_ordinal, old)
        if old is None:
            next_ordinal += 1
            reprocess = True
        if tchanges:
            changes[f"target:{target.name}"] = tchanges
        if old is not None and any(f in tchanges for f in REPROCESS_FIELDS):
            reprocess = True
    if renames and data.get("rename_in_promotions"):
        for _, old_name, new_name in renames:
            signals.target_renamed.send(
                sender=Target, organisation_id=org.id, old=old_name, new=new_name
            )
    if changes:
        audit(organisation=org, user=user, action="update", obj=group, changes=changes)
    signals.target_group_saved.send(
        sender=TargetGroup,
        target_group=group,
        created=False,
        audience_group=(data.get("enrolment") or {}).get("audience_group"),
    )
    return group, warnings, reprocess


@transaction.atomic
def target_group_set_active(
    *, target_group: TargetGroup, active: bool, user: User | None = None
) -> TargetGroup:
    group = TargetGroup.objects.select_for_update().get(pk=target_group.pk)
    if active and group.status() == "ended":
        raise ValidationError({"is_active": ["An ended milestone cannot be re-activated."]})
    if group.is_active != active:
        group.is_active = active
        group.save(update_fields=["is_active", "updated_at"])
        audit(organisation=group.organisation, user=user, action="activate" if active else "deactivate", obj=group,
              changes={"is_active": [not active, active]})  # fmt: skip
    return group


def target_group_as_data(group: TargetGroup, *, with_names: bool = True) -> dict:
    """The API's create shape for an existing milestone (used by cloning and templates)."""
    data = {
        "description": group.description,
        "till_code": group.till.code if group.till else None,
        "target_value_mode": group.target_value_mode,
        "cycle": {
            "type": group.cycle_type,
            "frequency": group.cycle_frequency or None,
            "days": group.cycle_days,
            "count": group.cycle_count,
        },
        "offset_days": group.offset_days,
        "leaderboard_enabled": group.leaderboard_enabled,
        "unified_mode": group.unified_mode,
        "enrolment": {"mode": group.enrolment_mode},
        "targets": [],
    }
    if group.cycle_type == CycleType.CUSTOM_PERIODS:
        data["cycle"]["periods"] = [
            {"name": p.name, "start": p.start, "end": p.end} for p in group.periods.all()
        ]
    if with_names:
        data.update(name=group.name, start=group.start, end=group.end)
        data["cycle"]["start"] = group.cycle_start
    for t in group.targets.all():
        data["targets"].append(
            {
                "name": t.name, "kpi": t.kpi, "entity": t.entity, "event_name": t.event_name, "attribute": t.attribute,
                "extended_field": t.extended_field, "extended_field_value": t.extended_field_value,
                "points_type": t.points_type, "source_target_group": t.source_target_group_id, "value": t.value,
                "period_values": {f"P{k}": Decimal(v) for k, v in t.cycle_values.items()},
                "scope": {"stores": t.scope_stores, "zones": t.scope_zones, "concepts": t.scope_concepts},
                "rule": t.rule,
                "sub_targets": [{"name": s.name, "criteria": s.criteria, "value": s.value} for s in t.sub_targets.all()],
            }
        )  # fmt: skip
    return data


@transaction.atomic
def target_group_clone(
    *, source: TargetGroup, name: str, user: User | None = None, data: dict | None = None
) -> TargetGroup:
    if source.status() == "ended":
        raise ValidationError(
            {"non_field_errors": ["Only a Live or Upcoming milestone can be cloned."]}
        )
    copy = target_group_as_data(source)
    copy["name"] = name
    for t in copy["targets"]:
        t["name"] = f"{t['name']} ({name})"
    if copy["cycle"].get("periods"):
        copy["cycle"]["periods"] = [
            {**p, "name": f"{p['name']} ({name})"} for p in copy["cycle"]["periods"]
        ]
    # Enrolment is never copied: the mode stays, the audience and per-customer values do not.
    copy["enrolment"] = {"mode": source.enrolment_mode}
    # The till is kept (a milestone from before tills were required gets the sole till).
    copy["till_code"] = copy.get("till_code") or sole_till_code(source.organisation)
    copy.update(data or {})
    group, _ = target_group_create(
        organisation=source.organisation, data=copy, user=user, via_api=True
    )
    audit(
        organisation=group.organisation,
        user=user,
        action="clone",
        obj=group,
        changes={"source": source.id},
    )
    return group


def apply_template(*, organisation: Organisation, template_id, data: dict) -> dict:
    template = (
        Template.objects.filter(pk=template_id).filter(organisation__isnull=True).first()
        or Template.objects.filter(pk=template_id, organisation=organisation).first()
    )
    if template is None:
        raise ValidationError({"template": [f"Unknown template {template_id!r}."]})
    merged = dict(template.payload)
    group_name = (data.get("name") or "").strip()
    merged["targets"] = [
        {**t, "name": f"{t['name']} ({group_name})"} for t in merged.get("targets", [])
    ]
    for key, value in data.items():
        if key == "cycle" and isinstance(value, dict):
            merged["cycle"] = {**merged.get("cycle", {}), **value}
        else:
            merged[key] = value
    if not merged.get("till_code"):
        merged["till_code"] = sole_till_code(organisation)
    merged["cycle"] = {
        k: _parse_template_value(k, v) for k, v in (merged.get("cycle") or {}).items()
    }
    if "start" in merged and merged.get("cycle", {}).get("start") is None:
        merged["cycle"]["start"] = merged["start"]
    return merged


def _parse_template_value(key, value):
    if key == "start" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


@transaction.atomic
def template_create_from_group(
    *, target_group: TargetGroup, name: str, user: User | None = None
) -> Template:
    org = target_group.organisation
    if Template.objects.filter(organisation=org, name=name).exists():
        raise ValidationError({"name": [f"A template named {name!r} already exists."]})
    payload = target_group_as_data(target_group, with_names=False)
    payload.pop("enrolment", None)
    payload["cycle"].pop("periods", None)  # custom period names are unique per organisation
    for t in payload["targets"]:
        t["value"] = str(t["value"])
        t["period_values"] = {k: str(v) for k, v in t["period_values"].items()}
        t["sub_targets"] = [{**s, "value": str(s["value"])} for s in t["sub_targets"]]
        t["source_target_group"] = None
    template = Template(
        organisation=org, name=name, description=target_group.description, payload=payload
    )
    template.full_clean()
    template.save()
    audit(
        organisation=org,
        user=user,
        action="save_as_template",
        obj=target_group,
        changes={"template": name},
    )
    return template
