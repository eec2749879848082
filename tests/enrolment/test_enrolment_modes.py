"""All customers, audience groups (list, filter incl. the fuel-brand example, merge), and
enrolling / un-enrolling one customer through the API."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from enrolment import audiences, tasks
from enrolment.models import AudienceGroup, Customer, Enrolment, EnrolmentNotification
from enrolment.services import auto_enrol_on_activity
from evaluation.models import Progress
from milestones_site.schedules import PERIODIC_TASKS
from tests.factories import TillFactory

pytestmark = pytest.mark.django_db


def customers(org, *mobiles, **fields):
    return [Customer.objects.create(organisation=org, mobile=m, **fields) for m in mobiles]


def active_ids(group):
    return set(
        Enrolment.objects.filter(target_group=group, is_active=True).values_list(
            "customer_id", flat=True
        )
    )


def achieve(target, customer, achieved, *, when=None, ordinal=1):
    period = target.target_group.periods.filter(ordinal=ordinal).first()
    start = period.starts_at if period else datetime(2026, 1, 1, tzinfo=UTC)
    reached = achieved >= target.value
    return Progress.objects.update_or_create(
        target=target,
        customer=customer,
        cycle_ordinal=ordinal,
        defaults={
            "organisation_id": target.organisation_id,
            "period": period,
            "cycle_start": start,
            "cycle_end": period.ends_at if period else None,
            "target_value": target.value,
            "achieved": Decimal(achieved),
            "achieved_at": (when or timezone.now()) if reached else None,
        },
    )[0]


# --- all customers -----------------------------------------------------------------------------


def test_all_customers_enrols_a_loyalty_customer_on_first_activity(
    make_group, org, enrolled_signals, django_capture_on_commit_callbacks
):
    group = make_group("Everyone")
    member, guest = customers(org, "9000000001") + customers(
        org, "9000000002", is_loyalty_member=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert auto_enrol_on_activity(customer=member, target_groups=[group]) == [group.id]
        assert auto_enrol_on_activity(customer=guest, target_groups=[group]) == []
        assert auto_enrol_on_activity(customer=member, target_groups=[group]) == [group.id]
    assert active_ids(group) == {member.id}
    assert enrolled_signals == [(group.id, [member.id], "all_customers")]
    # The enrolment trigger belongs to explicit enrolments (custom list, audience, API): an
    # 'all customers' milestone enrols on first activity without a notification.
    assert not EnrolmentNotification.objects.exists()


# --- audience groups ---------------------------------------------------------------------------


def test_a_list_audience_group_enrols_its_members(api, configurer, make_group, org):
    a, b, _ = customers(org, "9000000001", "9000000002", "9000000003")
    response = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "VIPs", "kind": "list", "customers": [{"mobile": "9000000001"}, {"mobile": "+9000000002"}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    audience = response.json()
    assert audience["member_count"] == 2
    group = make_group("VIP fuel", mode="audience_group")
    assert active_ids(group) == set()
    response = api(configurer).patch(
        f"/api/v1/target-groups/{group.id}/",
        {"enrolment": {"audience_group": audience["id"]}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert active_ids(group) == {a.id, b.id}
    body = api(configurer).get(f"/api/v1/target-groups/{group.id}/").json()
    assert body["enrolment"] == {
        "mode": "audience_group",
        "audience_group": audience["id"],
        "enrolled": 2,
    }


def test_a_list_group_from_csv_reports_bad_rows_and_creates_nothing(api, configurer, org, csv_file):
    customers(org, "9000000001")
    response = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "CSV list", "kind": "list", "identifier_type": "mobile",
         "file": csv_file("mobile,name\n9000000001,A\n9000000009,B\nxx,C\n9000000001,D\n")},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 3, "column": "mobile", "message": "No customer with mobile 9000000009 in this organisation."},
        {"row": 4, "column": "mobile", "message": "'xx' is not a mobile number: it has no digits."},
        {"row": 5, "column": "mobile",
         "message": "The customer with mobile 9000000001 is already in row 2: each customer may appear once in a file."},
    ]  # fmt: skip
    assert not AudienceGroup.objects.exists()


def test_the_audience_sample_csv_downloads(api, configurer):
    response = api(configurer).get("/api/v1/audience-groups/sample-csv/?identifier_type=email")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines()[0] == "email"


def test_an_unknown_audience_group_refuses_the_milestone(api, configurer, other_org):
    theirs = AudienceGroup.objects.create(organisation=other_org, name="Theirs", kind="list")
    TillFactory(organisation=configurer.organisation)
    response = api(configurer).post(
        "/api/v1/target-groups/",
        {"name": "Fuel X", "start": "2026-01-01", "end": "2026-12-31", "till_code": "T1",
         "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 1},
         "enrolment": {"mode": "audience_group", "audience_group": theirs.id},
         "targets": [{"name": "T X", "kpi": "quantity", "value": 1}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["enrolment"] == [f"Unknown audience group {theirs.id!r}."]


def test_fuel_brand_targets_enrol_those_who_achieved_the_previous_one(make_group, org, configurer):
    """Reference 001: all customers in Target 1; Target 2 for those who achieved Target 1;
    Target 3 for those who achieved Target 2."""
    g1 = make_group(
        "Fuel 1", targets=[{"name": "Target 1", "kpi": "quantity", "value": Decimal(100)}]
    )
    a, b, c = customers(org, "9000000001", "9000000002", "9000000003")
    t1 = g1.targets.get()
    achieve(t1, a, 120)
    achieve(t1, b, 50)
    achieved_t1 = audiences.audience_group_create(
        organisation=org, name="Achieved Target 1", kind="filter", user=configurer,
        filter={"conditions": [{"target": "Target 1", "achieved": True, "min_value": 100}]},
    )  # fmt: skip
    g2 = make_group(
        "Fuel 2",
        mode="audience_group",
        enrolment={"mode": "audience_group", "audience_group": achieved_t1.id},
        targets=[{"name": "Target 2", "kpi": "quantity", "value": Decimal(200)}],
    )
    achieved_t2 = audiences.audience_group_create(
        organisation=org, name="Achieved Target 2", kind="filter",
        filter={"conditions": [{"target": "Target 2", "achieved": True}]},
    )  # fmt: skip
    g3 = make_group(
        "Fuel 3",
        enrolment={"mode": "audience_group", "audience_group": achieved_t2.id},
        targets=[{"name": "Target 3", "kpi": "quantity", "value": Decimal(300)}],
    )
    assert active_ids(g2) == {a.id}
    assert active_ids(g3) == set()
    # B reaches Target 1, A reaches Target 2: the achievement hook re-evaluates the filters
    achieve(t1, b, 100)
    assert audiences.audience_groups_refresh_for_target(target=t1) == [achieved_t1.id]
    assert active_ids(g2) == {a.id, b.id}
    t2 = g2.targets.get()
    achieve(t2, a, 250)
    tasks.refresh_audience_groups_for_target(t2.id)
    assert active_ids(g3) == {a.id}
    assert c.id not in active_ids(g2) | active_ids(g3)


def test_a_filter_reads_customer_fields_attributes_and_time_windows(make_group, org):
    g1 = make_group(
        "Fuel 1", targets=[{"name": "Target 1", "kpi": "quantity", "value": Decimal(100)}]
    )
    t1 = g1.targets.get()
    pune, delhi, old = (
        Customer.objects.create(organisation=org, mobile="9000000001", attributes={"city": "Pune"}),
        Customer.objects.create(
            organisation=org, mobile="9000000002", attributes={"city": "Delhi"}
        ),
        Customer.objects.create(organisation=org, mobile="9000000003", attributes={"city": "Pune"}),
    )
    achieve(t1, pune, 150)
    achieve(t1, delhi, 150)
    achieve(t1, old, 150, when=timezone.now() - timedelta(days=60))
    group = audiences.audience_group_create(
        organisation=org, name="Recent Pune achievers", kind="filter",
        filter={"conditions": [{"field": "attributes.city", "op": "eq", "value": "Pune"},
                               {"target": t1.id, "achieved": True, "cycle": "P1", "last_days": 30}]},
    )  # fmt: skip
    assert set(group.memberships.values_list("customer_id", flat=True)) == {pune.id}
    with pytest.raises(ValidationError) as refused:
        audiences.audience_group_create(
            organisation=org, name="Bad", kind="filter",
            filter={"conditions": [{"field": "shoe_size", "op": "eq", "value": 1},
                                   {"target": "No such target", "achieved": True}]},
        )  # fmt: skip
    assert refused.value.message_dict["filter"] == [
        "Condition 1: unknown field 'shoe_size'; use name, mobile, email, external_id, joined_on, "
        "is_loyalty_member, created_at or attributes.<key>.",
        "Condition 2: no target named 'No such target' in this organisation.",
    ]


def test_a_merge_is_the_union_and_follows_its_sources(api, configurer, make_group, org):
    a, b, c = customers(org, "9000000001", "9000000002", "9000000003")
    first = audiences.audience_group_create(
        organisation=org, name="One", kind="list", customer_ids=[a.id]
    )
    second = audiences.audience_group_create(
        organisation=org, name="Two", kind="list", customer_ids=[a.id, b.id]
    )
    response = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "One+Two", "kind": "merge", "sources": [first.id, second.id]},
        format="json",
    )
    assert response.status_code == 201, response.content
    merged = AudienceGroup.objects.get(pk=response.json()["id"])
    assert merged.member_count == 2
    group = make_group(
        "Merged fuel", enrolment={"mode": "audience_group", "audience_group": merged.id}
    )
    assert active_ids(group) == {a.id, b.id}
    # "upload more" into a source: the merge and the milestone follow
    response = api(configurer).post(
        f"/api/v1/audience-groups/{first.id}/customers/",
        {"customers": [{"mobile": "9000000003"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert active_ids(group) == {a.id, b.id, c.id}
    bad = api(configurer).post(
        "/api/v1/audience-groups/",
        {"name": "Solo", "kind": "merge", "sources": [first.id]},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["sources"] == ["A merge needs at least two existing audience groups."]


def test_customers_who_leave_a_filter_are_unenrolled_but_manual_enrolments_stay(
    api, configurer, make_group, org
):
    g1 = make_group(
        "Fuel 1", targets=[{"name": "Target 1", "kpi": "quantity", "value": Decimal(100)}]
    )
    t1 = g1.targets.get()
    a, b = customers(org, "9000000001", "9000000002")
    progress = achieve(t1, a, 150)
    audience = audiences.audience_group_create(
        organisation=org, name="Achievers", kind="filter",
        filter={"conditions": [{"target": "Target 1", "achieved": True}]},
    )  # fmt: skip
    group = make_group(
        "Fuel 2", enrolment={"mode": "audience_group", "audience_group": audience.id}
    )
    manual = api(configurer).post(
        f"/api/v1/target-groups/{group.id}/enrolments/",
        {"customers": [{"mobile": "9000000002"}]},
        format="json",
    )
    assert manual.status_code == 200, manual.content
    assert manual.json()["customer_ids"] == [b.id]
    assert active_ids(group) == {a.id, b.id}
    progress.delete()  # e.g. a reprocess took the achievement back
    tasks.refresh_filter_audience_groups()
    assert active_ids(group) == {b.id}


def test_the_beat_schedule_declares_the_filter_refresh():
    assert PERIODIC_TASKS["refresh-filter-audience-groups"][0] == (
        "enrolment.tasks.refresh_filter_audience_groups"
    )


# --- single customers through the API ----------------------------------------------------------


def test_enrol_and_unenrol_one_customer(api, integration, make_group, org, enrolled_signals,
                                        django_capture_on_commit_callbacks):  # fmt: skip
    group = make_group("Everyone")
    client = api(integration)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/target-groups/{group.id}/enrolments/",
            {"customers": [{"mobile": "9000000001"}, {"email": "x@example.com"}]},
            format="json",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["enrolled"], body["created_customers"]) == (2, 2)
    assert enrolled_signals == [(group.id, sorted(body["customer_ids"]), "api")]
    listed = client.get(f"/api/v1/target-groups/{group.id}/enrolments/").json()
    assert {e["customer"]["mobile"] for e in listed} == {"9000000001", None}
    first = body["customer_ids"][0]
    response = client.delete(f"/api/v1/target-groups/{group.id}/enrolments/{first}/")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert active_ids(group) == {body["customer_ids"][1]}
    again = client.post(
        f"/api/v1/target-groups/{group.id}/enrolments/",
        {"customers": [{"mobile": "9000000001"}]},
        format="json",
    )
    assert again.json()["enrolled"] == 1 and first in active_ids(group)


def test_enrolling_a_malformed_identifier_is_a_400_and_enrols_nobody(api, integration, make_group):
    group = make_group("Everyone")
    response = api(integration).post(
        f"/api/v1/target-groups/{group.id}/enrolments/",
        {"customers": [{"mobile": "9000000001"}, {"mobile": "abc"}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["customers"] == [
        "Item 2: 'abc' is not a mobile number: it has no digits."
    ]
    assert not Enrolment.objects.exists()


def test_member_care_cannot_enrol_and_another_org_gets_404(
    api, member_care, other_configurer, make_group
):
    group = make_group("Everyone")
    url = f"/api/v1/target-groups/{group.id}/enrolments/"
    body = {"customers": [{"mobile": "9000000001"}]}
    assert api(member_care).post(url, body, format="json").status_code == 403
    assert api(other_configurer).post(url, body, format="json").status_code == 404
    listed = api(member_care).get(url)
    assert listed.status_code == 200
    assert listed.json() == []  # the refused enrolment wrote nothing
