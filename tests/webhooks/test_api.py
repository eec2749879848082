"""The webhook endpoints API: the contract's shapes, the secret shown once, clear 400s, roles
and organisation isolation."""

from __future__ import annotations

import pytest

from tests.webhooks.factories import WebhookAttemptFactory, WebhookDeliveryFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
BASE = "/api/v1/webhook-endpoints/"


def create(client, **body):
    body.setdefault("url", "https://hooks.example.com/milestones")
    body.setdefault("events", ["target.achieved", "award.created"])
    return client.post(BASE, body, format="json")


def test_post_answers_the_secret_once_and_get_never_shows_it(api, integration):
    client = api(integration)
    answer = create(client, description="CRM")
    assert answer.status_code == 201
    body = answer.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["secret"] == WebhookEndpoint.objects.get().secret
    assert (body["url"], body["events"], body["description"], body["is_active"]) == (
        "https://hooks.example.com/milestones", ["target.achieved", "award.created"], "CRM", True
    )  # fmt: skip
    detail = client.get(f"{BASE}{body['id']}/")
    listed = client.get(BASE)
    assert detail.status_code == listed.status_code == 200
    assert "secret" not in detail.json()
    assert all("secret" not in row for row in listed.json())
    assert body["secret"] not in detail.content.decode() + listed.content.decode()


def test_a_url_that_is_not_http_is_a_clear_400(api, configurer):
    for url in ("ftp://files.example.com/x", "javascript:alert(1)", "not a url", ""):
        answer = create(api(configurer), url=url)
        assert answer.status_code == 400, url
        assert answer.json()["url"] == [
            "Enter an http:// or https:// address, e.g. https://example.com/webhooks."
        ] or answer.json()["url"] == ["This field may not be blank."]
    assert WebhookEndpoint.objects.count() == 0


def test_unknown_event_types_are_a_400_naming_them_with_the_url_error_too(api, configurer):
    answer = create(api(configurer), url="ftp://x.example.com", events=["target.achieved",
                    "target.exploded", "award.gone"])  # fmt: skip
    assert answer.status_code == 400
    errors = answer.json()
    assert errors["events"] == [
        "Unknown event types: 'target.exploded', 'award.gone'. Known: target.achieved, "
        "sub_target.achieved, cycle.elapsed, target.near_miss, customer.enrolled, "
        "award.created, award.capped, milestone.activated, milestone.deactivated."
    ]
    assert "url" in errors
    assert create(api(configurer), events=[]).json() == {
        "events": ["Choose at least one event type."]
    }


def test_near_miss_is_subscribable(api, configurer):
    answer = create(api(configurer), events=["target.near_miss"])
    assert answer.status_code == 201 and answer.json()["events"] == ["target.near_miss"]


def test_patch_changes_url_events_and_the_switch(api, configurer):
    client = api(configurer)
    pk = create(client).json()["id"]
    answer = client.patch(f"{BASE}{pk}/", {"url": "http://127.0.0.1:8080/in",
                          "events": ["cycle.elapsed"], "is_active": False}, format="json")  # fmt: skip
    assert answer.status_code == 200
    assert (answer.json()["url"], answer.json()["events"], answer.json()["is_active"]) == (
        "http://127.0.0.1:8080/in",
        ["cycle.elapsed"],
        False,
    )
    bad = client.patch(f"{BASE}{pk}/", {"events": ["nope"], "url": "gopher://x"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"events", "url"}
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:8080/in"  # unchanged


def test_reactivating_a_disabled_endpoint_clears_its_failure_and_sends_what_waited(
    api, configurer, org
):
    from django.utils import timezone

    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    endpoint = delivery.endpoint
    far = timezone.now() + timezone.timedelta(hours=5)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, failing_since=timezone.now(), disabled_at=timezone.now(),
        disabled_reason="Disabled automatically",
    )  # fmt: skip
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=far, attempts=7)
    body = api(configurer).patch(f"{BASE}{endpoint.pk}/", {"is_active": True}, format="json").json()
    assert (body["is_active"], body["failing_since"], body["disabled_reason"]) == (True, None, "")
    delivery.refresh_from_db()
    assert delivery.next_attempt_at <= timezone.now()
    assert delivery.attempts_before_resend == 7  # a fresh retry budget


def test_delete_removes_the_endpoint_and_its_deliveries(api, configurer, org):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    answer = api(configurer).delete(f"{BASE}{delivery.endpoint_id}/")
    assert answer.status_code == 204
    assert WebhookEndpoint.objects.count() == WebhookDelivery.objects.count() == 0


def test_deliveries_list_the_contract_fields_with_each_attempt(api, integration, org):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    WebhookAttemptFactory(delivery=delivery, number=1, status_code=500, response_ms=12)
    rows = api(integration).get(f"{BASE}{delivery.endpoint_id}/deliveries/").json()
    (row,) = rows
    for name in ("event_type", "webhook_id", "status", "attempts", "last_status_code",
                 "created_at", "delivered_at"):  # fmt: skip
        assert name in row
    assert (row["event_type"], row["webhook_id"], row["status"]) == (
        "target.achieved",
        delivery.webhook_id,
        "pending",
    )
    assert row["body"]["type"] == "target.achieved"
    assert row["attempt_log"] == [{"number": 1, "attempted_at": row["attempt_log"][0]["attempted_at"],
                                   "status_code": 500, "response_ms": 12, "error": "HTTP 500"}]  # fmt: skip
    filtered = api(integration).get(f"{BASE}{delivery.endpoint_id}/deliveries/?status=delivered")
    assert filtered.json() == []
    bad = api(integration).get(f"{BASE}{delivery.endpoint_id}/deliveries/?status=lost")
    assert bad.status_code == 400 and "status" in bad.json()


def test_member_care_may_not_see_or_manage_endpoints(api, member_care, org):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    client = api(member_care)
    assert client.get(BASE).status_code == 403
    assert create(client).status_code == 403
    assert client.get(f"{BASE}{delivery.endpoint_id}/deliveries/").status_code == 403


def test_another_organisation_sees_nothing_of_acmes_endpoints(api, other_configurer, org):
    delivery = WebhookDeliveryFactory(endpoint__organisation=org)
    pk = delivery.endpoint_id
    client = api(other_configurer)
    assert client.get(BASE).json() == []
    assert client.get(f"{BASE}{pk}/").status_code == 404
    assert client.get(f"{BASE}{pk}/deliveries/").status_code == 404
    assert client.patch(f"{BASE}{pk}/", {"is_active": False}, format="json").status_code == 404
    assert client.post(f"{BASE}{pk}/deliveries/{delivery.pk}/resend/").status_code == 404
    assert client.delete(f"{BASE}{pk}/").status_code == 404
    assert WebhookEndpoint.objects.get().is_active


def test_a_delivery_is_resent_only_through_its_own_endpoint(api, configurer, org):
    mine = WebhookDeliveryFactory(endpoint__organisation=org)
    other = WebhookDeliveryFactory(endpoint__organisation=org)
    url = f"{BASE}{mine.endpoint_id}/deliveries/{other.pk}/resend/"
    assert api(configurer).post(url).status_code == 404
    huge = f"{BASE}{mine.endpoint_id}/deliveries/99999999999999999999999/resend/"
    assert api(configurer).post(huge).status_code == 404
