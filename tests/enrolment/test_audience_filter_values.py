"""Audience filters with malformed values are a 400 naming the condition when the group is
saved, never a 500 (issue 15, finding 7), and audience lists are capped like enrolments
(finding 10)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from enrolment import selectors
from enrolment.audiences import audience_group_create, filter_errors
from enrolment.models import AudienceGroup, Customer
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def milestone(org, make_group):
    """make_group with a till (a milestone needs one)."""
    StoreFactory(organisation=org, code="T1", is_till=True)

    def make(name, **extra):
        return make_group(name, till_code="T1", **extra)

    return make


@pytest.fixture
def target(milestone):
    group = milestone("Fuel 1", targets=[{"name": "Gold", "kpi": "quantity", "value": Decimal(1)}])
    return group.targets.get()


def post_filter(api, user, *conditions, name="Filtered"):
    client = api(user)
    client.raise_request_exception = False
    return client.post(
        "/api/v1/audience-groups/",
        {"name": name, "kind": "filter", "filter": {"conditions": list(conditions)}},
        format="json",
    )


CUSTOMER_CONDITIONS = [
    ({"field": "attributes.x", "op": "gt", "value": [1]}, "attributes.x: [1] is not a string"),
    ({"field": "attributes.x", "op": "gt", "value": 10**30}, "too large a number"),
    ({"field": "attributes.x", "op": "gt", "value": True}, "compares numbers or text"),
    ({"field": "attributes.x", "op": "in", "value": [{"a": 1}]}, "is not a string, number"),
    ({"field": "attributes.x", "op": "contains", "value": [5]}, "[5] is not text"),
    ({"field": "joined_on", "op": "in", "value": ["x"]}, "joined_on: 'x' is not a date"),
    ({"field": "joined_on", "op": "gte", "value": "0001-01-01"}, "outside 1900-01-01"),
    ({"field": "joined_on", "op": "contains", "value": "2026"}, "not 'contains'"),
    ({"field": "created_at", "op": "gte", "value": "2026-02-30"}, "'2026-02-30' is not a date"),
    ({"field": "created_at", "op": "lt", "value": "9999-12-31"}, "outside 1900-01-01"),
    ({"field": "created_at", "op": "lt", "value": "2026-01-01T25:00"}, "is not a date (2026"),
    ({"field": "is_loyalty_member", "op": "eq", "value": "yes"}, "'yes' is not true or false"),
    ({"field": "is_loyalty_member", "op": "gt", "value": True}, "not 'gt'"),
    ({"field": "mobile", "op": "eq", "value": "90000O0001"}, "'O' (U+004F) is not a digit"),
    ({"field": "email", "op": "in", "value": ["not-an-email"]}, "is not an email address"),
    ({"field": "name", "op": "eq", "value": {"a": 1}}, "is not text"),
    ({"field": "name", "op": "in", "value": list(range(1001))}, "more than 1000 values"),
    ({"field": "name", "op": "in", "value": []}, "needs a list of values"),
    ({"field": "email", "op": "exists"}, "'exists' needs the value true or false"),
    ({"field": "name", "op": "gt", "value": None}, "'gt' needs a value, not null"),
    ({"field": "name", "op": "in", "value": ["a", None]}, "'in' needs a value, not null"),
    ({"field": "attributes.x", "op": "in", "value": [None]}, "'in' needs a value, not null"),
    ({"field": "name", "op": ["eq"], "value": "x"}, "unknown operator ['eq']"),
    ({"field": ["name"], "op": "eq", "value": "x"}, "unknown field ['name']"),
    ({"field": "attributes.", "op": "eq", "value": "x"}, "name the attribute"),
]


@pytest.mark.parametrize(("condition", "message"), CUSTOMER_CONDITIONS)
def test_a_bad_customer_condition_is_a_400_naming_it(api, configurer, condition, message):
    response = post_filter(api, configurer, {"field": "name", "op": "eq", "value": "ok"}, condition)
    assert response.status_code == 400, response.content
    errors = response.json()["filter"]
    assert len(errors) == 1 and errors[0].startswith("Condition 2: "), errors
    assert message in errors[0]
    assert not AudienceGroup.objects.exists()


TARGET_CONDITIONS = [
    ({"min_value": "abc"}, "min_value: 'abc' is not a number"),
    ({"min_value": "NaN"}, "min_value: 'NaN' is not a number between"),
    ({"min_value": 10**20}, "is not a number between"),
    ({"min_value": True}, "min_value: True is not a number"),
    ({"last_days": 10**12}, "last_days must be between 1 and 36500"),
    ({"last_days": 0}, "last_days must be between 1 and 36500"),
    ({"last_days": "ten"}, "last_days must be a whole number"),
    ({"last_days": True}, "last_days must be a whole number"),
    ({"from": "0001-01-01"}, "'from': 0001-01-01 is outside 1900-01-01 to 2999-12-31"),
    ({"to": "9999-12-31"}, "'to': 9999-12-31 is outside 1900-01-01 to 2999-12-31"),
    ({"from": "2026-03-01", "to": "2026-02-01"}, "'to' (2026-02-01) is before 'from'"),
    ({"from": 20260101}, "20260101 is not a date"),
    ({"achieved": "yes"}, "'achieved' is true or false"),
    ({"cycle": True}, "True is not a cycle of 'Gold'"),
    ({"cycle": "P" + "9" * 50}, "is not a cycle of 'Gold'"),
    ({"shoe": 1}, "unknown keys shoe"),
]


@pytest.mark.parametrize(("extra", "message"), TARGET_CONDITIONS)
def test_a_bad_target_condition_is_a_400_naming_it(api, configurer, target, extra, message):
    response = post_filter(api, configurer, {"target": "Gold", **extra})
    assert response.status_code == 400, response.content
    assert any(e.startswith("Condition 1: ") and message in e for e in response.json()["filter"])


@pytest.mark.parametrize(
    "ref",
    [10**30, True, "", "G\x00old", ["Gold"], "x" * 201],
)
def test_a_target_reference_that_names_nothing_is_a_400(org, target, ref):
    errors = filter_errors(org, {"conditions": [{"target": ref, "achieved": True}]})
    assert len(errors) == 1 and errors[0].startswith("Condition 1: ")


def test_too_many_conditions_is_one_short_400(api, configurer):
    conditions = [{"field": "name", "op": "eq", "value": "x"}] * 51
    response = post_filter(api, configurer, *conditions)
    assert response.status_code == 400
    assert response.json()["filter"] == ["A filter has at most 50 conditions, got 51."]


def test_good_values_select_what_they_say(org, target):
    """Identifiers compare in their stored form; a date on created_at is a whole day in the
    organisation's timezone (Asia/Kolkata); an attribute key with '__' is just a key."""
    pune = Customer.objects.create(
        organisation=org, mobile="919000000001", email="asha@example.com",
        attributes={"city": "Pune", "a__gt": 3}, joined_on="2026-01-05",
    )  # fmt: skip
    other = Customer.objects.create(
        organisation=org, mobile="919000000002", attributes={"city": "Delhi"}
    )
    # 2026-03-01 00:30 in Kolkata is still 2026-02-28 in UTC
    Customer.objects.filter(pk=pune.pk).update(created_at=datetime(2026, 2, 28, 19, 0, tzinfo=UTC))
    Customer.objects.filter(pk=other.pk).update(created_at=datetime(2026, 2, 28, 18, 0, tzinfo=UTC))

    def members(*conditions):
        group = audience_group_create(
            organisation=org,
            name=f"G{AudienceGroup.objects.count()}",
            kind="filter",
            filter={"conditions": list(conditions)},
        )
        return set(group.memberships.values_list("customer_id", flat=True))

    assert members({"field": "mobile", "op": "eq", "value": "+91 90000 00001"}) == {pune.id}
    assert members({"field": "email", "op": "in", "value": ["ASHA@example.com\u200b"]}) == {pune.id}
    assert members({"field": "mobile", "op": "contains", "value": "0000-0002"}) == {other.id}
    assert members({"field": "created_at", "op": "eq", "value": "2026-03-01"}) == {pune.id}
    assert members({"field": "created_at", "op": "lt", "value": "2026-03-01"}) == {other.id}
    assert members({"field": "joined_on", "op": "in", "value": ["2026-01-05"]}) == {pune.id}
    assert members({"field": "attributes.a__gt", "op": "gt", "value": 2}) == {pune.id}
    assert members({"field": "attributes.city", "op": "ne", "value": "Pune"}) == {other.id}
    assert members({"field": "email", "op": "exists", "value": False}) == {other.id}
    assert members({"target": "Gold", "achieved": True, "last_days": 36500}) == set()


