"""Site-wide request plumbing."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone


class OrganisationTimezoneMiddleware:
    """Render every time a signed-in user reads (admin lists, history, member care) in their
    organisation's time zone; templates label it with `{{ org_timezone }}` (see
    milestones_site.context_processors). Users without an organisation (ops) keep UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        organisation = getattr(getattr(request, "user", None), "organisation", None)
        name = getattr(organisation, "timezone", None)
        if name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
