"""Writes of milestones: create, edit, (de)activate.

Each checks the whole request first (`validation`), so it writes everything or raises one
`ValidationError` and writes nothing; then it records what changed (`audit`) and tells the
apps above (`signals.target_group_saved`, and the target rename signals).
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from common.services import model_update

from ... import signals
from ...catalogue import REPROCESS_FIELDS
from ...cycles import date_range_instants
from ...models import MilestoneStatus, Organisation, Period, SubTarget, Target, TargetGroup, User
from .audit import audit, field_changes, fields_created
from .shape import apply_template
from .validation import PeriodSpec, validate_create, validate_update

# Not checked by full_clean: a milestone from before tills were required has none, and the
# creator may be gone.
GROUP_CLEAN_EXCLUDE = ("till", "created_by")
# Checked by validation instead (the source's five criteria, the organisation of the scope).
TARGET_CLEAN_EXCLUDE = ("organisation", "target_group", "source_target_group")


@transaction.atomic
def target_group_create(
    *,
    organisation: Organisation,
    data: dict,
    user: User | None = None,
    via_api: bool = False,
    today: date | None = None,
) -> tuple[TargetGroup, list[str]]:
    """Create a milestone with its cycles, targets and sub-targets (from a template when
    `data["template"]` names one). Returns it and warnings."""
    data = dict(data)
    if data.get("template"):
        data = apply_template(
            organisation=organisation, template_id=data.pop("template"), data=data
        )
    new = validate_create(organisation, data, via_api=via_api, today=today)
    group = TargetGroup(
        organisation=organisation,
        created_by=user if user and user.pk else None,
        created_by_role=getattr(user, "role", "")
        or ("superuser" if getattr(user, "is_superuser", False) else ""),
        **new.fields,
    )
    group.full_clean(exclude=list(GROUP_CLEAN_EXCLUDE))
    group.save()
    _write_periods(group, new.periods)
    for i, cleaned in enumerate(new.targets, start=1):
        _write_target(group, cleaned, i)
    audit(
        organisation=organisation,
        user=user,
        action="create",
        obj=group,
        changes={"data": _summary(group)},
    )
    signals.target_group_saved.send(
        sender=TargetGroup, target_group=group, created=True, audience_group=new.audience_group
    )
    return group, new.warnings


def _summary(group: TargetGroup) -> dict:
    return {
        "start": str(group.start),
        "end": str(group.end),
        "cycle_type": group.cycle_type,
        "cycle_frequency": group.cycle_frequency,
        "cycle_count": group.cycle_count,
        "targets": [t.name for t in group.targets.all()],
    }


@transaction.atomic
def target_group_update(
    *, target_group: TargetGroup, data: dict, user: User | None = None, via_api: bool = False
) -> tuple[TargetGroup, list[str], bool]:
    """Edit within the limits of `validation.update`. Returns (group, warnings,
    reprocess_suggested): a new target, or a change of what an existing one counts
    (REPROCESS_FIELDS), suggests re-processing the stored activities.

    A target renamed with `rename_in_promotions` is renamed in the promotions' conditions
    too (`signals.target_renamed`, in this transaction)."""
    group = TargetGroup.objects.select_for_update().get(pk=target_group.pk)
    edit = validate_update(group, data, via_api=via_api)
    changes = field_changes(group, edit.fields, as_text=("till",))
    _, updated = model_update(
        instance=group, fields=edit.fields, data=edit.fields, clean_exclude=GROUP_CLEAN_EXCLUDE
    )
    if not updated:
        # `updated_at` is the configuration's version the tracking workers' cache compares
        # (evaluation.config_cache): an edit of the targets alone moves it too.
        group.save(update_fields=["updated_at"])
    if edit.periods is not None and _dates(edit.periods) != _dates(group.periods.all()):
        _write_periods(group, edit.periods)
    target_changes, reprocess = _write_targets(group, edit.targets)
    changes.update(target_changes)
    if data.get("rename_in_promotions"):
        for _, old_name, new_name in edit.renames:
            signals.target_renamed.send(
                sender=Target, organisation_id=group.organisation_id, old=old_name, new=new_name
            )
    if changes:
        audit(organisation=group.organisation, user=user, action="update", obj=group,
              changes=changes)  # fmt: skip
    signals.target_group_saved.send(
        sender=TargetGroup,
        target_group=group,
        created=False,
        audience_group=(data.get("enrolment") or {}).get("audience_group"),
    )
    return group, edit.warnings, reprocess


def _dates(periods) -> list[tuple]:
    return [(p.name, p.start, p.end) for p in periods]


@transaction.atomic
def target_group_set_active(
    *, target_group: TargetGroup, active: bool, user: User | None = None
) -> TargetGroup:
    group = TargetGroup.objects.select_for_update().get(pk=target_group.pk)
    if active and group.status() == MilestoneStatus.ENDED:
        raise ValidationError({"is_active": ["An ended milestone cannot be re-activated."]})
    _, changed = model_update(
        instance=group,
        fields=["is_active"],
        data={"is_active": active},
        clean_exclude=GROUP_CLEAN_EXCLUDE,
    )
    if changed:
        audit(organisation=group.organisation, user=user, action="activate" if active else "deactivate", obj=group,
              changes={"is_active": [not active, active]})  # fmt: skip
        signals.target_group_activation_changed.send(sender=TargetGroup, target_group=group)
    return group


# --- the rows under a milestone ----------------------------------------------------------------


def _write_periods(group: TargetGroup, periods: list[PeriodSpec]) -> None:
    """The milestone's periods become `periods`. A row whose ordinal, name and dates stay is
    kept, with what hangs on it (progress, evaluation runs): dropping the last cycles of a
    live milestone leaves the others as they are."""
    tz = group.organisation.tzinfo
    existing = {p.ordinal: (p.name, p.start, p.end) for p in group.periods.all()}
    kept = {p.ordinal for p in periods if existing.get(p.ordinal) == (p.name, p.start, p.end)}
    group.periods.exclude(ordinal__in=kept).delete()
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
            if p.ordinal not in kept
        ]
    )


def _write_targets(group: TargetGroup, pairs: list[tuple[Target | None, dict]]):
    """An edit's targets, new ones numbered after the last. Returns the changes (for the
    audit, by target name) and whether re-processing is suggested."""
    changes: dict = {}
    reprocess = False
    last = group.targets.order_by("-ordinal").values_list("ordinal", flat=True).first()
    next_ordinal = (last or 0) + 1
    for old, cleaned in pairs:
        target, target_changes = _write_target(group, cleaned, next_ordinal, old)
        if old is None:
            next_ordinal += 1
            reprocess = True
        elif any(f in target_changes for f in REPROCESS_FIELDS):
            reprocess = True
        if target_changes:
            changes[f"target:{target.name}"] = target_changes
    return changes, reprocess


def _write_target(
    group: TargetGroup, cleaned: dict, ordinal: int, existing: Target | None = None
) -> tuple[Target, dict]:
    """Create or edit one target (`cleaned`: validate_target's answer). Returns it and its
    changes."""
    fields = {k: v for k, v in cleaned.items() if k != "sub_targets"}
    if existing is None:
        target = Target(
            organisation=group.organisation, target_group=group, ordinal=ordinal, **fields
        )
        target.full_clean(exclude=list(TARGET_CLEAN_EXCLUDE))
        target.save()
        changes = fields_created(fields)
    else:
        changes = field_changes(existing, fields)
        target, _ = model_update(
            instance=existing, fields=fields, data=fields, clean_exclude=TARGET_CLEAN_EXCLUDE
        )
    subs = cleaned["sub_targets"]
    if subs is not None:
        _write_sub_targets(target, subs)
        changes["sub_targets"] = [[s["name"], s["criteria"], str(s["value"])] for s in subs]
    return target, changes


def _write_sub_targets(target: Target, subs: list[dict]) -> None:
    """The target's sub-targets become `subs`: rows kept by id (only their name and value
    move), new ones added, the others deleted. Saved as they are, as ever (not through
    `model_update`: a value with more than the 4 decimal places the column keeps is rounded
    on save, not refused)."""
    keep = []
    for s in subs:
        sub = SubTarget.objects.filter(pk=s["id"], target=target).first() if s["id"] else None
        if sub is None:
            sub = SubTarget(target=target, name=s["name"], criteria=s["criteria"], value=s["value"])
        else:
            sub.name, sub.value = s["name"], s["value"]
        sub.save()
        keep.append(sub.pk)
    target.sub_targets.exclude(pk__in=keep).delete()
