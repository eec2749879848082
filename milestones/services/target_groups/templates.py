"""Cloning a milestone and saving one as a template. Both start from its data shape
(`shape.target_group_as_data`); a clone is created through `writes.target_group_create`,
so it passes the same rules as any new milestone."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ...models import MilestoneStatus, TargetGroup, Template, User
from ...selectors import sole_till_code
from .audit import audit
from .shape import target_group_as_data
from .writes import target_group_create


@transaction.atomic
def target_group_clone(
    *, source: TargetGroup, name: str, user: User | None = None, data: dict | None = None
) -> TargetGroup:
    """A new milestone `name` with the source's details, cycles and targets (their names
    suffixed with the new name); `data` changes what differs (the enrolment, ...)."""
    if source.status() == MilestoneStatus.ENDED:
        raise ValidationError(
            {"non_field_errors": ["Only a Live or Upcoming milestone can be cloned."]}
        )
    copy = target_group_as_data(source)
    copy["name"] = name
    # Not copied, as ever: a clone sends enrolment notifications whatever its source does.
    copy.pop("send_enrolment_trigger")
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


@transaction.atomic
def template_create_from_group(
    *, target_group: TargetGroup, name: str, user: User | None = None
) -> Template:
    """The organisation's own template: the milestone's shape without its name, dates,
    enrolment, custom periods (their names are unique per organisation) or source milestone;
    amounts as strings (the payload is JSON)."""
    org = target_group.organisation
    if Template.objects.filter(organisation=org, name=name).exists():
        raise ValidationError({"name": [f"A template named {name!r} already exists."]})
    payload = target_group_as_data(target_group, with_names=False)
    payload.pop("enrolment", None)
    payload.pop("send_enrolment_trigger")  # not kept, as ever: the form's default applies
    payload["cycle"].pop("periods", None)
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
