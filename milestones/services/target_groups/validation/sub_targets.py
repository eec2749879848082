"""A target's sub-targets: steps on the way (an absolute value, or a percentage of the
target for the sales KPIs). Their criteria are fixed after creation; only the value moves."""

from __future__ import annotations

from ....catalogue import PERCENTAGE_KPIS
from ....models import SubTargetCriteria, Target
from .errors import About, amount


def resolve_sub_targets(subs: list[dict] | None, kpi: str, existing: Target | None, about: About):
    """The sub-targets as given (each with the id of the row it edits, if any), or None
    when the request leaves them as they are."""
    if subs is None:
        return None
    existing_subs = {s.name: s for s in existing.sub_targets.all()} if existing else {}
    by_id = {s.id: s for s in existing_subs.values()}
    cleaned = []
    for j, sub in enumerate(subs, start=1):
        name = (sub.get("name") or "").strip()
        old = by_id.get(sub.get("id")) or existing_subs.get(name)
        part = about.within(f"sub-target {j} ({name or '?'})", f"sub_targets.{j}.")
        cleaned.append(_sub_target(sub, name, old, kpi, part))
    names = [c["name"] for c in cleaned]
    for dup in {n for n in names if names.count(n) > 1}:
        last = len(names) - names[::-1].index(dup)
        about.add(
            f"the sub-target name {dup!r} is used twice.", target_field=f"sub_targets.{last}.name"
        )
    return cleaned


def _sub_target(sub: dict, name: str, old, kpi: str, about: About) -> dict:
    if not name:
        about.add("a sub-target needs a name.", target_field="name")
    criteria = sub.get("criteria") or (old.criteria if old else SubTargetCriteria.ABSOLUTE)
    if criteria not in SubTargetCriteria.values:
        about.add("criteria must be percentage or absolute.", target_field="criteria")
    if old is not None and criteria != old.criteria:
        about.add(
            "the achievement criteria cannot be changed after creation; only the value can.",
            target_field="criteria",
        )
    if criteria == SubTargetCriteria.PERCENTAGE and kpi not in PERCENTAGE_KPIS:
        about.add(
            "percentage sub-targets are only for gross and net sales; use an absolute value.",
            target_field="criteria",
        )
    value = amount(sub.get("value"), about, "the value", "value")
    if value is None or value == 0:
        about.add("the value must be greater than 0.", target_field="value")
    elif criteria == SubTargetCriteria.PERCENTAGE and value > 100:
        about.add("a percentage cannot exceed 100.", target_field="value")
    return {"id": old.id if old else None, "name": name, "criteria": criteria, "value": value}
