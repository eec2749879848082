"""Identifier tricks (issue 15, finding 9): what looks the same to a person names the same
customer everywhere (customers API, enrolments, audience lists, CSV imports, activities), and
a mobile is never silently shortened into another valid number."""

import pytest

from enrolment.identifiers import IdentifierError, normalise
from enrolment.models import Customer
from evaluation.models import Activity
from tests.factories import StoreFactory

ZWSP = "\u200b"


# --- the rule, without a database ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "stored"),
    [
        ("mobile", "77000\uff100001", "7700000001"),  # a full-width 0 is a 0, not dropped
        ("mobile", "\uff0b91 \uff19\uff10000 00001", "919000000001"),  # full-width + and digits
        ("mobile", f"9000000001{ZWSP}", "9000000001"),
        ("mobile", "\u0669\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0661", "9000000001"),
        ("mobile", "+91 (900) 000-00.01", "919000000001"),  # the usual separators
        ("mobile", 9000000001, "9000000001"),
        ("email", f"dup@example.com{ZWSP}", "dup@example.com"),
        ("email", "\ufeffDUP@Example.COM\u00a0", "dup@example.com"),
        ("email", "\uff44up@example.com", "dup@example.com"),  # full-width d
        ("external_id", f"X-1{ZWSP}", "X-1"),
        ("external_id", "X-1\u2060\u00ad", "X-1"),  # word joiner, soft hyphen
        ("external_id", "X\u00a0\u00a01", "X 1"),
        ("external_id", "X-1\ufe0f", "X-1"),  # a variation selector
    ],
)
def test_identifiers_are_nfkc_without_invisible_characters(kind, raw, stored):
    assert normalise(kind, raw) == stored
    assert normalise(kind, stored) == stored  # stored values are already normal


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("abc9000000001", "'a' (U+0061)"),
        ("9000000001x", "'x' (U+0078)"),
        ("91+9000000001", "'+' (U+002B)"),
        ("9000\u20130000001", "'\u2013' (U+2013)"),  # an en dash is not a separator
        ("9000/000001", "'/' (U+002F)"),
    ],
)
def test_a_mobile_with_a_non_digit_is_refused_by_name_never_shortened(raw, named):
    with pytest.raises(IdentifierError) as refused:
        normalise("mobile", raw)
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("mobile", True),
        ("mobile", ["9000000001"]),
        ("email", "a b@example.com"),
        ("email", f"{ZWSP}"),
        ("external_id", f"{ZWSP}\u00a0"),
    ],
)
def test_what_is_not_an_identifier_stays_refused(kind, raw):
    with pytest.raises(IdentifierError):
        normalise(kind, raw)


# --- through the API -------------------------------------------------------------------------


@pytest.fixture
def milestone(org, make_group):
    """make_group with a till (a milestone needs one)."""
    StoreFactory(organisation=org, code="T1", is_till=True)

    def make(name, **extra):
        return make_group(name, till_code="T1", **extra)

    return make


@pytest.mark.django_db
def test_a_full_width_digit_makes_the_number_it_looks_like(api, integration):
    response = api(integration).post(
        "/api/v1/customers/", {"mobile": "77000\uff100001"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["mobile"] == "7700000001"
    found = api(integration).get("/api/v1/customers/?mobile=7700000001").json()
    assert [c["id"] for c in found] == [response.json()["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "existing", "lookalike"),
    [
        ("email", "dup@example.com", f"dup@example.com{ZWSP}"),
        ("email", "dup@example.com", "DUP@example.com"),
        ("external_id", "X-1", f"X-1{ZWSP}"),
        ("mobile", "9000000001", f"9000000001{ZWSP}"),
    ],
)
def test_a_lookalike_identifier_cannot_make_a_second_customer(
    api, integration, org, field, existing, lookalike
):
    first = api(integration).post("/api/v1/customers/", {field: existing}, format="json")
    assert first.status_code == 201, first.content
    second = api(integration).post("/api/v1/customers/", {field: lookalike}, format="json")
    assert second.status_code == 400
    assert "already has the" in second.json()[field][0]
    assert Customer.objects.filter(organisation=org).count() == 1
    found = api(integration).get("/api/v1/customers/", {field: lookalike}).json()
    assert [c["id"] for c in found] == [first.json()["id"]]


@pytest.mark.django_db
def test_a_mobile_with_a_letter_is_a_400_naming_it(api, integration):
    response = api(integration).post("/api/v1/customers/", {"mobile": "90000O0001"}, format="json")
    assert response.status_code == 400
    assert "'O' (U+004F) is not a digit" in response.json()["mobile"][0]
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_enrolments_and_audience_lists_find_the_lookalike(api, configurer, org, milestone):
    customer = Customer.objects.create(organisation=org, email="dup@example.com", external_id="X-1")
    group = milestone("Everyone")
    enrolled = api(configurer).post(
        f"/api/v1/target-groups/{group.id}/enrolments/",
        {"customers": [{"email": f"Dup@Example.com{ZWSP}"}, {"external_id": f"X-1{ZWSP}"}]},
        format="json",
    )
    assert enrolled.status_code == 200, enrolled.content
    assert enrolled.json()["customer_ids"] == [customer.id, customer.id]
    assert enrolled.json()["created_customers"] == 0
    audience = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "Lookalikes", "kind": "list",
         "customers": [{"email": f"dup@example.com{ZWSP}"}, {"external_id": "\ufeffX-1"}]},
        format="json",
    )  # fmt: skip
    assert audience.status_code == 201, audience.content
    assert audience.json()["member_count"] == 1


@pytest.mark.django_db
def test_an_activity_names_the_same_customer_through_a_lookalike(api, integration, org):
    customer = Customer.objects.create(organisation=org, email="dup@example.com")
    response = api(integration).post(
        "/api/v1/activities/",
        {"id": "e-1", "type": "event", "name": "AddToCart",
         "customer": {"email": f"DUP@example.com{ZWSP}"},
         "occurred_at": "2026-03-04T11:00:00+00:00"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 202, response.content
    assert Activity.objects.get().customer_id == customer.id
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_a_csv_import_reads_full_width_and_invisible_characters(upload, milestone, org):
    Customer.objects.create(organisation=org, mobile="7700000001")
    group = milestone("Fuel B2B", per_customer=True)
    text = f"mobile,P1\n77000\uff100001,5\n9000000002{ZWSP},6\n"
    status = upload(group, text)
    assert status["status"] == "done", status
    assert sorted(Customer.objects.values_list("mobile", flat=True)) == [
        "7700000001",
        "9000000002",
    ]
    refused = upload(group, "mobile,P1\n90000O0001,5\n")
    assert refused["status"] == "failed"
    assert "'O' (U+004F) is not a digit" in refused["errors"][0]["message"]


@pytest.mark.django_db
def test_a_customer_saved_from_a_form_is_normalised_too(org):
    customer = Customer(organisation=org, mobile=f"+91 90000 0000{ZWSP}1", email=" A@B.co ")
    customer.full_clean()
    assert (customer.mobile, customer.email, customer.external_id) == (
        "919000000001",
        "a@b.co",
        None,
    )
