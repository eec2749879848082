import pytest

from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def test_org_settings_defaults_per_contract(api, configurer):
    body = api(configurer).get("/api/v1/org-settings/").json()
    assert body["award_when_target_achieved"] is True
    assert body["allow_return_on_target"] is False
    assert body["offset_days"] == 0
    assert body["timezone"] == "Asia/Kolkata"


def test_configurer_patches_org_settings(api, configurer, org):
    response = api(configurer).patch(
        "/api/v1/org-settings/",
        {"award_when_target_achieved": False, "allow_return_on_target": True, "offset_days": 5},
        format="json",
    )
    assert response.status_code == 200, response.content
    org.refresh_from_db()
    assert (org.award_when_target_achieved, org.allow_return_on_target, org.offset_days) == (
        False,
        True,
        5,
    )


def test_org_settings_refuse_a_bad_timezone_and_change_nothing(api, configurer, org):
    response = api(configurer).patch(
        "/api/v1/org-settings/", {"timezone": "Nowhere/Land", "offset_days": 3}, format="json"
    )
    assert response.status_code == 400
    assert "Unknown timezone" in response.json()["timezone"][0]
    org.refresh_from_db()
    assert org.timezone == "Asia/Kolkata" and org.offset_days == 0


@pytest.mark.parametrize("role_fixture", ["member_care", "integration"])
def test_only_configurers_change_org_settings(api, request, role_fixture, org):
    user = request.getfixturevalue(role_fixture)
    assert api(user).get("/api/v1/org-settings/").status_code == 200
    assert (
        api(user).patch("/api/v1/org-settings/", {"offset_days": 9}, format="json").status_code
        == 403
    )
    org.refresh_from_db()
    assert org.offset_days == 0


def test_anonymous_is_refused(api, org):
    assert api().get("/api/v1/org-settings/").status_code == 401
    assert api().get("/api/v1/stores/").status_code == 401


def test_each_org_sees_its_own_settings(api, configurer, other_configurer):
    assert api(configurer).get("/api/v1/org-settings/").json()["slug"] == "acme"
    assert api(other_configurer).get("/api/v1/org-settings/").json()["slug"] == "globex"


def test_configurer_creates_stores_and_tills(api, configurer):
    client = api(configurer)
    response = client.post(
        "/api/v1/stores/",
        {"code": "S1", "name": "Main", "zone": "North", "concept": "Fuel", "is_till": False},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (
        client.post("/api/v1/stores/", {"code": "T1", "is_till": True}, format="json").status_code
        == 201
    )
    listed = client.get("/api/v1/stores/").json()
    assert [(s["code"], s["zone"], s["is_till"]) for s in listed] == [
        ("S1", "North", False),
        ("T1", "", True),
    ]


def test_duplicate_store_code_is_a_clear_400(api, configurer):
    client = api(configurer)
    client.post("/api/v1/stores/", {"code": "S1"}, format="json")
    response = client.post("/api/v1/stores/", {"code": "S1"}, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["code"][0]


def test_stores_are_isolated_between_orgs(api, configurer, other_configurer, other_org):
    theirs = StoreFactory(organisation=other_org, code="G1")
    assert api(configurer).get("/api/v1/stores/").json() == []
    assert api(configurer).get(f"/api/v1/stores/{theirs.id}/").status_code == 404
    assert (
        api(configurer)
        .patch(f"/api/v1/stores/{theirs.id}/", {"name": "x"}, format="json")
        .status_code
        == 404
    )
    assert [s["code"] for s in api(other_configurer).get("/api/v1/stores/").json()] == ["G1"]


def test_the_same_store_code_may_exist_in_two_orgs(api, configurer, other_org):
    StoreFactory(organisation=other_org, code="S1")
    assert api(configurer).post("/api/v1/stores/", {"code": "S1"}, format="json").status_code == 201


@pytest.mark.parametrize("role_fixture", ["member_care", "integration"])
def test_stores_are_read_only_for_other_roles(api, request, role_fixture, org):
    user = request.getfixturevalue(role_fixture)
    StoreFactory(organisation=org, code="S9")
    assert [s["code"] for s in api(user).get("/api/v1/stores/").json()] == ["S9"]
    assert api(user).post("/api/v1/stores/", {"code": "S2"}, format="json").status_code == 403


def test_schema_and_docs_are_served_locally(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/org-settings/" in schema.content
    docs = client.get("/api/docs/")
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content and b"unpkg.com" not in docs.content
