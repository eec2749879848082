"""Audience groups: a CSV list, a filter over customers and target results, a merge.

Members are materialised in AudienceMember. Filter groups are recomputed by
`audience_group_refresh` (a beat task runs it for every filter group, and
`audience_groups_refresh_for_target` runs it for the groups that read a target when that
target is achieved); a merge group follows its sources; milestones linked to a group follow
its members (`audience_enrolments_sync`).

Filter definition (all conditions must hold)::

    {"conditions": [
        {"field": "attributes.city", "op": "eq", "value": "Pune"},
        {"field": "joined_on", "op": "gte", "value": "2026-01-01"},
        {"target": "Target 1", "achieved": true, "min_value": 100,
         "cycle": "P1", "from": "2026-01-01", "to": "2026-03-31", "last_days": 90}
    ]}

Customer fields: name, mobile, email, external_id, joined_on, is_loyalty_member, created_at,
attributes.<key>; operators eq, ne, gt, gte, lt, lte, in, contains, exists. A target condition
names a target (name or id) and keeps the customers with a cycle of it where: `achieved`
(true: the target was reached), `min_value` (achieved value at least this), `cycle` (a period
name or "P2"), a time window `from`/`to` (dates, organisation timezone) or `last_days` --
on the moment of achievement when `achieved` is true, else on the cycle's start.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from milestones.models import EnrolmentMode, Period, Target, TargetGroup

from .models import (
    AudienceGroup,
    AudienceKind,
    AudienceMember,
    Customer,
    Enrolment,
    EnrolmentSource,
    TargetGroupAudience,
)
from .services import CHUNK, enrolments_add, enrolments_deactivate

CUSTOMER_FIELDS = (
    "name",
    "mobile",
    "email",
    "external_id",
    "joined_on",
    "is_loyalty_member",
    "created_at",
)
OPS = {
    "eq": "exact",
    "ne": "exact",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "in": "in",
    "contains": "icontains",
    "exists": "isnull",
}
TARGET_KEYS = {"target", "achieved", "min_value", "cycle", "from", "to", "last_days"}


# --- the filter --------------------------------------------------------------------------------


def _parse_date(value, label: str, errors: list[str]) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors.append(f"{label} must be a date like 2026-01-31, got {value!r}.")
        return None


def _resolve_target(organisation, ref) -> Target | None:
    qs = Target.objects.filter(organisation=organisation).select_related("target_group")
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = qs.filter(pk=int(ref)).first()
        if found:
            return found
    return qs.filter(name=str(ref).strip()).first()


def _cycle_ordinal(target: Target, ref) -> int | None:
    text = str(ref).strip()
    period = Period.objects.filter(target_group=target.target_group, name=text).first()
    if period:
        return period.ordinal
    match = re.fullmatch(r"[Pp](\d+)", text)
    return int(match.group(1)) if match else None


def _customer_q(cond: dict, errors: list[str], label: str) -> Q:
    name = str(cond.get("field") or "")
    op = cond.get("op") or "eq"
    value = cond.get("value")
    if op not in OPS:
        errors.append(f"{label}: unknown operator {op!r}; use one of {', '.join(OPS)}.")
        return Q()
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        if not key:
            errors.append(f"{label}: name the attribute, as in attributes.city.")
            return Q()
        lookup = f"attributes__{key}"
    elif name in CUSTOMER_FIELDS:
        lookup = name
    else:
        errors.append(
            f"{label}: unknown field {name!r}; use {', '.join(CUSTOMER_FIELDS)} or attributes.<key>."
        )
        return Q()
    if op == "exists":
        return Q(**{f"{lookup}__isnull": not bool(value)})
    if op == "in" and not isinstance(value, list):
        errors.append(f"{label}: the 'in' operator needs a list of values.")
        return Q()
    q = Q(**{f"{lookup}__{OPS[op]}": value})
    return ~q if op == "ne" else q


def _target_q(organisation, cond: dict, errors: list[str], label: str) -> Q:
    unknown = set(cond) - TARGET_KEYS
    if unknown:
        errors.append(f"{label}: unknown keys {', '.join(sorted(unknown))}.")
    target = _resolve_target(organisation, cond.get("target"))
    if target is None:
        errors.append(f"{label}: no target named {cond.get('target')!r} in this organisation.")
        return Q()
    Progress = apps.get_model("evaluation", "Progress")
    progress = Progress.objects.filter(target=target)
    achieved = bool(cond.get("achieved"))
    if achieved:
        progress = progress.filter(achieved_at__isnull=False)
    if cond.get("min_value") not in (None, ""):
        progress = progress.filter(achieved__gte=cond["min_value"])
    if cond.get("cycle") not in (None, ""):
        ordinal = _cycle_ordinal(target, cond["cycle"])
        if ordinal is None:
            errors.append(f"{label}: {cond['cycle']!r} is not a cycle of {target.name!r}.")
        else:
            progress = progress.filter(cycle_ordinal=ordinal)
    tz = organisation.tzinfo
    start = _parse_date(cond.get("from"), f"{label}: 'from'", errors)
    end = _parse_date(cond.get("to"), f"{label}: 'to'", errors)
    if cond.get("last_days") not in (None, ""):
        try:
            days = int(cond["last_days"])
        except (TypeError, ValueError):
            errors.append(f"{label}: last_days must be a whole number of days.")
            days = 0
        if days > 0:
            start = timezone.now().astimezone(tz).date() - timedelta(days=days - 1)
    moment = "achieved_at" if achieved else "cycle_start"
    if start:
        progress = progress.filter(**{f"{moment}__gte": datetime.combine(start, time(), tz)})
    if end:
        progress = progress.filter(
            **{f"{moment}__lt": datetime.combine(end + timedelta(days=1), time(), tz)}
        )
    return Q(id__in=progress.values("customer_id"))


def filter_queryset(organisation, definition: dict):
    """The customers a filter definition selects; ValidationError naming each bad condition."""
    errors: list[str] = []
    if not isinstance(definition, dict) or not isinstance(definition.get("conditions"), list):
        raise ValidationError({"filter": ["A filter is {'conditions': [...]}, at least one."]})
    conditions = definition["conditions"]
    if not conditions:
        errors.append("A filter needs at least one condition.")
    q = Q()
    for i, cond in enumerate(conditions, start=1):
        label = f"Condition {i}"
        if not isinstance(cond, dict):
            errors.append(f"{label}: a condition is an object.")
        elif "target" in cond:
            q &= _target_q(organisation, cond, errors, label)
        else:
            q &= _customer_q(cond, errors, label)
    if errors:
        raise ValidationError({"filter": errors})
    return Customer.objects.filter(organisation=organisation).filter(q)


def filter_reads_target(definition: dict, target: Target) -> bool:
    for cond in (definition or {}).get("conditions") or []:
        if isinstance(cond, dict) and "target" in cond:
            ref = cond["target"]
            if str(ref).strip() in (target.name, str(target.id)):
                return True
    return False


# --- writes ------------------------------------------------------------------------------------


def _members_set(group: AudienceGroup, customer_ids) -> tuple[int, int]:
    """Make the group's members exactly `customer_ids`. Returns (added, removed)."""
    wanted = set(customer_ids)
    current = set(
        AudienceMember.objects.filter(audience_group=group).values_list("customer_id", flat=True)
    )
    add = sorted(wanted - current)
    remove = sorted(current - wanted)
    AudienceMember.objects.bulk_create(
        [AudienceMember(audience_group=group, customer_id=c) for c in add],
        ignore_conflicts=True,
        batch_size=CHUNK,
    )
    for start in range(0, len(remove), CHUNK):
        AudienceMember.objects.filter(
            audience_group=group, customer_id__in=remove[start : start + CHUNK]
        ).delete()
    group.member_count = len(wanted)
    group.refreshed_at = timezone.now()
    group.save(update_fields=["member_count", "refreshed_at"])
    return len(add), len(remove)


