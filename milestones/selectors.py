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


ENROLMENT_SUMMARY_HOOKS = []  # enrolment app adds fn(group) -> dict of extra fields


def enrolment_summary(group) -> dict:
    out = {"mode": group.enrolment_mode}
    for hook in ENROLMENT_SUMMARY_HOOKS:
        out.update(hook(group))
    return out
