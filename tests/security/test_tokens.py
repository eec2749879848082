"""API tokens are revocable: by their holder through the API, by a configurer (their own
organisation's users) or operations in the admin. A revoked token answers 401."""

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from milestones.models import AuditEntry

pytestmark = pytest.mark.django_db

REVOKE = "/api/v1/auth/token/revoke/"


def with_key(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.parametrize("role", ["configurer", "member_care", "integration"])
def test_a_caller_revokes_their_own_token_and_it_answers_401(role, request):
    user = request.getfixturevalue(role)
    key = user.auth_token.key
    assert with_key(key).get("/api/v1/stores/").status_code == 200
    response = with_key(key).post(REVOKE)
    assert response.status_code == 204
    assert not Token.objects.filter(key=key).exists()
    after = with_key(key).get("/api/v1/stores/")
    assert after.status_code == 401
    assert after.json() == {"detail": "Invalid token."}
    assert with_key(key).post(REVOKE).status_code == 401


def test_revoking_is_audited(configurer):
    with_key(configurer.auth_token.key).post(REVOKE)
    entry = AuditEntry.objects.get(action="token_revoked")
    assert (entry.organisation_id, entry.user_id, entry.object_id) == (
        configurer.organisation_id,
        configurer.pk,
        configurer.pk,
    )


def test_revoking_one_token_leaves_the_others(configurer, integration):
    with_key(integration.auth_token.key).post(REVOKE)
    assert with_key(configurer.auth_token.key).get("/api/v1/stores/").status_code == 200


def test_anonymous_cannot_revoke(api):
    assert api().post(REVOKE).status_code == 401


def test_revoke_is_in_the_openapi_schema(api):
    schema = api().get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/auth/token/revoke/"]["post"]
    assert operation["operationId"] == "auth_token_revoke"
    assert "204" in operation["responses"]


def test_a_new_token_is_issued_by_create_org_after_revocation(org, integration, capsys):
    old = integration.auth_token.key
    with_key(old).post(REVOKE)
    call_command("create_org", "acme", "--name", "Acme", "--timezone", "Asia/Kolkata",
                 "--user", "ivan", "--role", "integration")  # fmt: skip
    new = Token.objects.get(user=integration).key
    assert new != old
    assert new in capsys.readouterr().out
    assert with_key(new).get("/api/v1/stores/").status_code == 200
    assert with_key(old).get("/api/v1/stores/").status_code == 401


def test_configurer_revokes_a_user_token_in_the_admin(admin_client_for, configurer, integration):
    key = integration.auth_token.key
    client = admin_client_for(configurer)
    listing = client.get("/admin/authtoken/tokenproxy/")
    assert listing.status_code == 200
    assert b"ivan" in listing.content
    assert key.encode() not in listing.content  # keys are never shown
    response = client.post(
        "/admin/authtoken/tokenproxy/",
        {"action": "revoke", "index": 0, "_selected_action": [str(integration.pk)]},
    )
    assert response.status_code == 302
    assert not Token.objects.filter(user=integration).exists()
    assert with_key(key).get("/api/v1/stores/").status_code == 401


def test_configurer_sees_and_revokes_only_their_own_organisation_tokens(
    admin_client_for, configurer, other_integration
):
    client = admin_client_for(configurer)
    assert b"erin" not in client.get("/admin/authtoken/tokenproxy/").content
    client.post(
        "/admin/authtoken/tokenproxy/",
        {"action": "revoke", "index": 0, "_selected_action": [str(other_integration.pk)]},
    )
    assert Token.objects.filter(user=other_integration).exists()


def test_member_care_cannot_revoke_tokens_in_the_admin(admin_client_for, member_care, integration):
    client = admin_client_for(member_care)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 403
    response = client.post(
        "/admin/authtoken/tokenproxy/",
        {"action": "revoke", "index": 0, "_selected_action": [str(integration.pk)]},
    )
    assert response.status_code == 403
    assert Token.objects.filter(user=integration).exists()


def test_operations_revoke_any_organisations_token(client, other_integration):
    from milestones.models import User

    ops = User.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345")
    client.force_login(ops)
    assert b"erin" in client.get("/admin/authtoken/tokenproxy/").content
    client.post(
        "/admin/authtoken/tokenproxy/",
        {"action": "revoke", "index": 0, "_selected_action": [str(other_integration.pk)]},
    )
    assert not Token.objects.filter(user=other_integration).exists()


# --- The token screen answers no question about a key ------------------------------------------

KEY_LOOKUPS = [
    "key__startswith",
    "key__istartswith",
    "key__regex",
    "key__gte",
    "key",
    "pk__startswith",
    "pk__in",
    "user__auth_token__key__startswith",
    "user__auth_token__startswith",
]


@pytest.mark.parametrize("lookup", KEY_LOOKUPS)
def test_the_token_list_refuses_every_lookup_on_the_key(
    admin_client_for, configurer, integration, lookup
):
    """A filter on the key would answer "1 Token" / "0 Tokens" and so spell every key out,
    prefix by prefix: the list takes no filter, a right prefix and a wrong one both get 400."""
    key = integration.auth_token.key
    client = admin_client_for(configurer)
    wrong = "0" if key[0] != "0" else "1"
    right = client.get("/admin/authtoken/tokenproxy/", {lookup: key[:2]})
    other = client.get("/admin/authtoken/tokenproxy/", {lookup: wrong})
    assert (right.status_code, other.status_code) == (400, 400)
    assert right.content == other.content


def test_the_token_list_with_a_to_field_shows_no_key(admin_client_for, configurer, integration):
    key = integration.auth_token.key
    client = admin_client_for(configurer)
    page = client.get("/admin/authtoken/tokenproxy/", {"_to_field": "key", "_popup": "1"})
    assert page.status_code == 400
    assert key[:8].encode() not in page.content


@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_a_guessed_key_gets_the_same_answer_as_a_wrong_one(
    admin_client_for, configurer, integration, page
):
    key = integration.auth_token.key
    client = admin_client_for(configurer)
    right = client.get(f"/admin/authtoken/tokenproxy/{key}/{page}/")
    wrong = client.get(f"/admin/authtoken/tokenproxy/{'0' * 40}/{page}/")
    assert right.status_code == wrong.status_code
    assert right.get("Location") == wrong.get("Location")


def test_the_token_list_and_search_show_no_key(admin_client_for, configurer, integration):
    key = integration.auth_token.key
    client = admin_client_for(configurer)
    for query in ({}, {"q": "ivan"}, {"o": "1"}, {"o": "-2"}):
        page = client.get("/admin/authtoken/tokenproxy/", query)
        assert page.status_code == 200
        assert key[:8].encode() not in page.content
