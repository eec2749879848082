"""Audience groups as real screens (issue 18, item 3): a filter builder with target pickers, a
CSV upload for list groups, the members with a count, "Refresh now", and the service's
refusals (an unknown target, a merge that includes itself) at their inputs, all at once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from playwright.sync_api import expect

from enrolment.audiences import (
    audience_group_create,
    audience_group_update,
    filter_errors,
    filter_problems,
)
from enrolment.models import AudienceGroup, AudienceMember, Customer
from milestones.models import Period
from tests.e2e import conftest as e2e
from tests.factories import (
    AudienceGroupFactory,
    CustomerFactory,
    ProgressFactory,
    TargetGroupFactory,
    TillFactory,
    monthly_cycle,
    target_data,
)

pytestmark = pytest.mark.django_db

# the browser fixtures of tests/e2e (Debian's Chromium), for the two journeys at the end
browser, chromium_page, save_screenshot = e2e.browser, e2e.new_page, e2e.screenshot

ADMIN = "/admin/enrolment/audiencegroup/"


def rows(*conditions) -> dict:
    """The builder's POST data for these rows."""
    data = {"cond-TOTAL_FORMS": str(len(conditions))}
    for i, row in enumerate(conditions):
        for key, value in row.items():
            data[f"cond-{i}-{key}"] = value
    return data


def target_row(target, **values) -> dict:
    return {"kind": "target", "achieved": "yes", "target": str(target.pk), "min_value": "",
            "cycle": "", "when": "", **values}  # fmt: skip


def csv(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("list.csv", text.encode(), content_type="text/csv")


@pytest.fixture
def fuel(org, configurer):
    """Acme's milestone "Fuel" with monthly cycles: two before this month, this month, and
    three after; its target "Gold" (quantity 100)."""
    today = timezone.localdate(timezone=org.tzinfo)
    first = (today.replace(day=1) - timedelta(days=40)).replace(day=1)
    group = TargetGroupFactory(
        organisation=org, created_by=configurer, name="Fuel",
        start=first, end=first + timedelta(days=200),
        till_code=TillFactory(organisation=org).code,
        cycle=monthly_cycle(first, count=6),
        targets=[target_data("Gold", kpi="quantity", value=100)],
    )  # fmt: skip
    return group.targets.get()


def period_now(target) -> Period:
    now = timezone.now()
    return Period.objects.get(target_group=target.target_group, starts_at__lte=now, ends_at__gt=now)


def achieved(target, customer, ordinal, value=150):
    return ProgressFactory(
        target=target, customer=customer, cycle_ordinal=ordinal, achieved=Decimal(value),
        achieved_at=timezone.now(),
    )  # fmt: skip


# --- the service: cycles, refusals --------------------------------------------------------------


def test_current_and_previous_cycles_follow_the_calendar(org, fuel):
    now_ordinal = period_now(fuel).ordinal
    this_month, last_month = CustomerFactory(organisation=org), CustomerFactory(organisation=org)
    achieved(fuel, this_month, now_ordinal)
    achieved(fuel, last_month, now_ordinal - 1)
    current = audience_group_create(
        organisation=org, name="Now", kind="filter",
        filter={"conditions": [{"target": fuel.pk, "achieved": True, "cycle": "current"}]},
    )  # fmt: skip
    previous = audience_group_create(
        organisation=org, name="Before", kind="filter",
        filter={"conditions": [{"target": "Gold", "achieved": True, "cycle": "previous"}]},
    )  # fmt: skip
    assert list(current.memberships.values_list("customer_id", flat=True)) == [this_month.pk]
    assert list(previous.memberships.values_list("customer_id", flat=True)) == [last_month.pk]


def test_a_cycle_the_target_does_not_have_is_refused_at_the_cycle(org, fuel):
    problems = filter_problems(org, {"conditions": [{"target": "Gold", "cycle": "Someday"}]})
    assert [(p.condition, p.key) for p in problems] == [(1, "cycle")]
    assert "'Someday' is not a cycle of 'Gold'" in problems[0].message


def test_an_unknown_target_is_refused_naming_it(org, fuel):
    assert filter_errors(org, {"conditions": [{"target": "Golf", "achieved": True}]}) == [
        "Condition 1: no target named 'Golf' in this organisation."
    ]


def test_another_organisations_target_is_unknown(org, other_org, other_configurer):
    theirs = TargetGroupFactory(organisation=other_org, created_by=other_configurer,
                                name="Globex fuel").targets.get()  # fmt: skip
    problems = filter_problems(org, {"conditions": [{"target": theirs.pk}]})
    assert [(p.condition, p.key) for p in problems] == [(1, "target")]


def test_a_merge_cannot_include_itself(org):
    one, two = AudienceGroupFactory(organisation=org), AudienceGroupFactory(organisation=org)
    merged = AudienceGroupFactory(organisation=org, name="Both", kind="merge",
                                  sources=[one.pk, two.pk])  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        audience_group_update(audience_group=merged, name="Both", sources=[merged.pk, one.pk])
    assert refused.value.message_dict == {"sources": ["'Both' cannot include itself."]}


def test_a_merge_cannot_include_a_group_that_includes_it(org):
    one, two, three = (AudienceGroupFactory(organisation=org, name=n) for n in "ABC")
    inner = AudienceGroupFactory(organisation=org, name="Inner", kind="merge",
                                 sources=[one.pk, two.pk])  # fmt: skip
    outer = AudienceGroupFactory(organisation=org, name="Outer", kind="merge",
                                 sources=[inner.pk, three.pk])  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        audience_group_update(audience_group=inner, name="Inner", sources=[one.pk, outer.pk])
    assert refused.value.message_dict["sources"] == [
        "'Outer' already includes 'Inner' (Outer → Inner): including it here would make a loop."
    ]
    assert set(inner.sources.values_list("pk", flat=True)) == {one.pk, two.pk}


def test_the_api_refuses_an_unknown_target_as_the_screen_does(api, configurer, fuel):
    response = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "Typo", "kind": "filter", "filter": {"conditions": [{"target": "Glod"}]}},
        format="json",
    )
    assert response.status_code == 400
    assert "no target named 'Glod'" in str(response.json())
    assert not AudienceGroup.objects.filter(name="Typo").exists()


