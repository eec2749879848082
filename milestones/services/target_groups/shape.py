"""The API's create shape of a milestone (../shared/API.md), in one place: read from a
target group (`target_group_as_data`: cloning, templates, the edit screen, and the parts of
the API's output that match it) or from a template merged with a request (`apply_template`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError

from ...models import CycleType, Organisation, SubTarget, Target, TargetGroup, Template
from ...selectors import sole_till_code


def target_group_as_data(
    group: TargetGroup, *, with_names: bool = True, with_ids: bool = False
) -> dict:
    """The API's create shape for an existing milestone. `with_names`: with its name, dates
    and cycle start (a template has none); `with_ids`: with the ids of its targets and
    sub-targets (what an edit sends back, so the update keeps their rows)."""
    data = {
        "description": group.description,
        "till_code": group.till.code if group.till else None,
        "target_value_mode": group.target_value_mode,
        "cycle": cycle_as_data(group, with_start=with_names),
        "offset_days": group.offset_days,
        "leaderboard_enabled": group.leaderboard_enabled,
        "unified_mode": group.unified_mode,
        "send_enrolment_trigger": group.send_enrolment_trigger,
        "enrolment": {"mode": group.enrolment_mode},
        "targets": [target_as_data(t, with_ids=with_ids) for t in group.targets.all()],
    }
    if with_names:
        data.update(name=group.name, start=group.start, end=group.end)
    return data


def cycle_as_data(group: TargetGroup, *, with_start: bool = True) -> dict:
    cycle = {
        "type": group.cycle_type,
        "frequency": group.cycle_frequency or None,
        "days": group.cycle_days,
    }
    if with_start:
        cycle["start"] = group.cycle_start
    cycle["count"] = group.cycle_count
    if group.cycle_type == CycleType.CUSTOM_PERIODS:
        cycle["periods"] = [
            {"name": p.name, "start": p.start, "end": p.end} for p in group.periods.all()
        ]
    return cycle


def target_as_data(target: Target, *, with_ids: bool = False) -> dict:
    data: dict = {"id": target.id} if with_ids else {}
    data.update(
        name=target.name,
        kpi=target.kpi,
        entity=target.entity,
        event_name=target.event_name,
        attribute=target.attribute,
        extended_field=target.extended_field,
        extended_field_value=target.extended_field_value,
        points_type=target.points_type,
        source_target_group=target.source_target_group_id,
        value=target.value,
        period_values={f"P{k}": Decimal(v) for k, v in target.cycle_values.items()},
        scope=scope_as_data(target),
        rule=target.rule,
        sub_targets=[sub_target_as_data(s, with_ids=with_ids) for s in target.sub_targets.all()],
    )
    return data


def scope_as_data(target: Target) -> dict:
    return {
        "stores": target.scope_stores,
        "zones": target.scope_zones,
        "concepts": target.scope_concepts,
    }


def sub_target_as_data(sub: SubTarget, *, with_ids: bool = False) -> dict:
    data: dict = {"id": sub.id} if with_ids else {}
    data.update(name=sub.name, criteria=sub.criteria, value=sub.value)
    return data


def apply_template(*, organisation: Organisation, template_id, data: dict) -> dict:
    """A create request on a template: the template's payload, what the request gives
    over it (its `cycle` merged key by key), the template's target names suffixed with the
    milestone's name (target names are unique in the organisation), and the sole till when
    neither names one."""
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
    """A template's payload is JSON: its cycle start is a string."""
    if key == "start" and isinstance(value, str):
        return date.fromisoformat(value)
    return value
