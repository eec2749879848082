"""Reads about configuration that more than one caller needs."""

from django.db.models import Q
from django.utils import timezone

from .models import MilestoneStatus, Store


def org_today(organisation):
    return timezone.now().astimezone(organisation.tzinfo).date()


def status_q(status: str, organisation) -> Q:
    """Upcoming / Live / Ended as a filter, from the dates in the organisation's timezone."""
    today = org_today(organisation)
    if status == MilestoneStatus.UPCOMING:
        return Q(start__gt=today)
    if status == MilestoneStatus.ENDED:
        return Q(end__lt=today)
    return Q(start__lte=today, end__gte=today)


def sole_till_code(organisation) -> str | None:
    """The code of the organisation's till when it has exactly one (what a template, a
    clone or the create screen without a till picks), else None."""
    codes = list(
        Store.objects.filter(organisation=organisation, is_till=True).values_list(
            "code", flat=True
        )[:2]
    )
    return codes[0] if len(codes) == 1 else None


def enrolment_summary(group) -> dict:
    """The milestone's enrolment mode, plus what the apps above add
    (`signals.enrolment_summary_requested`)."""
    from .signals import enrolment_summary_requested

    out = {"mode": group.enrolment_mode}
    for _receiver, answer in enrolment_summary_requested.send(
        sender=type(group), target_group=group
    ):
        out.update(answer or {})
    return out
