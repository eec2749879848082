"""Every webhook route against each role and another organisation's configurer (the rows
tests/security/test_permission_matrix.py needs for this app, checked here too)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from tests.webhooks.factories import WebhookDeliveryFactory

pytestmark = pytest.mark.django_db
ROLES = ("configurer", "member_care", "integration", "anonymous", "other_org")

API = {
    #                                                                    configurer member_care integration anonymous other_org
    "GET /api/v1/webhook-endpoints/":                                          (200, 403, 200, 401, 200),
    "POST /api/v1/webhook-endpoints/":                                         (400, 403, 400, 401, 400),
    "GET /api/v1/webhook-endpoints/{id}/":                                     (200, 403, 200, 401, 404),
    "PATCH /api/v1/webhook-endpoints/{id}/":                                   (200, 403, 200, 401, 404),
    "DELETE /api/v1/webhook-endpoints/{id}/":                                  (204, 403, 204, 401, 404),
    "GET /api/v1/webhook-endpoints/{id}/deliveries/":                          (200, 403, 200, 401, 404),
    "POST /api/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/resend/":    (202, 403, 202, 401, 404),
}  # fmt: skip

ADMIN = {
    "GET /admin/webhooks/webhookendpoint/":                    (200, 403, "login", "login", 200),
    "GET /admin/webhooks/webhookendpoint/add/":                (200, 403, "login", "login", 200),
    "GET /admin/webhooks/webhookendpoint/{id}/change/":        (200, 403, "login", "login", "index"),
    "GET /admin/webhooks/webhookendpoint/{id}/history/":       (200, 403, "login", "login", "index"),
    "GET /admin/webhooks/webhookdelivery/":                    (200, 403, "login", "login", 200),
    "GET /admin/webhooks/webhookdelivery/add/":                (403, 403, "login", "login", 403),
    "GET /admin/webhooks/webhookdelivery/{delivery_id}/change/":  (200, 403, "login", "login", "index"),
    "GET /admin/webhooks/webhookdelivery/{delivery_id}/history/": (200, 403, "login", "login", "index"),
    "POST /admin/webhooks/webhookdelivery/{delivery_id}/resend/": (302, 403, "login", "login", 404),
}  # fmt: skip


def outcome(response):
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/admin/login/"):
            return "login"
        return "index" if location == "/admin/" else 302
    return response.status_code


@pytest.fixture
def people(configurer, member_care, integration, other_configurer):
    return dict(
        zip(ROLES, (configurer, member_care, integration, None, other_configurer), strict=True)
    )


@pytest.fixture
def delivery(org):
    return WebhookDeliveryFactory(endpoint__organisation=org)


def observe(table, make_client, people, delivery):
    observed = {}
    for key in table:
        method, url = key.split(" ")
        url = url.replace("{id}", str(delivery.endpoint_id))
        url = url.replace("{delivery_id}", str(delivery.pk))
        row = []
        for role in ROLES:
            client = make_client(people[role])
            with transaction.atomic():
                kwargs = {"data": {}, "format": "json"} if isinstance(client, APIClient) else {}
                if method in ("GET", "DELETE"):
                    kwargs = {}
                row.append(outcome(getattr(client, method.lower())(url, **kwargs)))
                transaction.set_rollback(True)
        observed[key] = tuple(row)
    return observed


def api_client(user):
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def page_client(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_api_answers_each_role_and_organisation_as_expected(people, delivery):
    assert observe(API, api_client, people, delivery) == API


def test_the_admin_answers_each_role_and_organisation_as_expected(people, delivery):
    assert observe(ADMIN, page_client, people, delivery) == ADMIN
