"""The webhook screens: an endpoint's secret shown once, errors at their fields with a
summary, the delivery log with each attempt and Resend, times in the organisation's zone,
one organisation only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.webhooks.factories import WebhookAttemptFactory, WebhookDeliveryFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
ADD = "/admin/webhooks/webhookendpoint/add/"


def test_adding_an_endpoint_shows_its_secret_once(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    form = client.get(ADD).content.decode()
    assert 'type="checkbox" name="events" value="award.capped"' in form
    assert 'name="is_active"' not in form  # a new endpoint is active
    answer = client.post(ADD, {"url": "https://crm.example.com/in", "description": "CRM",
                               "events": ["target.achieved", "customer.enrolled"]})  # fmt: skip
    assert answer.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.organisation, endpoint.events) == (
        org,
        ["target.achieved", "customer.enrolled"],
    )
    page = answer.content.decode()
    assert endpoint.secret in page and "shown only on this page" in page
    change = client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in change
    assert "Shown once, when the endpoint was created" in change


def test_every_error_shows_at_its_field_with_a_summary_linking_to_it(admin_client_for, configurer):
    client = admin_client_for(configurer)
    page = client.post(ADD, {"url": "ftp://files.example.com", "description": ""}).content.decode()
    assert WebhookEndpoint.objects.count() == 0
    assert 'id="error-summary"' in page and "There are 2 problems" in page
    assert '<a href="#id_url">URL: Enter an http:// or https:// address' in page
    assert '<a href="#id_events_0">Event types: This field is required.</a>' in page


def test_the_delivery_log_shows_attempts_with_response_times_in_the_org_zone(
    admin_client_for, configurer, org
):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    WebhookAttemptFactory(
        delivery=delivery, attempted_at=datetime(2026, 3, 2, 4, 30, tzinfo=UTC), response_ms=1234
    )
    client = admin_client_for(configurer)
    listing = client.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert delivery.webhook_id in listing
    page = client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "1,234 ms" in page and "HTTP 500" in page
    assert "10 a.m." in page or "10:00" in page  # 04:30 UTC is 10:00 in Asia/Kolkata
    assert "Times in Asia/Kolkata" in page
    assert ">Resend</button>" in page
    assert "&quot;type&quot;: &quot;target.achieved&quot;" in page  # the body, escaped


def test_resend_from_the_log_queues_the_delivery_again(admin_client_for, configurer, org):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    client = admin_client_for(configurer)
    answer = client.post(f"/admin/webhooks/webhookdelivery/{delivery.pk}/resend/")
    assert answer.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "resend", "_selected_action": [delivery.pk]}
    )
    delivery.refresh_from_db()
    assert delivery.status == "pending"


def test_another_organisation_neither_sees_nor_resends_acmes_deliveries(
    admin_client_for, other_configurer, org
):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    client = admin_client_for(other_configurer)
    assert (
        delivery.webhook_id not in client.get("/admin/webhooks/webhookdelivery/").content.decode()
    )
    assert client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").status_code == 302
    assert client.post(f"/admin/webhooks/webhookdelivery/{delivery.pk}/resend/").status_code == 404
    endpoint_page = client.get(f"/admin/webhooks/webhookendpoint/{delivery.endpoint_id}/change/")
    assert endpoint_page.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "failed"


def test_member_care_has_no_webhook_screens(admin_client_for, member_care, org):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    client = admin_client_for(member_care)
    assert client.get("/admin/webhooks/webhookendpoint/").status_code == 403
    assert client.get("/admin/webhooks/webhookdelivery/").status_code == 403
    assert client.post(f"/admin/webhooks/webhookdelivery/{delivery.pk}/resend/").status_code == 403


def test_editing_an_endpoint_keeps_its_choices_and_saves_through_the_service(
    admin_client_for, configurer, org
):
    from tests.webhooks.factories import WebhookEndpointFactory

    endpoint = WebhookEndpointFactory(organisation=org, events=["award.created", "cycle.elapsed"])
    client = admin_client_for(configurer)
    url = f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/"
    page = client.get(url).content.decode()
    assert 'value="award.created" id="id_events_5" checked' in page
    assert 'value="target.achieved" id="id_events_0" checked' not in page
    answer = client.post(url, {"url": "https://new.example.com/in", "events": ["award.capped"],
                               "description": "moved", "is_active": ""})  # fmt: skip
    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.is_active) == (
        "https://new.example.com/in",
        ["award.capped"],
        False,
    )
