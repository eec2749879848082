"""One customer per person (issue 16, A): with the organisation's default_country, a mobile
is stored in E.164 and "9000000077", "+91 90000 00077" and "919000000077" name the same
customer everywhere: activities, the customers API, CSV imports, audiences and member care's
search. Without one, mobiles stay digits as before; a number impossible in the country is a
400 naming it."""

from decimal import Decimal

import pytest

from enrolment import audiences
from enrolment.identifiers import IdentifierError, normalise
from enrolment.models import Customer, CustomerTargetValue
from evaluation.models import Activity

pytestmark = pytest.mark.django_db

SPELLINGS = ["9000000077", "+91 90000 00077", "919000000077"]
E164 = "+919000000077"


@pytest.fixture
def india(org):
    org.default_country = "IN"
    org.save(update_fields=["default_country"])
    return org


def activity(i, mobile):
    return {"id": f"a-{i}", "type": "customer_event", "customer": {"mobile": mobile},
            "occurred_at": "2026-03-04T11:00:00+00:00", "name": "profile_update"}  # fmt: skip


def post_activities(api, integration, django_capture_on_commit_callbacks, *items, expect=202):
    with django_capture_on_commit_callbacks(execute=False):
        response = api(integration).post("/api/v1/activities/", list(items), format="json")
    assert response.status_code == expect, response.content
    return response.json()


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [*SPELLINGS, "09000000077", "0091 9000000077", E164])
def test_every_spelling_of_a_number_is_one_e164_number_in_the_country(raw):
    assert normalise("mobile", raw, country="IN") == E164
    assert normalise("mobile", E164, country="IN") == E164  # stored values are normal


def test_without_a_country_a_mobile_is_its_digits_as_before():
    assert [normalise("mobile", raw) for raw in SPELLINGS] == [
        "9000000077", "919000000077", "919000000077",
    ]  # fmt: skip


@pytest.mark.parametrize("raw", ["12345", "+1 234567", "+91 9000", "1234567"])
def test_a_number_impossible_in_the_country_is_refused_naming_it(raw):
    with pytest.raises(IdentifierError) as refused:
        normalise("mobile", raw, country="IN")
    assert repr(raw) in str(refused.value)


# --- everywhere ----------------------------------------------------------------------------------


def test_activities_in_three_spellings_are_one_customer(
    india, api, integration, django_capture_on_commit_callbacks
):
    result = post_activities(
        api, integration, django_capture_on_commit_callbacks,
        *(activity(i, m) for i, m in enumerate(SPELLINGS)),
    )  # fmt: skip
    assert result["accepted"] == 3
    customer = Customer.objects.get(organisation=india)
    assert customer.mobile == E164
    assert set(Activity.objects.values_list("customer_id", flat=True)) == {customer.id}
    post_activities(
        api, integration, django_capture_on_commit_callbacks, activity(9, "09000000077")
    )
    assert Customer.objects.filter(organisation=india).count() == 1


def test_an_impossible_number_in_an_activity_is_a_400_naming_it(
    india, api, integration, django_capture_on_commit_callbacks
):
    body = post_activities(
        api, integration, django_capture_on_commit_callbacks, activity(1, "+91 12"),
        activity(2, "1234567"), expect=400,
    )  # fmt: skip
    assert "1234567" in str(body) and "not a possible mobile number in IN" in str(body)
    assert not Customer.objects.exists()


