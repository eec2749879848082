"""Reads about configuration that more than one caller needs."""

from django.db.models import Q
from django.utils import timezone


def org_today(organisation):
    return timezone.now().astimezone(organisation.tzinfo).date()


def status_q(status: str, organisation) -> Q:
    """Upcoming / Live / Ended as a filter, from the dates in the organisation's timezone."""
    today = org_today(organisation)
    if status == "upcoming":
        return Q(start__gt=today)
    if status == "ended":
        return Q(end__lt=today)
    return Q(start__lte=today, end__gte=today)


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
