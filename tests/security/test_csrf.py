"""CSRF: every form of the admin and the member-care pages refuses a POST without the token;
the API needs none with token authentication and requires it with a signed-in session."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from enrolment.models import ImportJob
from milestones.models import Store
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def csrf_client(user=None):
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def token_from(client, url):
    """GET a page as a browser would and read the CSRF token it set."""
    page = client.get(url)
    assert page.status_code == 200
    return client.cookies["csrftoken"].value


def admin_form_urls():
    urls = []
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
    return urls


def test_the_admin_sign_in_form_needs_the_token(configurer):
    client = csrf_client()
    refused = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    token = token_from(client, "/admin/login/")
    accepted = client.post(
        "/admin/login/",
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert accepted.status_code == 302


def test_an_admin_form_without_the_token_is_refused_and_saves_nothing(configurer, org):
    client = csrf_client(configurer)
    data = {"code": "NEW1", "name": "New", "zone": "", "concept": ""}
    refused = client.post("/admin/milestones/store/add/", data)
    assert refused.status_code == 403
    assert not Store.objects.filter(code="NEW1").exists()
    token = token_from(client, "/admin/milestones/store/add/")
    accepted = client.post("/admin/milestones/store/add/", {**data, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert Store.objects.filter(organisation=org, code="NEW1").exists()


@pytest.mark.parametrize("url", admin_form_urls())
def test_every_admin_add_and_changelist_form_refuses_a_post_without_the_token(url, configurer):
    response = csrf_client(configurer).post(url, {"action": "delete_selected", "index": 0})
    assert response.status_code == 403
    assert b"CSRF verification failed" in response.content


def test_a_member_care_form_without_the_token_is_refused(configurer, group):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"/care/milestones/{group.id}/imports/"
    client = csrf_client(configurer)

    def data():
        csv = SimpleUploadedFile("l.csv", b"mobile,P1\n9000000001,100\n", content_type="text/csv")
        return {"file": csv, "identifier_type": "mobile", "send_trigger": "on"}

    refused = client.post(url, data())
    assert refused.status_code == 403
    assert not ImportJob.objects.exists()
    token = token_from(client, url)
    accepted = client.post(url, {**data(), "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302, accepted.content[:500]
    assert ImportJob.objects.filter(target_group=group).count() == 1


def test_the_api_with_a_token_needs_no_csrf(configurer):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {configurer.auth_token.key}")
    response = client.post("/api/v1/stores/", {"code": "API1"}, format="json")
    assert response.status_code == 201


def test_the_api_with_a_session_requires_the_csrf_token(configurer):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(configurer)
    refused = client.post("/api/v1/stores/", {"code": "API1"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("CSRF Failed")
    assert not Store.objects.filter(code="API1").exists()
    # Reads need no token; a browser then echoes the cookie in the X-CSRFToken header.
    assert client.get("/admin/").status_code == 200
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/v1/stores/", {"code": "API1"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 201


def test_revoking_a_token_with_a_session_requires_the_csrf_token(configurer):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(configurer)
    assert client.post("/api/v1/auth/token/revoke/").status_code == 403
    configurer.refresh_from_db()
    assert configurer.auth_token
