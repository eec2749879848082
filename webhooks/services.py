"""Writes of the webhooks app: endpoints, the delivery outbox, resending.

The outbox (`deliveries_write`) is called by the receivers of the in-transaction signals of
the apps below (target events, awards, enrolment notifications, milestone switches), so its
rows commit or roll back with the fact they report. It writes with one `INSERT ...
ON CONFLICT DO NOTHING` per batch (`common.bulk.insert_rows`): the unique `(endpoint, fact_key)` makes a fact written
twice (a replay, a reprocess, two racing writers) one delivery.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common.bulk import insert_rows
from milestones.models import Organisation

from .events import Fact
from .models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)

log = logging.getLogger(__name__)

URL_MESSAGE = "Enter an http:// or https:// address, e.g. https://example.com/webhooks."
_http_url = URLValidator(schemes=["http", "https"], message=URL_MESSAGE)


# --- validation (the API, the admin form and the services share it) ----------------------------


def clean_url(value) -> str:
    text = str(value or "").strip()
    if not text:
        raise ValidationError({"url": ["Enter the address to send the events to."]})
    if len(text) > 2000:
        raise ValidationError({"url": ["The address is too long (2,000 characters at most)."]})
    try:
        _http_url(text)
    except ValidationError:
        raise ValidationError({"url": [URL_MESSAGE]})
    private = _private_address(text)
    if private and not getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", False):
        raise ValidationError(
            {"url": [f"The address points at a private or local network address ({private}): "
                     "webhooks are sent to public addresses only."]}
        )  # fmt: skip
    return text


def _private_address(url: str) -> str:
    """The first private, loopback, link-local or reserved address the URL's host names
    (directly or through DNS), or "" (no SSRF into the product's own network; the resolver
    is asked again at each send by the HTTP client, so this is a save-time guard)."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return ""  # unknown name: the delivery will fail and be retried, visibly
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if (address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified):  # fmt: skip
            return str(address)
    return ""


def clean_events(values) -> list[str]:
    """The event types, each once, in the contract's order; unknown ones are named."""
    if not isinstance(values, list | tuple) or not values:
        raise ValidationError({"events": ["Choose at least one event type."]})
    given = [str(v) for v in values]
    unknown = [v for v in dict.fromkeys(given) if v not in WebhookEventType.values]
    if unknown:
        names = ", ".join(repr(v) for v in unknown)
        raise ValidationError(
            {
                "events": [
                    f"Unknown event type{'s' if len(unknown) > 1 else ''}: {names}. "
                    f"Known: {', '.join(WebhookEventType.values)}."
                ]
            }
        )
    return [v for v in WebhookEventType.values if v in set(given)]


def clean_endpoint(*, url, events) -> tuple[str, list[str]]:
    """Both fields at once: every error is reported, not only the first."""
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for name, check, value in (("url", clean_url, url), ("events", clean_events, events)):
        try:
            cleaned[name] = check(value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned["url"], cleaned["events"]


# --- endpoints ------------------------------------------------------------------------------


@transaction.atomic
def endpoint_create(
    *, organisation: Organisation, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    """A new active endpoint with a fresh secret (shown to the caller once)."""
    url, events = clean_endpoint(url=url, events=events)
    endpoint = WebhookEndpoint(
        organisation=organisation, url=url, events=events, description=description or ""
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, data: dict) -> WebhookEndpoint:
    """Change `url`, `events`, `description` or `is_active`. Re-activating an endpoint
    clears its failure state and sends what waited for it at once, with a fresh retry
    budget."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    errors: dict[str, list[str]] = {}
    changed: list[str] = []
    if "url" in data:
        try:
            url = clean_url(data["url"])
            if url != endpoint.url:
                endpoint.url = url
                changed.append("url")
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if "events" in data:
        try:
            events = clean_events(data["events"])
            if events != endpoint.events:
                endpoint.events = events
                changed.append("events")
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    if "description" in data and (data["description"] or "") != endpoint.description:
        endpoint.description = data["description"] or ""
        changed.append("description")
    reactivated = False
    if "is_active" in data and bool(data["is_active"]) != endpoint.is_active:
        endpoint.is_active = bool(data["is_active"])
        changed.append("is_active")
        if endpoint.is_active:
            reactivated = True
            endpoint.failing_since = None
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            changed += ["failing_since", "disabled_at", "disabled_reason"]
    if not changed:
        return endpoint
    endpoint.full_clean()
    endpoint.save(update_fields=changed)
    if reactivated:
        now = timezone.now()
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            next_attempt_at=now, attempts_before_resend=F("attempts")
        )
        queue_sending()
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """The endpoint, its deliveries and their attempts."""
    endpoint.delete()


# --- the outbox -----------------------------------------------------------------------------


def deliveries_write(
    *, facts: list[Fact], endpoints: dict[int, list[WebhookEndpoint]], now: datetime | None = None
) -> int:
    """One delivery per fact and endpoint of its organisation subscribed to its type
    (`endpoints`: `selectors.subscribers`), in the caller's transaction; the sender is
    queued when it commits. Returns how many rows were offered (a fact already delivered to
    an endpoint is skipped by the unique constraint)."""
    now = now or timezone.now()
    stamp = now.isoformat().replace("+00:00", "Z")
    rows = []
    for fact in facts:
        for endpoint in endpoints.get(fact.organisation_id, ()):
            if fact.event_type not in endpoint.events:
                continue
            rows.append(
                WebhookDelivery(
                    organisation_id=fact.organisation_id,
                    endpoint_id=endpoint.id,
                    event_type=fact.event_type,
                    fact_key=fact.key[:255],
                    body={"type": fact.event_type, "timestamp": stamp, "data": fact.data},
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    if not rows:
        return 0
    insert_rows(WebhookDelivery, rows, ignore_conflicts=True)
    queue_sending()
    return len(rows)


def queue_sending() -> None:
    """Start the sender once the current transaction commits. A broker outage loses
    nothing: the rows are pending and the minute sweep (beat) sends them."""

    def send():
        from .tasks import deliver_due

        try:
            deliver_due.delay()
        except Exception:  # noqa: BLE001 - any broker failure: the sweep picks them up
            log.warning("could not queue the webhook sender; the sweep will send")

    transaction.on_commit(send)


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send a delivery again (delivered, failed or pending), with the same `webhook-id` and
    body, as soon as the sender runs; its retry budget starts again. The log keeps every
    attempt."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        attempts_before_resend=F("attempts"),
    )
    queue_sending()
    delivery.refresh_from_db()
    return delivery


def deliveries_resend(*, organisation_id: int | None, delivery_ids) -> int:
    """The admin's "Resend" action: the given deliveries of the organisation (all
    organisations for operations, `organisation_id` None)."""
    qs = WebhookDelivery.objects.filter(pk__in=list(delivery_ids))
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    with transaction.atomic():
        count = qs.update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=timezone.now(),
            attempts_before_resend=F("attempts"),
        )
        if count:
            queue_sending()
    return count