@transaction.atomic
def audience_group_create(
    *,
    organisation,
    name: str,
    kind: str,
    user=None,
    description: str = "",
    customer_ids: list[int] | None = None,
    filter: dict | None = None,
    sources: list[int] | None = None,
) -> AudienceGroup:
    """Create a group. List: the given customers; filter: validated and evaluated now;
    merge: two or more existing groups of the organisation (merge two, then merge a third in)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["An audience group needs a name."]
    elif AudienceGroup.objects.filter(organisation=organisation, name=name).exists():
        errors["name"] = [f"An audience group named {name!r} already exists."]
    if kind not in AudienceKind.values:
        errors["kind"] = [f"Unknown kind {kind!r}: use list, filter or merge."]
    source_groups = []
    if kind == AudienceKind.FILTER:
        try:
            filter_queryset(organisation, filter or {})
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if kind == AudienceKind.MERGE:
        wanted = list(dict.fromkeys(sources or []))
        source_groups = list(AudienceGroup.objects.filter(organisation=organisation, pk__in=wanted))
        if len(wanted) < 2:
            errors["sources"] = ["A merge needs at least two existing audience groups."]
        elif len(source_groups) != len(wanted):
            missing = sorted(set(wanted) - {g.id for g in source_groups})
            errors["sources"] = [f"Unknown audience groups: {', '.join(map(str, missing))}."]
    if errors:
        raise ValidationError(errors)
    group = AudienceGroup(
        organisation=organisation,
        name=name,
        kind=kind,
        description=description or "",
        filter=(filter or {}) if kind == AudienceKind.FILTER else {},
        created_by=user if getattr(user, "pk", None) else None,
    )
    group.full_clean(exclude=["created_by"])
    group.save()
    if kind == AudienceKind.MERGE:
        group.sources.set(source_groups)
    if kind == AudienceKind.LIST:
        _members_set(group, customer_ids or [])
    else:
        audience_group_refresh(audience_group=group)
    return group


@transaction.atomic
def audience_group_refresh(*, audience_group: AudienceGroup, _seen: set | None = None) -> dict:
    """Recompute a filter or merge group; milestones and merges that follow it follow too."""
    seen = _seen if _seen is not None else set()
    if audience_group.id in seen:
        return {"added": 0, "removed": 0}
    seen.add(audience_group.id)
    group = audience_group
    added = removed = 0
    if group.kind == AudienceKind.FILTER:
        ids = filter_queryset(group.organisation, group.filter).values_list("id", flat=True)
        added, removed = _members_set(group, ids)
    elif group.kind == AudienceKind.MERGE:
        ids = AudienceMember.objects.filter(audience_group__in=group.sources.all()).values_list(
            "customer_id", flat=True
        )
        added, removed = _members_set(group, ids)
    if added or removed or _seen is None:
        for link in TargetGroupAudience.objects.filter(audience_group=group).select_related(
            "target_group"
        ):
            audience_enrolments_sync(target_group=link.target_group, audience_group=group)
    if added or removed:
        for parent in group.merged_into.all():
            audience_group_refresh(audience_group=parent, _seen=seen)
    return {"added": added, "removed": removed}


@transaction.atomic
def audience_list_add(*, audience_group: AudienceGroup, customer_ids: list[int]) -> int:
    """Add customers to a list group ("upload more"). Returns how many were new."""
    if audience_group.kind != AudienceKind.LIST:
        raise ValidationError({"kind": ["Only list groups take uploaded customers."]})
    current = set(
        AudienceMember.objects.filter(audience_group=audience_group).values_list(
            "customer_id", flat=True
        )
    )
    added, _ = _members_set(audience_group, current | set(customer_ids))
    for link in TargetGroupAudience.objects.filter(audience_group=audience_group):
        audience_enrolments_sync(target_group=link.target_group, audience_group=audience_group)
    for parent in audience_group.merged_into.all():
        audience_group_refresh(audience_group=parent, _seen={audience_group.id})
    return added


def audience_enrolments_sync(*, target_group: TargetGroup, audience_group: AudienceGroup) -> dict:
    """Enrol the group's members; un-enrol those the group enrolled who left it.

    Enrolments made another way (API, upload) are left alone, and so is a member whom
    someone un-enrolled by hand (their row is inactive with the source "api").
    """
    if not target_group.is_active and target_group.status() == "ended":
        return {"enrolled": 0, "unenrolled": 0}
    members = set(
        AudienceMember.objects.filter(audience_group=audience_group).values_list(
            "customer_id", flat=True
        )
    )
    rows = {
        c: (active, source)
        for c, active, source in Enrolment.objects.filter(target_group=target_group).values_list(
            "customer_id", "is_active", "source"
        )
    }
    add = [
        c
        for c in members
        if c not in rows or (not rows[c][0] and rows[c][1] == EnrolmentSource.AUDIENCE_GROUP)
    ]
    remove = [
        c
        for c, (active, source) in rows.items()
        if active and source == EnrolmentSource.AUDIENCE_GROUP and c not in members
    ]
    newly = enrolments_add(
        target_group=target_group, customer_ids=add, source=EnrolmentSource.AUDIENCE_GROUP
    )
    gone = enrolments_deactivate(
        target_group=target_group, customer_ids=remove, source=EnrolmentSource.AUDIENCE_GROUP
    )
    return {"enrolled": len(newly), "unenrolled": gone}


@transaction.atomic
def target_group_audience_link(*, target_group: TargetGroup, audience_group_id) -> None:
    """Point an audience-group milestone at a group and enrol its members."""
    if target_group.enrolment_mode != EnrolmentMode.AUDIENCE_GROUP:
        raise ValidationError(
            {
                "enrolment": [
                    "An audience group applies only to milestones with the audience_group "
                    "enrolment mode."
                ]
            }
        )
    group = AudienceGroup.objects.filter(
        organisation_id=target_group.organisation_id, pk=audience_group_id
    ).first()
    if group is None:
        raise ValidationError({"enrolment": [f"Unknown audience group {audience_group_id!r}."]})
    TargetGroupAudience.objects.update_or_create(
        target_group=target_group,
        defaults={"audience_group": group, "organisation_id": target_group.organisation_id},
    )
    audience_enrolments_sync(target_group=target_group, audience_group=group)


def audience_groups_refresh_for_target(*, target: Target) -> list[int]:
    """Re-evaluate the filter groups that read this target's results (call it when the target
    is achieved). Returns the ids of the groups refreshed."""
    refreshed = []
    for group in AudienceGroup.objects.filter(
        organisation_id=target.organisation_id, kind=AudienceKind.FILTER
    ):
        if filter_reads_target(group.filter, target):
            audience_group_refresh(audience_group=group)
            refreshed.append(group.id)
    return refreshed


def audience_groups_refresh_all(*, organisation_id: int | None = None) -> int:
    """The beat task's work: every filter group (merges and milestones follow)."""
    qs = AudienceGroup.objects.filter(kind=AudienceKind.FILTER)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    count = 0
    for group in qs.iterator():
        audience_group_refresh(audience_group=group)
        count += 1
    return count