# --- the add page: the builder ------------------------------------------------------------------


def test_the_add_page_offers_this_organisations_targets_and_a_double_quoted_example(
    admin_client_for, configurer, fuel, other_org, other_configurer
):
    TargetGroupFactory(organisation=other_org, created_by=other_configurer, name="Globex",
                       targets=[target_data("Globex secret")])  # fmt: skip
    page = admin_client_for(configurer).get(f"{ADMIN}add/").content.decode()
    assert f'<option value="{fuel.pk}">Gold</option>' in page
    assert '<optgroup label="Fuel">' in page
    assert "Globex secret" not in page
    assert (
        "+ Add condition" in page and 'hx-get="/admin/enrolment/audiencegroup/condition/"' in page
    )
    assert "Advanced: edit as JSON" in page
    assert "{&quot;conditions&quot;: [" in page  # the example, in double quotes
    assert "{'conditions'" not in page and "see docs" not in page


def test_a_filter_built_from_rows_is_stored_and_computed_at_once(
    admin_client_for, configurer, org, fuel
):
    gold, silver = CustomerFactory(organisation=org), CustomerFactory(organisation=org)
    ordinal = period_now(fuel).ordinal
    achieved(fuel, gold, ordinal, value=150)
    achieved(fuel, silver, ordinal, value=120)
    data = {"name": "Gold 140+", "kind": "filter", "description": "",
            **rows(target_row(fuel, min_value="140", cycle="current"))}  # fmt: skip
    response = admin_client_for(configurer).post(f"{ADMIN}add/", data, follow=True)
    group = AudienceGroup.objects.get(name="Gold 140+")
    assert group.filter == {
        "conditions": [{"target": fuel.pk, "achieved": True, "min_value": 140, "cycle": "current"}]
    }
    assert group.member_count == 1
    assert list(group.memberships.values_list("customer_id", flat=True)) == [gold.pk]
    assert "“Gold 140+” has 1 member(s)." in response.content.decode()