def test_the_model_admin_form_path_checks_the_filter_too(org, target):
    """What the admin's save calls (filter_errors) refuses what the API refuses."""
    assert filter_errors(org, {"conditions": [{"target": "Gold", "last_days": 10**12}]}) == [
        "Condition 1: last_days must be between 1 and 36500, not 1000000000000."
    ]
    assert filter_errors(org, {"conditions": [{"target": "Gold", "achieved": True}]}) == []


# --- audience list size (finding 10) -----------------------------------------------------------


@pytest.fixture
def lookups_forbidden(monkeypatch):
    def forbidden(**kwargs):
        raise AssertionError("items were looked up before the count was checked")

    monkeypatch.setattr(selectors, "customers_lookup_many", forbidden)
    monkeypatch.setattr("enrolment.api.customers_lookup_many", forbidden)


def test_a_list_of_too_many_customers_is_refused_before_any_item_is_read(
    api, configurer, lookups_forbidden
):
    items = [{"mobile": f"9{i:09d}"} for i in range(60_000)]
    response = api(configurer).post(
        "/api/v1/audience-groups/", {"name": "Huge", "kind": "list", "customers": items},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json() == {
        "customers": [
            "At most 10,000 customers per request, got 60,000: send them in several "
            "requests or upload a CSV file."
        ]
    }
    assert len(response.content) < 300
    assert not AudienceGroup.objects.exists()


def test_adding_too_many_customers_to_a_list_is_refused_the_same_way(
    api, configurer, org, lookups_forbidden
):
    group = audience_group_create(organisation=org, name="Small", kind="list", customer_ids=[])
    items = [{"mobile": f"9{i:09d}"} for i in range(10_001)]
    response = api(configurer).post(
        f"/api/v1/audience-groups/{group.id}/customers/", {"customers": items}, format="json"
    )
    assert response.status_code == 400
    assert "At most 10,000 customers per request, got 10,001" in response.json()["customers"][0]


def test_enrolments_have_the_same_cap(api, integration, milestone):
    group = milestone("Everyone")
    items = [{"mobile": f"9{i:09d}"} for i in range(10_001)]
    response = api(integration).post(
        f"/api/v1/target-groups/{group.id}/enrolments/", {"customers": items}, format="json"
    )
    assert response.status_code == 400
    assert "At most 10,000 customers per request" in response.json()["customers"][0]


def test_a_full_list_is_looked_up_in_a_few_queries_and_reports_its_first_problems(
    api, configurer, org, django_assert_max_num_queries
):
    known = Customer.objects.create(organisation=org, mobile="9000000000")
    items = [{"mobile": f"9{i:09d}"} for i in range(10_000)]
    with django_assert_max_num_queries(40):
        response = api(configurer).post(
            "/api/v1/audience-groups/", {"name": "Big", "kind": "list", "customers": items},
            format="json",
        )  # fmt: skip
    assert response.status_code == 400
    errors = response.json()["customers"]
    assert errors[0] == "Item 2: no such customer in this organisation."
    assert len(errors) == 101 and errors[-1] == "... and 9,899 more items with problems."
    ok = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "Known", "kind": "list", "customers": [{"mobile": "9000000000"}] * 3},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["member_count"] == 1
    assert AudienceGroup.objects.get(name="Known").memberships.get().customer_id == known.id


def test_a_merge_source_id_out_of_range_is_a_400_not_a_500(api, configurer):
    """Found by the schema fuzzer: an id past 64 bits overflowed the database lookup."""
    response = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "Merged", "kind": "merge", "sources": [203, -56826005781544569929728]},
        format="json",
    )
    assert response.status_code == 400
    assert "sources" in response.json()
