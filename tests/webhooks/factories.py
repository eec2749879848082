"""Test data of the webhooks app, one factory per model (kept beside its tests; the shared
tests/factories.py belongs to the other apps). Endpoints are made through
`endpoint_create` and deliveries through the outbox writer, as the application makes them."""

from __future__ import annotations

import factory
from django.utils import timezone

from tests.factories import OrganisationFactory
from webhooks.events import Fact
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import deliveries_write, endpoint_create


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An active endpoint subscribed to every target event type unless told `events=[...]`;
    `url` is required in practice (a test's receiver)."""

    class Meta:
        model = WebhookEndpoint

    organisation = factory.SubFactory(OrganisationFactory)
    url = "http://127.0.0.1:9/hook"
    events = factory.LazyFunction(
        lambda: ["target.achieved", "sub_target.achieved", "cycle.elapsed"]
    )
    description = ""

    @classmethod
    def _create(cls, model_class, *, organisation, url, events, description):
        return endpoint_create(
            organisation=organisation, url=url, events=events, description=description
        )


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    """A pending delivery of a `target.achieved` fact (made-up data) to an endpoint, written
    by the outbox writer; due at once."""

    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event_type = "target.achieved"
    key = factory.Sequence(lambda n: f"test-fact:{n}")
    data = factory.LazyAttribute(lambda o: {"id": o.key, "type": "target_achieved"})
    now = None

    @classmethod
    def _create(cls, model_class, *, endpoint, event_type, key, data, now):
        fact = Fact(endpoint.organisation_id, event_type, key, data)
        deliveries_write(facts=[fact], endpoints={endpoint.organisation_id: [endpoint]}, now=now)
        return WebhookDelivery.objects.get(endpoint=endpoint, fact_key=key)


class WebhookAttemptFactory(factory.django.DjangoModelFactory):
    """A failed first attempt (HTTP 500 in 12 ms) of a delivery."""

    class Meta:
        model = WebhookAttempt

    delivery = factory.SubFactory(WebhookDeliveryFactory)
    number = 1
    attempted_at = factory.LazyFunction(timezone.now)
    status_code = 500
    response_ms = 12
    error = "HTTP 500"
