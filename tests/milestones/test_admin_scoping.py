import pytest
from django_celery_beat.models import PeriodicTask

from milestones.models import User
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def test_configurer_sees_only_their_org_stores(admin_client_for, configurer, org, other_org):
    StoreFactory(organisation=org, code="MINE1")
    StoreFactory(organisation=other_org, code="THEIRS1")
    page = admin_client_for(configurer).get("/admin/milestones/store/")
    assert page.status_code == 200
    assert b"MINE1" in page.content and b"THEIRS1" not in page.content


def test_another_orgs_store_answers_404_in_the_admin(admin_client_for, configurer, other_org):
    theirs = StoreFactory(organisation=other_org, code="THEIRS1")
    client = admin_client_for(configurer)
    # Django admin redirects a missing object to the index with a message; the object is never shown.
    response = client.get(f"/admin/milestones/store/{theirs.id}/change/", follow=True)
    assert b"THEIRS1" not in response.content
    assert b"doesn\xe2\x80\x99t exist" in response.content or response.status_code == 404


def test_configurer_adds_a_store_into_their_own_org(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    response = client.post(
        "/admin/milestones/store/add/", {"code": "NEW1", "name": "New", "zone": "", "concept": ""}
    )
    assert response.status_code == 302, response.content
    assert org.stores.get(code="NEW1")


def test_member_care_can_view_but_not_change_stores(admin_client_for, member_care, org):
    store = StoreFactory(organisation=org, code="MINE1")
    client = admin_client_for(member_care)
    assert b"MINE1" in client.get("/admin/milestones/store/").content
    assert client.get("/admin/milestones/store/add/").status_code == 403
    response = client.post(f"/admin/milestones/store/{store.id}/change/", {"code": "HACKED"})
    assert response.status_code == 403
    store.refresh_from_db()
    assert store.code == "MINE1"


def test_integration_accounts_cannot_use_the_admin(admin_client_for, integration):
    response = admin_client_for(integration).get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_configurer_edits_only_their_own_org_settings(admin_client_for, configurer, org, other_org):
    client = admin_client_for(configurer)
    listing = client.get("/admin/milestones/organisation/")
    assert b"Acme" in listing.content and b"Globex" not in listing.content
    assert (
        client.get(
            f"/admin/milestones/organisation/{other_org.id}/change/", follow=True
        ).content.count(b"Globex")
        == 0
    )


def test_users_and_schedules_are_for_operations_only(admin_client_for, configurer):
    client = admin_client_for(configurer)
    assert client.get("/admin/milestones/user/").status_code == 403
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 403


def test_operations_see_the_installed_schedule_in_the_admin(client):
    ops = User.objects.create_superuser("ops", "ops@example.com", "ops-pass-1234")
    client.force_login(ops)
    page = client.get("/admin/django_celery_beat/periodictask/")
    assert page.status_code == 200
    assert b"heartbeat" in page.content
    assert PeriodicTask.objects.filter(
        name="heartbeat", task="milestones.tasks.record_heartbeat"
    ).exists()
