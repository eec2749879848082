"""Template context shared by every page."""

from __future__ import annotations

from django.utils import timezone


def org_timezone(request) -> dict:
    """The time zone every time on the page is shown in (see OrganisationTimezoneMiddleware),
    for the label beside them."""
    return {"org_timezone": timezone.get_current_timezone_name()}
