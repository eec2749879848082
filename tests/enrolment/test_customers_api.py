import pytest

from enrolment.models import Customer

pytestmark = pytest.mark.django_db


def test_integration_creates_a_customer_with_normalised_identifiers(api, integration, org):
    response = api(integration).post(
        "/api/v1/customers/",
        {"mobile": " +91 90000-00001 ", "email": " Asha@Example.COM ", "external_id": " C-1 ",
         "name": "Asha", "attributes": {"city": "Pune"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["mobile"], body["email"], body["external_id"]) == (
        "919000000001",
        "asha@example.com",
        "C-1",
    )
    assert body["attributes"] == {"city": "Pune"}
    assert Customer.objects.get(pk=body["id"]).organisation == org


@pytest.mark.parametrize(
    "query", ["mobile=+91 9000000001", "email=ASHA@example.com", "external_id=C-1"]
)
def test_customers_are_found_by_any_identifier(api, member_care, org, query):
    Customer.objects.create(
        organisation=org, mobile="919000000001", email="asha@example.com", external_id="C-1"
    )
    Customer.objects.create(organisation=org, mobile="919000000002")
    response = api(member_care).get(f"/api/v1/customers/?{query}")
    assert response.status_code == 200
    assert [c["mobile"] for c in response.json()] == ["919000000001"]


def test_an_identifier_used_by_another_customer_is_refused(api, configurer, org):
    Customer.objects.create(organisation=org, mobile="9000000001")
    response = api(configurer).post("/api/v1/customers/", {"mobile": "900-000-0001"}, format="json")
    assert response.status_code == 400
    assert "already has the mobile 9000000001" in response.json()["mobile"][0]


def test_a_malformed_identifier_is_a_400_naming_the_field(api, configurer):
    response = api(configurer).post("/api/v1/customers/", {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert response.json()["email"] == ["'not-an-email' is not an email address."]
    lookup = api(configurer).get("/api/v1/customers/?mobile=abc")
    assert lookup.status_code == 400
    assert lookup.json()["mobile"] == ["'abc' is not a mobile number: it has no digits."]


def test_member_care_reads_customers_but_cannot_create_them(api, member_care):
    assert api(member_care).post("/api/v1/customers/", {"mobile": "9000000001"}).status_code == 403
    assert not Customer.objects.exists()


def test_another_orgs_customer_answers_404(api, configurer, other_org):
    theirs = Customer.objects.create(organisation=other_org, mobile="9000000001")
    assert api(configurer).get(f"/api/v1/customers/{theirs.id}/").status_code == 404
    assert api(configurer).get("/api/v1/customers/?mobile=9000000001").json() == []


def test_the_same_mobile_may_exist_in_two_organisations(api, configurer, org, other_org):
    theirs = Customer.objects.create(organisation=other_org, mobile="9000000001")
    response = api(configurer).post("/api/v1/customers/", {"mobile": "9000000001"}, format="json")
    assert response.status_code == 201
    ours = Customer.objects.get(pk=response.json()["id"])
    assert ours.id != theirs.id and (ours.organisation, ours.mobile) == (org, "9000000001")
