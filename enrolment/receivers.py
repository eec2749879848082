"""How enrolment listens to configuration (connected in EnrolmentConfig.ready)."""

from milestones.models import EnrolmentMode


def on_target_group_saved(sender, target_group, created, audience_group=None, **kwargs):
    """An audience-group milestone given an audience group follows it (enrols its members).

    Runs inside the configuration transaction: an unknown group or a group given to another
    enrolment mode refuses the whole save with a 400.
    """
    from .audiences import target_group_audience_link

    if audience_group in (None, ""):
        return
    target_group_audience_link(target_group=target_group, audience_group_id=audience_group)


def enrolment_summary(sender=None, target_group=None, **kwargs) -> dict:
    """milestones.signals.enrolment_summary_requested: extra fields for the target-group
    API's `enrolment` object."""
    group = target_group
    from .models import Enrolment, ImportJob, TargetGroupAudience

    out = {
        "enrolled": Enrolment.objects.filter(target_group_id=group.id, is_active=True).count(),
    }
    if group.enrolment_mode == EnrolmentMode.AUDIENCE_GROUP:
        out["audience_group"] = (
            TargetGroupAudience.objects.filter(target_group_id=group.id)
            .values_list("audience_group_id", flat=True)
            .first()
        )
    if group.enrolment_mode == EnrolmentMode.CUSTOM_LIST:
        out["last_import"] = (
            ImportJob.objects.filter(target_group_id=group.id)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
    return out


def audience_group_choices(sender=None, organisation=None, **kwargs) -> list[tuple[int, str]]:
    """milestones.signals.audience_groups_requested: the organisation's audience groups for
    the milestone screens' picker, as (id, "name (kind, N members)")."""
    from .models import AudienceGroup

    groups = AudienceGroup.objects.filter(organisation=organisation).order_by("name", "pk")
    return [
        (g.pk, f"{g.name} ({g.kind}, {g.member_count:,} members)")
        for g in groups.only("pk", "name", "kind", "member_count")
    ]
