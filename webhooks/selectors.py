"""Reads of the webhooks app."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Prefetch

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def subscribers(*, organisation_ids, event_types) -> dict[int, list[WebhookEndpoint]]:
    """organisation id -> its active endpoints subscribed to any of `event_types`, in one
    query (the outbox writers call it once per batch of facts; none: nothing to build).
    `events` is filtered here, not in SQL: SQLite has no JSON containment, and an
    organisation has a handful of endpoints."""
    wanted = set(event_types)
    out: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    rows = WebhookEndpoint.objects.filter(
        organisation_id__in=set(organisation_ids), is_active=True
    ).only("id", "organisation_id", "events", "is_active")
    for endpoint in rows:
        if wanted & set(endpoint.events or ()):
            out[endpoint.organisation_id].append(endpoint)
    return dict(out)


def endpoints_for(*, organisation_id: int):
    return WebhookEndpoint.objects.filter(organisation_id=organisation_id).order_by("id")


def deliveries_for(*, endpoint: WebhookEndpoint):
    """An endpoint's deliveries, newest first, each with its attempts."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .prefetch_related(
            Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
        )
        .order_by("-id")
    )
