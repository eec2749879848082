"""Sign-in throttling on the admin (django-axes): after AXES_FAILURE_LIMIT wrong passwords for
one username from one address, that pair is refused, even with the right password."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def sign_in(client, username, password, ip="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail(client, username, times, ip="10.0.0.1"):
    return [sign_in(client, username, "wrong-password", ip).status_code for _ in range(times)]


def test_defaults_are_five_failures_and_a_fifteen_minute_cool_off():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_the_right_password_signs_in_through_the_form(configurer):
    client = Client()
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(configurer.pk)


def test_wrong_passwords_up_to_the_limit_then_even_the_right_one_is_refused(configurer):
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    # Below the limit the form comes back with its usual error.
    assert fail(client, "alice", limit - 1) == [200] * (limit - 1)
    # The failure that reaches the limit is answered with the lockout.
    assert fail(client, "alice", 1) == [429]
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many failed sign-ins" in text and "15 minutes" in text
    assert "_auth_user_id" not in client.session


def test_a_success_before_the_limit_resets_the_count(configurer):
    client = Client()
    fail(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    assert fail(client, "alice", settings.AXES_FAILURE_LIMIT - 1) == [200] * (
        settings.AXES_FAILURE_LIMIT - 1
    )
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_lockout_is_per_username_and_address(configurer, member_care):
    fail(Client(), "alice", settings.AXES_FAILURE_LIMIT, ip="10.0.0.1")
    # The same person from another address, and another person from the same address, sign in.
    assert sign_in(Client(), "alice", PASSWORD, ip="10.0.0.2").status_code == 302
    assert sign_in(Client(), "bob", PASSWORD, ip="10.0.0.1").status_code == 302
    assert sign_in(Client(), "alice", PASSWORD, ip="10.0.0.1").status_code == 429


def test_the_lock_lifts_after_the_cool_off(configurer):
    fail(Client(), "alice", settings.AXES_FAILURE_LIMIT)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429
    past = AccessAttempt.objects.get(username="alice").attempt_time - timedelta(minutes=16)
    AccessAttempt.objects.filter(username="alice").update(attempt_time=past)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(configurer, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post(
            LOGIN,
            {"username": "alice", "password": "nope"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR="198.51.100.7",
        )
    locked = Client().post(
        LOGIN,
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out; a spoofed left-most hop changes
    # nothing (the proxy appends the real address on the right).
    other = Client().post(
        LOGIN,
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="198.51.100.8",
    )
    assert other.status_code == 302
    spoofed = Client().post(
        LOGIN,
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.7",
    )
    assert spoofed.status_code == 429
