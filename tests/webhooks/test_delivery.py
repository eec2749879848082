"""Delivery to a real HTTP receiver on loopback: signatures, outages, timeouts, retries,
disabling, duplicates. Time is driven with `now`, never slept through."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook

from tests.factories import UserFactory
from tests.webhooks.factories import WebhookDeliveryFactory
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.sending import deliveries_send

pytestmark = pytest.mark.django_db


def test_each_request_verifies_with_the_librarys_own_verifier(receiver, endpoint):
    delivery = WebhookDeliveryFactory(endpoint=endpoint, data={"customer": 7, "achieved": 1000.0})
    summary = deliveries_send()
    assert summary.delivered == 1
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/json"
    assert request.webhook_id == delivery.webhook_id
    verified = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert verified == {"type": "target.achieved", "timestamp": delivery.body["timestamp"],
                        "data": {"customer": 7, "achieved": 1000.0}}  # fmt: skip
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.last_response_ms is not None


def test_a_request_signed_with_another_secret_does_not_verify(receiver, endpoint):
    from standardwebhooks.webhooks import WebhookVerificationError

    WebhookDeliveryFactory(endpoint=endpoint)
    deliveries_send()
    (request,) = receiver.requests
    other = Webhook("whsec_" + "QUJD" * 8)
    with pytest.raises(WebhookVerificationError):
        other.verify(request.body, request.headers)


def test_the_receiver_is_down_then_comes_back_and_nothing_is_lost(receiver, endpoint):
    receiver.stop()
    deliveries = [WebhookDeliveryFactory(endpoint=endpoint) for _ in range(20)]
    t0 = timezone.now()
    first = deliveries_send(now=t0)
    assert first.delivered == 0 and first.attempted >= 1
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}
    refused = WebhookAttempt.objects.first()
    assert refused.status_code is None and refused.error.startswith("Could not deliver")
    endpoint.refresh_from_db()
    assert endpoint.failing_since == t0

    receiver.start()  # back, on the same port
    deliveries_send(now=t0 + timedelta(minutes=90))
    assert set(receiver.ids()) == {d.webhook_id for d in deliveries}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.is_active


def test_a_slow_receiver_hits_the_timeout_and_the_retry_carries_the_same_webhook_id(
    receiver, endpoint, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    t0 = timezone.now()
    deliveries_send(now=t0)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error == "Timed out after 0.3 s."
    assert 300 <= attempt.response_ms < 1000
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    # 1 minute of backoff, with ±25 % jitter
    assert timedelta(seconds=45) <= delivery.next_attempt_at - t0 <= timedelta(seconds=75)

    receiver.delay = 0
    deliveries_send(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    # the receiver did get the first one (it answered too late): a duplicate, same id
    assert receiver.ids() == [delivery.webhook_id, delivery.webhook_id]
    assert receiver.requests[0].body == receiver.requests[1].body


def test_500s_are_retried_with_growing_backoff_then_the_endpoint_is_disabled_once(
    receiver, endpoint, org, django_capture_on_commit_callbacks
):
    UserFactory(organisation=org, role="configurer", email="cfg@acme.test")
    UserFactory(organisation=org, role="member_care", email="care@acme.test")
    receiver.status = 500
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    t0 = timezone.now()
    now, waits = t0, []
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(60):
            deliveries_send(now=now, rand=random.Random(i))
            endpoint.refresh_from_db()
            if not endpoint.is_active:
                break
            delivery.refresh_from_db()
            waits.append(delivery.next_attempt_at - now)
            now = delivery.next_attempt_at
    assert not endpoint.is_active, "still active after 60 attempts"
    # disabled at the first failed attempt a day or more after the first failure
    assert endpoint.failing_since == t0
    assert timedelta(hours=24) <= endpoint.disabled_at - t0 < timedelta(hours=26)
    assert "every attempt failed for 24 hours" in endpoint.disabled_reason
    # exponential (1, 4, 16 minutes, then capped at an hour), each with jitter
    minutes = [w.total_seconds() / 60 for w in waits]
    assert 0.75 <= minutes[0] <= 1.25 and 3 <= minutes[1] <= 5 and 12 <= minutes[2] <= 20
    assert all(45 <= m <= 75 for m in minutes[4:])
    assert len(set(minutes)) == len(minutes)  # jittered: no two waits alike
    # every attempt was the same delivery, signed, answered 500
    assert len(receiver.requests) == len(waits) + 1
    assert set(receiver.ids()) == {delivery.webhook_id}
    for request in receiver.requests:
        Webhook(endpoint.secret).verify(request.body, request.headers)
    assert set(WebhookAttempt.objects.values_list("status_code", flat=True)) == {500}
    assert WebhookAttempt.objects.first().error == "HTTP 500: receiver says no"
    # one email, to the configurers only
    (email,) = mail.outbox
    assert email.to == ["cfg@acme.test"]
    assert endpoint.url in email.subject and "disabled" in email.subject
    assert "receiver says no" in email.body
    # disabled: nothing more is sent, and the event waits (pending) for a re-activation
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_send(now=now + timedelta(hours=3)).attempted == 0
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.status == "pending"


def test_a_4xx_for_one_delivery_does_not_disable_an_endpoint_that_takes_the_others(
    receiver, endpoint, settings
):
    settings.WEBHOOK_DISABLE_AFTER = timedelta(minutes=30)
    bad = WebhookDeliveryFactory(endpoint=endpoint)
    good = WebhookDeliveryFactory(endpoint=endpoint)
    receiver.status = 400
    t0 = timezone.now()
    deliveries_send(now=t0)
    receiver.status = 200
    WebhookDelivery.objects.filter(pk=bad.pk).update(next_attempt_at=t0 + timedelta(hours=1))
    deliveries_send(now=t0 + timedelta(hours=2))
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is None
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert good.webhook_id in receiver.ids()


def test_a_delivery_gives_up_after_its_attempts_then_a_resend_sends_it_with_the_same_id(
    receiver, endpoint, settings, api, configurer
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 503
    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    now = timezone.now()
    deliveries_send(now=now)
    deliveries_send(now=now + timedelta(hours=1))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
    assert deliveries_send(now=now + timedelta(hours=5)).attempted == 0

    receiver.status = 204
    url = f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/resend/"
    answer = api(configurer).post(url)
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    deliveries_send()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 204)
    assert receiver.ids() == [delivery.webhook_id] * 3


def test_a_delivered_event_sent_again_is_the_same_bytes_and_id(receiver, endpoint, api, configurer):
    delivery = WebhookDeliveryFactory(endpoint=endpoint, data={"text": "café ✓"})
    deliveries_send()
    api(configurer).post(
        f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/resend/"
    )
    deliveries_send()
    first, second = receiver.requests
    assert first.webhook_id == second.webhook_id == delivery.webhook_id
    assert first.body == second.body
    assert json.loads(second.body)["data"] == {"text": "café ✓"}
    for request in receiver.requests:
        Webhook(endpoint.secret).verify(request.body, request.headers)


def test_a_sender_killed_before_recording_sends_again_after_its_lease(receiver, endpoint):
    """At least once: a claim whose sender died is taken again when its lease ends."""
    from webhooks.sending import claim, lease, send_batch

    delivery = WebhookDeliveryFactory(endpoint=endpoint)
    t0 = timezone.now()
    send_batch(claim(now=t0, limit=10))  # sent, then the worker "dies": nothing recorded
    assert deliveries_send(now=t0 + timedelta(seconds=30)).attempted == 0  # leased
    deliveries_send(now=t0 + lease() + timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert receiver.ids() == [delivery.webhook_id, delivery.webhook_id]


def test_an_endpoint_down_in_a_batch_is_not_tried_once_per_delivery(receiver, endpoint, settings):
    settings.WEBHOOK_PARALLEL = 1
    receiver.stop()
    for _ in range(10):
        WebhookDeliveryFactory(endpoint=endpoint)
    summary = deliveries_send(now=timezone.now())
    assert summary.attempted == 1
    assert WebhookAttempt.objects.count() == 1
    assert WebhookDelivery.objects.filter(status="pending").count() == 10


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_delivery_once(receiver, org):
    """The claim (SKIP LOCKED on PostgreSQL, the write lock on SQLite) and the lease keep
    concurrent senders on different rows."""
    import threading

    from django.db import connection

    from tests.webhooks.factories import WebhookEndpointFactory

    endpoint = WebhookEndpointFactory(organisation=org, url=receiver.url)
    for _ in range(60):
        WebhookDeliveryFactory(endpoint=endpoint)
    errors = []

    def sender():
        try:
            deliveries_send(batch_size=7)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(receiver.ids()) == sorted(
        WebhookDelivery.objects.values_list("webhook_id", flat=True)
    )
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


def test_an_endpoint_deleted_while_its_deliveries_are_in_flight_leaves_the_rest_recorded(
    receiver, org, api, configurer
):
    from tests.webhooks.factories import WebhookEndpointFactory
    from webhooks.sending import claim, record, send_batch

    gone = WebhookDeliveryFactory(
        endpoint=WebhookEndpointFactory(organisation=org, url=receiver.url)
    )
    kept = WebhookDeliveryFactory(
        endpoint=WebhookEndpointFactory(organisation=org, url=receiver.url)
    )
    now = timezone.now()
    outcomes = send_batch(claim(now=now, limit=10))
    assert (
        api(configurer).delete(f"/api/v1/webhook-endpoints/{gone.endpoint_id}/").status_code == 204
    )
    record(outcomes, now=now)
    kept.refresh_from_db()
    assert kept.status == "delivered"
    assert list(WebhookAttempt.objects.values_list("delivery_id", flat=True)) == [kept.pk]