def test_customer_conditions_become_the_services_definition(
    admin_client_for, configurer, org, fuel
):
    pune = CustomerFactory(organisation=org, attributes={"city": "Pune", "visits": 5},
                           is_loyalty_member=True)  # fmt: skip
    CustomerFactory(organisation=org, attributes={"city": "Pune", "visits": 2})
    data = {"name": "Pune regulars", "kind": "filter",
            **rows({"kind": "customer", "field": "attribute", "attribute": "city", "op": "eq",
                    "value": "Pune", "flag": "true"},
                   {"kind": "customer", "field": "attribute", "attribute": "visits", "op": "gte",
                    "value": "3"},
                   {"kind": "customer", "field": "is_loyalty_member", "op": "eq", "flag": "true",
                    "value": "ignored"})}  # fmt: skip
    response = admin_client_for(configurer).post(f"{ADMIN}add/", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    group = AudienceGroup.objects.get(name="Pune regulars")
    assert group.filter == {"conditions": [
        {"field": "attributes.city", "op": "eq", "value": "Pune"},
        {"field": "attributes.visits", "op": "gte", "value": 3},
        {"field": "is_loyalty_member", "op": "eq", "value": True},
    ]}  # fmt: skip
    assert list(group.memberships.values_list("customer_id", flat=True)) == [pune.pk]


def test_every_error_shows_at_its_input_at_once_with_a_summary(admin_client_for, configurer, fuel):
    data = {"name": "", "kind": "filter",
            **rows({"kind": "target", "achieved": "yes", "target": ""},
                   {"kind": "customer", "field": "attribute", "attribute": "", "op": "eq",
                    "value": "x"},
                   target_row(fuel, when="last_days", last_days=""))}  # fmt: skip
    response = admin_client_for(configurer).post(f"{ADMIN}add/", data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Please correct the 4 errors below." in page
    assert 'id="id_name_error"><li>This field is required.</li>' in page
    assert '<a href="#id_name">Name</a>: This field is required.' in page
    for anchor, message in [
        ("#id_cond-0-target", "Choose a target."),
        ("#id_cond-1-attribute", "Name the attribute, as in city."),
        ("#id_cond-2-last_days", "Give the number of days."),
    ]:
        assert f'<a href="{anchor}">' in page, anchor
        assert f'id="{anchor[1:]}_error">{message}' in page, anchor
    assert not AudienceGroup.objects.exists()


def test_a_value_the_service_refuses_is_shown_at_its_row(admin_client_for, configurer, fuel):
    data = {"name": "Odd", "kind": "filter",
            **rows(target_row(fuel), target_row(fuel, min_value="lots"))}  # fmt: skip
    page = admin_client_for(configurer).post(f"{ADMIN}add/", data).content.decode()
    assert 'id="id_cond-1-min_value_error">min_value: &#x27;lots&#x27; is not a number.' in page
    assert '<a href="#id_cond-1-min_value">Condition 2, with at least</a>' in page
    assert not AudienceGroup.objects.exists()


def test_an_unknown_target_written_as_json_is_refused_at_the_json(
    admin_client_for, configurer, fuel
):
    data = {"name": "Typo", "kind": "filter", "use_json": "on",
            "filter": '{"conditions": [{"target": "Glod", "achieved": true}]}',
            **rows(target_row(fuel))}  # fmt: skip
    page = admin_client_for(configurer).post(f"{ADMIN}add/", data).content.decode()
    assert 'id="id_filter_error">' in page
    assert "Condition 1: no target named &#x27;Glod&#x27; in this organisation." in page
    assert not AudienceGroup.objects.exists()


def test_only_the_chosen_way_of_writing_the_filter_is_read(admin_client_for, configurer, org, fuel):
    client = admin_client_for(configurer)
    as_json = {"name": "By JSON", "kind": "filter", "use_json": "on",
               "filter": '{"conditions": [{"field": "name", "op": "eq", "value": "Asha"}]}',
               **rows({"kind": "target", "achieved": "yes", "target": ""})}  # fmt: skip
    assert client.post(f"{ADMIN}add/", as_json).status_code == 302  # the blank row is unread
    by_rows = {"name": "By rows", "kind": "filter", "filter": "{not json",
               **rows(target_row(fuel))}  # fmt: skip
    assert client.post(f"{ADMIN}add/", by_rows).status_code == 302  # the JSON box is unread
    assert AudienceGroup.objects.get(name="By JSON").filter["conditions"][0]["value"] == "Asha"
    assert AudienceGroup.objects.get(name="By rows").filter == {
        "conditions": [{"target": fuel.pk, "achieved": True}]
    }


def test_single_quoted_json_gets_a_clear_message(admin_client_for, configurer):
    data = {"name": "Quotes", "kind": "filter", "use_json": "on",
            "filter": "{'conditions': [{'field': 'name', 'op': 'eq', 'value': 'Asha'}]}"}  # fmt: skip
    page = admin_client_for(configurer).post(f"{ADMIN}add/", data).content.decode()
    assert "This is not valid JSON. Write every key and text value in double quotes" in page


def test_the_fields_of_another_kind_are_cleared_on_save(admin_client_for, configurer, org, fuel):
    customer = CustomerFactory(organisation=org, mobile="9000000001")
    other = AudienceGroupFactory(organisation=org)
    data = {"name": "Listed", "kind": "list", "identifier_type": "mobile",
            "list_file": csv("mobile\n9000000001\n"), "sources": [other.pk],
            "filter": '{"conditions": [{"field": "name", "op": "eq", "value": "x"}]}',
            **rows(target_row(fuel))}  # fmt: skip
    response = admin_client_for(configurer).post(f"{ADMIN}add/", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    group = AudienceGroup.objects.get(name="Listed")
    assert (group.kind, group.filter, list(group.sources.all())) == ("list", {}, [])
    assert list(group.memberships.values_list("customer_id", flat=True)) == [customer.pk]


# --- list groups: the CSV upload ----------------------------------------------------------------


def test_a_list_with_unknown_identifiers_is_refused_by_row_and_adds_no_one(
    admin_client_for, configurer, org
):
    CustomerFactory(organisation=org, mobile="9000000001")
    data = {"name": "VIP", "kind": "list", "identifier_type": "mobile",
            "list_file": csv("mobile\n9000000001\n9000000002\nnot-a-number\n")}  # fmt: skip
    page = admin_client_for(configurer).post(f"{ADMIN}add/", data).content.decode()
    assert "Row 3 (mobile): No customer with mobile 9000000002 in this organisation." in page
    assert "Row 4 (mobile):" in page
    assert "Nothing was added: 2 bad row(s)." in page and "Skip bad rows" in page
    assert '<a href="#id_list_file">Customers file (CSV)</a>' in page
    assert not AudienceGroup.objects.exists()


def test_skip_bad_rows_adds_the_good_rows(admin_client_for, configurer, org):
    known = CustomerFactory(organisation=org, mobile="9000000001")
    data = {"name": "VIP", "kind": "list", "identifier_type": "mobile", "skip_bad_rows": "on",
            "list_file": csv("mobile\n9000000001\n9000000002\n")}  # fmt: skip
    response = admin_client_for(configurer).post(f"{ADMIN}add/", data)
    assert response.status_code == 302
    group = AudienceGroup.objects.get(name="VIP")
    assert list(group.memberships.values_list("customer_id", flat=True)) == [known.pk]


def test_a_new_list_group_needs_a_file(admin_client_for, configurer):
    page = (
        admin_client_for(configurer)
        .post(f"{ADMIN}add/", {"name": "Empty", "kind": "list", "identifier_type": "mobile"})
        .content.decode()
    )
    assert 'id="id_list_file_error"' in page
    assert "Upload the group&#x27;s customers as a CSV file." in page


def test_uploading_to_a_list_group_adds_its_customers(admin_client_for, configurer, org):
    first = CustomerFactory(organisation=org, email="asha@example.com")
    second = CustomerFactory(organisation=org, email="ravi@example.com")
    group = AudienceGroupFactory(organisation=org, name="Mailing", customers=[first])
    response = admin_client_for(configurer).post(
        f"{ADMIN}{group.pk}/change/",
        {"name": "Mailing", "identifier_type": "email", "identifier_column": "Email address",
         "list_file": csv("Email address\nRAVI@example.com\n")},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-3000:]
    group.refresh_from_db()
    assert group.member_count == 2
    assert set(group.memberships.values_list("customer_id", flat=True)) == {first.pk, second.pk}


# --- the change page: members, refresh, merges --------------------------------------------------


def test_the_change_page_shows_the_count_and_the_members_escaped(
    admin_client_for, configurer, org, other_org
):
    asha = CustomerFactory(organisation=org, name="<b>Asha</b>", mobile="9000000001")
    group = AudienceGroupFactory(organisation=org, name="Named", customers=[asha])
    page = admin_client_for(configurer).get(f"{ADMIN}{group.pk}/change/").content.decode()
    assert '<strong id="ag-member-count">1</strong> member(s)' in page
    assert "&lt;b&gt;Asha&lt;/b&gt;" in page and "<b>Asha</b>" not in page
    assert "9000000001" in page
    assert "Add customers from a file" in page
    assert "+ Add condition" not in page and "Groups to merge" not in page  # list fields only
    assert "Refresh now" not in page  # a list changes by upload only


def test_the_members_are_paginated(admin_client_for, configurer, org):
    people = [CustomerFactory(organisation=org, name=f"Customer {i:03d}") for i in range(55)]
    group = AudienceGroupFactory(organisation=org, name="Many", customers=people)
    client = admin_client_for(configurer)
    first = client.get(f"{ADMIN}{group.pk}/change/").content.decode()
    assert "Customer 049" in first and "Customer 050" not in first
    assert "Page 1 of 2 (55 customers)" in first
    second = client.get(f"{ADMIN}{group.pk}/members/?page=2").content.decode()
    assert "Customer 050" in second and "Customer 054" in second and "Customer 049" not in second


def test_the_member_list_never_shows_another_organisations_customer(
    admin_client_for, configurer, org, other_org
):
    mine = CustomerFactory(organisation=org, name="Asha Acmeson")
    group = AudienceGroupFactory(organisation=org, name="Mixed", customers=[mine])
    stranger = CustomerFactory(organisation=other_org, name="Gina Globex")
    AudienceMember.objects.create(audience_group=group, customer=stranger)  # a corrupt row
    page = admin_client_for(configurer).get(f"{ADMIN}{group.pk}/change/").content.decode()
    assert "Asha Acmeson" in page and "Gina Globex" not in page


def test_refresh_now_recomputes_and_reports_the_count(admin_client_for, configurer, org):
    group = audience_group_create(
        organisation=org, name="Pune", kind="filter",
        filter={"conditions": [{"field": "attributes.city", "op": "eq", "value": "Pune"}]},
    )  # fmt: skip
    assert group.member_count == 0
    CustomerFactory(organisation=org, name="New in Pune", attributes={"city": "Pune"})
    client = admin_client_for(configurer)
    assert client.get(f"{ADMIN}{group.pk}/refresh/").status_code == 405
    page = client.post(f"{ADMIN}{group.pk}/refresh/", follow=True).content.decode()
    assert "Refreshed: 1 member(s) (1 added, 0 removed)." in page
    assert '<strong id="ag-member-count">1</strong>' in page and "New in Pune" in page


def test_refresh_now_by_htmx_answers_the_count_and_the_members(admin_client_for, configurer, org):
    group = audience_group_create(
        organisation=org, name="Pune", kind="filter",
        filter={"conditions": [{"field": "attributes.city", "op": "eq", "value": "Pune"}]},
    )  # fmt: skip
    CustomerFactory(organisation=org, name="Ravi", attributes={"city": "Pune"})
    response = admin_client_for(configurer).post(
        f"{ADMIN}{group.pk}/refresh/", HTTP_HX_REQUEST="true"
    )
    fragment = response.content.decode()
    assert response.status_code == 200 and "<html" not in fragment
    assert 'role="status">Refreshed: 1 member(s)' in fragment
    assert 'id="ag-members" class="module ag-members" hx-swap-oob="true"' in fragment
    assert "Ravi" in fragment


def test_refresh_now_is_for_configurers_of_the_group(
    admin_client_for, member_care, other_configurer, org
):
    group = audience_group_create(
        organisation=org, name="Pune", kind="filter",
        filter={"conditions": [{"field": "attributes.city", "op": "eq", "value": "Pune"}]},
    )  # fmt: skip
    assert admin_client_for(member_care).post(f"{ADMIN}{group.pk}/refresh/").status_code == 403
    assert admin_client_for(other_configurer).post(f"{ADMIN}{group.pk}/refresh/").status_code == 404
    assert AudienceGroup.objects.get(pk=group.pk).refreshed_at == group.refreshed_at


def test_a_merge_including_itself_is_refused_at_the_picker(admin_client_for, configurer, org):
    one, two = AudienceGroupFactory(organisation=org), AudienceGroupFactory(organisation=org)
    merged = AudienceGroupFactory(organisation=org, name="Both", kind="merge",
                                  sources=[one.pk, two.pk])  # fmt: skip
    client = admin_client_for(configurer)
    form = client.get(f"{ADMIN}{merged.pk}/change/").content.decode()
    assert f'value="{one.pk}"' in form and f'name="sources" value="{merged.pk}"' not in form
    page = client.post(
        f"{ADMIN}{merged.pk}/change/", {"name": "Both", "sources": [merged.pk, one.pk]}
    ).content.decode()
    assert 'id="id_sources_error"' in page and "&#x27;Both&#x27; cannot include itself." in page
    assert '<a href="#id_sources">Groups to merge</a>' in page


def test_a_merge_loop_is_refused_at_the_picker(admin_client_for, configurer, org):
    one, two, three = (AudienceGroupFactory(organisation=org, name=n) for n in "ABC")
    inner = AudienceGroupFactory(organisation=org, name="Inner", kind="merge",
                                 sources=[one.pk, two.pk])  # fmt: skip
    AudienceGroupFactory(organisation=org, name="Outer", kind="merge",
                         sources=[inner.pk, three.pk])  # fmt: skip
    outer = AudienceGroup.objects.get(name="Outer")
    page = (
        admin_client_for(configurer)
        .post(f"{ADMIN}{inner.pk}/change/", {"name": "Inner", "sources": [one.pk, outer.pk]})
        .content.decode()
    )
    assert "&#x27;Outer&#x27; already includes &#x27;Inner&#x27; (Outer → Inner)" in page


def test_editing_a_filter_group_opens_its_rows_and_recomputes_on_save(
    admin_client_for, configurer, org, fuel
):
    customer = CustomerFactory(organisation=org)
    achieved(fuel, customer, period_now(fuel).ordinal, value=150)
    group = audience_group_create(
        organisation=org, name="Gold", kind="filter",
        filter={"conditions": [{"target": "Gold", "achieved": True, "min_value": 500}]},
    )  # fmt: skip
    client = admin_client_for(configurer)
    page = client.get(f"{ADMIN}{group.pk}/change/").content.decode()
    assert f'<option value="{fuel.pk}" selected>Gold</option>' in page
    assert 'name="cond-0-min_value" value="500"' in page
    assert 'name="use_json" id="id_use_json" checked' not in page
    response = client.post(
        f"{ADMIN}{group.pk}/change/",
        {"name": "Gold", **rows(target_row(fuel, min_value="100"))},
        follow=True,
    )
    group.refresh_from_db()
    assert group.filter["conditions"][0]["min_value"] == 100
    assert group.member_count == 1
    assert "“Gold” has 1 member(s)." in response.content.decode()


def test_a_filter_the_rows_cannot_show_opens_as_json(admin_client_for, configurer, org):
    group = audience_group_create(
        organisation=org, name="Cities", kind="filter",
        filter={"conditions": [{"field": "attributes.city", "op": "in",
                                "value": ["Pune, West", "Goa"]}]},
    )  # fmt: skip
    page = admin_client_for(configurer).get(f"{ADMIN}{group.pk}/change/").content.decode()
    assert 'name="use_json" id="id_use_json" checked' in page
    assert "This filter uses conditions the rows below cannot show" in page
    assert "&quot;Pune, West&quot;" in page


# --- the builder's rows (htmx fragments) -------------------------------------------------------


def test_add_condition_answers_the_next_row_and_the_new_total(admin_client_for, configurer, fuel):
    fragment = (
        admin_client_for(configurer)
        .get(f"{ADMIN}condition/", {"cond-TOTAL_FORMS": "2"})
        .content.decode()
    )
    assert 'name="cond-2-target"' in fragment and 'name="cond-1-target"' not in fragment
    assert (
        '<input type="hidden" name="cond-TOTAL_FORMS" id="id_cond-TOTAL_FORMS" value="3" '
        'hx-swap-oob="true">'
    ) in fragment
    assert f'<option value="{fuel.pk}">Gold</option>' in fragment


def test_choosing_a_target_offers_its_named_cycles(admin_client_for, configurer, fuel):
    fragment = (
        admin_client_for(configurer)
        .get(
            f"{ADMIN}condition/",
            {"index": "0", "cond-0-kind": "target", "cond-0-target": str(fuel.pk)},
        )
        .content.decode()
    )
    first = Period.objects.filter(target_group=fuel.target_group).order_by("ordinal").first()
    assert f'<option value="{first.name}">{first.name} (' in fragment
    assert '<option value="current">the current cycle</option>' in fragment
    assert "cond-TOTAL_FORMS" not in fragment


def test_a_date_field_row_keeps_its_date_and_a_stored_one_shows_in_the_date_picker(
    admin_client_for, configurer, org
):
    data = {"name": "Joined this year", "kind": "filter",
            **rows({"kind": "customer", "field": "joined_on", "op": "gte", "value": "",
                    "value_date": "2026-01-01"})}  # fmt: skip
    client = admin_client_for(configurer)
    assert client.post(f"{ADMIN}add/", data).status_code == 302
    group = AudienceGroup.objects.get(name="Joined this year")
    assert group.filter == {
        "conditions": [{"field": "joined_on", "op": "gte", "value": "2026-01-01"}]
    }
    page = client.get(f"{ADMIN}{group.pk}/change/").content.decode()
    assert 'type="date" name="cond-0-value_date" value="2026-01-01"' in page


def test_the_rows_are_for_configurers_and_bad_numbers_are_refused(
    admin_client_for, configurer, member_care
):
    assert admin_client_for(member_care).get(f"{ADMIN}condition/").status_code == 403
    client = admin_client_for(configurer)
    assert client.get(f"{ADMIN}condition/", {"cond-TOTAL_FORMS": "x"}).status_code == 400
    assert client.get(f"{ADMIN}condition/", {"index": "100000"}).status_code == 400


def test_the_rows_of_another_organisations_group_are_not_found(
    admin_client_for, other_configurer, org
):
    group = AudienceGroupFactory(organisation=org)
    response = admin_client_for(other_configurer).get(
        f"{ADMIN}condition/", {"cond-TOTAL_FORMS": "0", "group": str(group.pk)}
    )
    assert response.status_code == 404


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_configurer_builds_a_filter_group_and_refreshes_it(
    live_server, chromium_page, save_screenshot, org, configurer, fuel
):
    pune = CustomerFactory(organisation=org, name="Priya Pune", attributes={"city": "Pune"})
    mohan = CustomerFactory(organisation=org, name="Mohan Mumbai", attributes={"city": "Mumbai"})
    achieved(fuel, pune, period_now(fuel).ordinal, value=150)
    page = chromium_page()
    e2e.log_in(page, live_server.url, "alice", f"{ADMIN}add/")
    expect(page.get_by_role("button", name="+ Add condition")).to_be_hidden()  # no kind yet
    e2e.axe_check(page, "a11y-audience-group-add")

    page.get_by_label("Name", exact=True).fill("Pune achievers")
    page.get_by_label("Filter over customers and target results").check()
    expect(page.get_by_label("Customers file (CSV)")).to_be_hidden()
    first = page.locator("#ag-cond-0")
    first.get_by_label("target", exact=True).select_option(label="Gold")
    named = Period.objects.filter(target_group=fuel.target_group).order_by("ordinal").first()
    expect(first.get_by_label("in", exact=True).locator("option", has_text=named.name)).to_have_count(1)  # fmt: skip
    first.get_by_label("in", exact=True).select_option(label="the current cycle")
    first.get_by_label("with at least").fill("100")

    page.get_by_role("button", name="+ Add condition").click()
    second = page.locator("#ag-cond-1")
    second.get_by_label("Customers by").select_option(label="a customer field")
    expect(second.get_by_label("target", exact=True)).to_be_hidden()
    second.get_by_label("field", exact=True).select_option(label="An attribute…")
    expect(second.get_by_label("attribute name")).to_be_visible()
    second.get_by_label("attribute name").fill("city")
    second.get_by_label("value", exact=True).fill("Pune")
    save_screenshot(page, "audience-01-filter-builder")

    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("“Pune achievers” has 1 member(s).")
    expect(page.locator("#ag-members")).to_contain_text("Priya Pune")
    expect(page.locator("#ag-members")).not_to_contain_text("Mohan Mumbai")
    group = AudienceGroup.objects.get(name="Pune achievers")
    assert group.filter == {"conditions": [
        {"target": fuel.pk, "achieved": True, "min_value": 100, "cycle": "current"},
        {"field": "attributes.city", "op": "eq", "value": "Pune"},
    ]}  # fmt: skip

    Customer.objects.filter(pk=mohan.pk).update(attributes={"city": "Pune"})  # he moved
    achieved(fuel, mohan, period_now(fuel).ordinal, value=300)
    page.get_by_role("button", name="Refresh now").click()
    expect(page.locator(".ag-outcome")).to_have_text("Refreshed: 2 member(s) (1 added, 0 removed).")
    expect(page.locator("#ag-member-count")).to_have_text("2")
    expect(page.locator("#ag-members")).to_contain_text("Mohan Mumbai")
    save_screenshot(page, "audience-02-members-refreshed")
    e2e.axe_check(page, "a11y-audience-group-change")


@pytest.mark.django_db(transaction=True)
def test_a_refused_group_lists_every_error_and_each_link_focuses_its_input(
    live_server, chromium_page, save_screenshot, org, configurer, fuel
):
    page = chromium_page()
    e2e.log_in(page, live_server.url, "alice", f"{ADMIN}add/")
    page.get_by_label("Filter over customers and target results").check()
    page.locator("#ag-cond-0").get_by_label("when").select_option(label="in the last … days")
    page.get_by_role("button", name="Save", exact=True).click()
    summary = page.locator("#ag-summary")
    expect(summary).to_be_focused()
    expect(summary.locator("li")).to_have_count(3)
    e2e.axe_check(page, "a11y-audience-group-errors")
    summary.get_by_role("link", name="Condition 1, days").click()
    expect(page.locator("#id_cond-0-last_days")).to_be_focused()
    summary.get_by_role("link", name="Name").click()
    expect(page.locator("#id_name")).to_be_focused()
    save_screenshot(page, "audience-03-every-error")
