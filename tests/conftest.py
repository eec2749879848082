"""Shared fixtures: two organisations (acme, globex) and a user of each role in each.

Permission and isolation tests are then one line: `api(member_care).post(...)`,
`api(other_configurer).get(...)`.
"""

import os
import tempfile

import pytest
from rest_framework.test import APIClient

from milestones.models import Role
from milestones_site.celery import app as celery_app
from tests.factories import OrganisationFactory, UserFactory

PASSWORD = "pass-1234-word"


def _private_broker_namespace() -> None:
    """Each test run talks to the real broker in its own namespace, so two runs on one
    machine (or a stale message from an earlier run) never take each other's tasks."""
    options = dict(celery_app.conf.broker_transport_options or {})
    if celery_app.conf.broker_url.startswith("filesystem://"):
        folder = tempfile.mkdtemp(prefix="milestones-broker-")
        for key, sub in (
            ("data_folder_in", "queue"),
            ("data_folder_out", "queue"),
            ("processed_folder", "processed"),
            ("control_folder", "control"),
        ):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
            options[key] = os.path.join(folder, sub)
    else:
        options["global_keyprefix"] = f"test-{os.getpid()}:"
    celery_app.conf.broker_transport_options = options


_private_broker_namespace()


@pytest.fixture(autouse=True)
def _fresh_config_cache():
    """Tracking caches each organisation's compiled configuration per process: every test
    starts and ends with it empty, whatever database state the last test left."""
    from evaluation import config_cache

    config_cache.invalidate()
    yield
    config_cache.invalidate()


@pytest.fixture
def org(db):
    return OrganisationFactory(slug="acme", name="Acme", timezone="Asia/Kolkata")


@pytest.fixture
def other_org(db):
    return OrganisationFactory(slug="globex", name="Globex", timezone="UTC")


@pytest.fixture
def configurer(org):
    return UserFactory(username="alice", organisation=org, role=Role.CONFIGURER)


@pytest.fixture
def member_care(org):
    return UserFactory(username="bob", organisation=org, role=Role.MEMBER_CARE)


@pytest.fixture
def integration(org):
    return UserFactory(username="ivan", organisation=org, role=Role.INTEGRATION)


@pytest.fixture
def other_configurer(other_org):
    return UserFactory(username="charlie", organisation=other_org, role=Role.CONFIGURER)


@pytest.fixture
def other_member_care(other_org):
    return UserFactory(username="dora", organisation=other_org, role=Role.MEMBER_CARE)


@pytest.fixture
def other_integration(other_org):
    return UserFactory(username="erin", organisation=other_org, role=Role.INTEGRATION)


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated with the user's token; api() is anonymous."""

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
        return client

    return make


@pytest.fixture
def admin_client_for(client):
    """admin_client_for(user) -> a Django test client logged in as the user."""

    def make(user):
        client.force_login(user)
        return client

    return make


@pytest.fixture(autouse=True)
def _private_rank_keys(settings):
    """Each test's Redis rank sets live under their own prefix (ids repeat between tests)."""
    import uuid

    settings.RANKS_KEY_PREFIX = f"test-{uuid.uuid4().hex[:12]}:"