def test_the_customers_api_stores_e164_and_finds_it_by_any_spelling(india, api, integration):
    client = api(integration)
    created = client.post("/api/v1/customers/", {"mobile": "90000 00077"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["mobile"] == E164
    for raw in SPELLINGS:
        found = client.get("/api/v1/customers/", {"mobile": raw}).json()
        assert [c["id"] for c in found] == [created.json()["id"]], raw
    again = client.post("/api/v1/customers/", {"mobile": "919000000077"}, format="json")
    assert again.status_code == 400 and E164 in str(again.json()["mobile"])


def test_the_customers_api_refuses_an_impossible_number_with_a_400(india, api, integration):
    response = api(integration).post("/api/v1/customers/", {"mobile": "1234567"}, format="json")
    assert response.status_code == 400
    assert "1234567" in response.json()["mobile"][0]
    lookup = api(integration).get("/api/v1/customers/", {"mobile": "+1 234567"})
    assert lookup.status_code == 400


def test_without_a_default_country_nothing_changes_for_integrations(
    org, api, integration, django_capture_on_commit_callbacks
):
    post_activities(
        api, integration, django_capture_on_commit_callbacks,
        *(activity(i, m) for i, m in enumerate(SPELLINGS)),
    )  # fmt: skip
    assert sorted(Customer.objects.values_list("mobile", flat=True)) == [
        "9000000077", "919000000077",
    ]  # fmt: skip


def test_a_csv_import_reads_every_spelling_as_the_stored_customer(india, make_group, upload):
    customer = Customer.objects.create(organisation=india, mobile=E164)
    group = make_group("Fuel B2B", per_customer=True)
    status = upload(group, "mobile,P1\n919000000077,500\n")
    assert status["status"] == "done", status
    assert status["created_customers"] == 0
    assert CustomerTargetValue.objects.get(customer=customer, cycle_ordinal=1).value == Decimal(500)
    status = upload(group, "mobile,P1\n9000000077,600\n+91 90000 00077,700\n")
    assert status["status"] == "failed"
    assert status["errors"][0]["row"] == 3 and E164 in status["errors"][0]["message"]
    status = upload(group, "mobile,P1\n1234567,1\n")
    assert "not a possible mobile number in IN" in status["errors"][0]["message"]


def test_the_sample_csv_shows_mobiles_that_import_as_they_are(india, make_group, api, configurer):
    group = make_group("Fuel B2B", per_customer=True)
    sample = api(configurer).get(f"/api/v1/target-groups/{group.id}/target-values/sample/")
    mobile = sample.content.decode().splitlines()[1].split(",")[0]
    assert mobile.isdigit()  # no "+": a spreadsheet would read it as a formula
    assert normalise("mobile", mobile, country="IN").startswith("+91")


def test_audience_lists_and_filters_read_every_spelling(india, api, configurer):
    customer = Customer.objects.create(organisation=india, mobile=E164)
    client = api(configurer)
    listed = client.post(
        "/api/v1/audience-groups/",
        {"name": "Listed", "kind": "list", "customers": [{"mobile": "919000000077"}]},
        format="json",
    )
    assert listed.status_code == 201, listed.content
    assert listed.json()["member_count"] == 1
    for n, raw in enumerate(SPELLINGS):
        group = audiences.audience_group_create(
            organisation=india, name=f"Filter {n}", kind="filter",
            filter={"conditions": [{"field": "mobile", "op": "eq", "value": raw}]},
        )  # fmt: skip
        assert list(group.memberships.values_list("customer_id", flat=True)) == [customer.id]


def test_member_care_finds_the_customer_by_any_spelling(india, admin_client_for, member_care):
    customer = Customer.objects.create(organisation=india, mobile="+919000000002")
    client = admin_client_for(member_care)
    for raw in ["+91 90000 00002", "9000000002", "919000000002", "09000000002"]:
        response = client.get("/care/", {"q": raw})
        assert response.status_code == 302, raw
        assert response.url.endswith(f"/care/customers/{customer.id}/milestones/")


def test_the_setting_is_in_org_settings_validated(org, api, configurer):
    client = api(configurer)
    assert client.get("/api/v1/org-settings/").json()["default_country"] == ""
    response = client.patch("/api/v1/org-settings/", {"default_country": "in"}, format="json")
    assert response.status_code == 200 and response.json()["default_country"] == "IN"
    refused = client.patch("/api/v1/org-settings/", {"default_country": "XX"}, format="json")
    assert refused.status_code == 400 and "XX" in refused.json()["default_country"][0]
    cleared = client.patch("/api/v1/org-settings/", {"default_country": ""}, format="json")
    assert cleared.status_code == 200
    org.refresh_from_db()
    assert org.default_country == ""


def test_the_organisation_admin_shows_the_setting(org, admin_client_for, configurer):
    page = admin_client_for(configurer).get(f"/admin/milestones/organisation/{org.pk}/change/")
    assert page.status_code == 200
    assert b'name="default_country"' in page.content
