"""The activities endpoint: contract shape, clear refusals that write nothing, roles, reads."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from enrolment.models import Customer
from evaluation.models import Activity, TargetEvent
from tests.evaluation.conftest import txn

pytestmark = pytest.mark.django_db
URL = "/api/v1/activities/"


def test_one_object_or_a_list(post, stores):
    assert post(txn(1, "2026-03-04T11:00:00+00:00", 120)) == {
        "accepted": 1,
        "duplicates": 0,
        "ids": ["txn-1"],
        "duplicate_ids": [],
    }
    body = post(txn(2, "2026-03-04T11:00:00+00:00", 1), txn(3, "2026-03-04T11:00:00+00:00", 2))
    assert body["accepted"] == 2 and body["ids"] == ["txn-2", "txn-3"]


def test_every_activity_type_is_stored_with_its_fields(post, stores):
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 120, bill="B1", discount=20, net=100, extended_fields={"tax": 10},
            lines=[{"sku": "P-1", "category": "petrol", "quantity": 5, "gross": 60, "net": 50, "extended_fields": {"metal": "gold"}}]),
        {"id": "r-1", "type": "return", "customer": {"mobile": "9000000001"}, "occurred_at": "2026-03-05T11:00:00+00:00", "bill_number": "B1", "gross": 60, "net": 50},
        {"id": "e-1", "type": "event", "customer": {"email": "A@Example.com "}, "occurred_at": "2026-03-05T11:00:00+00:00", "name": "AddToCart", "attributes": {"price": 3000}},
        {"id": "c-1", "type": "customer_event", "customer": {"external_id": "X1"}, "occurred_at": "2026-03-05T11:00:00+00:00", "name": "points_redemption"},
        {"id": "p-1", "type": "points", "customer": {"mobile": "+91 90000 00001"}, "occurred_at": "2026-03-05T11:00:00+00:00", "regular": 10, "promotional": 5},
    )  # fmt: skip
    acts = {a.external_id: a for a in Activity.objects.select_related("customer")}
    assert acts["txn-1"].payload["line_items"][0]["extended_fields"] == {"metal": "gold"}
    assert acts["txn-1"].bill_number == "B1" and Decimal(acts["txn-1"].payload["net"]) == 100
    assert acts["e-1"].customer.email == "a@example.com"
    assert acts["p-1"].customer.mobile == "919000000001"
    assert acts["c-1"].name == "points_redemption"
    assert Customer.objects.count() == 4


def test_net_and_gross_are_derived_from_the_line_items_when_missing(post, stores):
    post(
        txn(
            1,
            "2026-03-04T11:00:00+00:00",
            lines=[{"sku": "a", "gross": 60, "net": 50}, {"sku": "b", "gross": 40, "net": 35}],
        )
    )
    payload = Activity.objects.get().payload
    assert Decimal(payload["gross"]) == 100 and Decimal(payload["net"]) == 85


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at"),
        ({"occurred_at": "2999-01-01T10:00:00Z"}, "occurred_at"),
        ({"occurred_at": "1990-01-01T10:00:00Z"}, "occurred_at"),
        ({"gross": "lots"}, "gross"),
        ({"gross": 1e30}, "gross"),
        ({"customer": {}}, "customer"),
        ({"customer": {"mobile": "abc"}}, "customer"),
        ({"type": "teleport"}, "type"),
        ({"store": "NOWHERE"}, "store"),
    ],
)
def test_a_bad_item_refuses_the_whole_batch_and_writes_nothing(post, stores, bad, field):
    good = txn(1, "2026-03-04T11:00:00+00:00", 10)
    wrong = {**txn(2, "2026-03-04T11:00:00+00:00", 10), **bad}
    body = post(good, wrong, expect=400)
    assert field in str(body)
    assert not Activity.objects.exists() and not Customer.objects.exists()


def test_event_needs_a_name_and_customer_events_a_known_one(post):
    body = post(
        {
            "id": "c-1",
            "type": "customer_event",
            "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-04T11:00:00Z",
            "name": "dancing",
        },
        expect=400,
    )
    assert "Unknown customer-level event" in str(body)
    body = post(
        {
            "id": "e-1",
            "type": "event",
            "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-04T11:00:00Z",
        },
        expect=400,
    )
    assert "needs its name" in str(body)


def test_more_than_1000_is_refused(post):
    items = [txn(i, "2026-03-04T11:00:00+00:00", 1) for i in range(1001)]
    body = post(*items, expect=400)
    assert "At most 1000" in body["detail"]
    assert not Activity.objects.exists()


def test_unknown_customers_are_refused_when_the_org_forbids_creating_them(org, post, stores):
    org.auto_create_customers = False
    org.save()
    Customer.objects.create(organisation=org, mobile="9000000001")
    body = post(
        txn(1, "2026-03-04T11:00:00+00:00", 10),
        txn(2, "2026-03-04T11:00:00+00:00", 10, mobile="9000000099"),
        expect=400,
    )
    assert "Unknown customer" in str(body)
    assert not Activity.objects.exists() and Customer.objects.count() == 1


def test_member_care_cannot_post_activities(api, member_care):
    response = api(member_care).post(URL, txn(1, "2026-03-04T11:00:00+00:00", 10), format="json")
    assert response.status_code == 403
    assert (
        api().post(URL, txn(1, "2026-03-04T11:00:00+00:00", 10), format="json").status_code == 401
    )


def test_idempotency_keys_are_per_organisation(api, post, other_integration, stores):
    post(txn(1, "2026-03-04T11:00:00+00:00", 10))
    response = api(other_integration).post(
        URL, txn(1, "2026-03-04T11:00:00+00:00", 10, store=""), format="json"
    )
    assert response.json()["accepted"] == 1
    assert Activity.objects.count() == 2


def test_customer_milestones_read_shows_cycles_statuses_and_sub_targets(
    api, member_care, make_group, post, track, stores
):
    make_group(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": Decimal(1000),
                "sub_targets": [{"name": "ABC1", "criteria": "percentage", "value": Decimal(30)}],
            }
        ]
    )
    post(txn(1, "2026-03-04T11:00:00+00:00", 400), txn(2, "2026-04-04T11:00:00+00:00", 50))
    track()
    customer = Customer.objects.get()
    from evaluation.selectors import customer_milestones

    entries = customer_milestones(customer=customer, now=datetime(2026, 4, 10, tzinfo=UTC))
    (entry,) = entries
    assert (entry["target"], entry["kpi"], entry["cycle_type"]) == (
        "Spend",
        "gross_sales",
        "fixed_calendar",
    )
    assert (str(entry["start"]), str(entry["end"])) == ("2026-01-01", "2026-12-31")
    statuses = [c["status"] for c in entry["cycles"]]
    assert (
        statuses[:3] == ["completed", "completed", "completed"]
        and statuses[3] == "ongoing"
        and statuses[4:] == ["upcoming"] * 8
    )
    march = entry["cycles"][2]
    assert (march["name"], march["target"], march["achieved"]) == ("Spend P3", 1000, 400)
    assert march["sub_targets"][0]["value"] == 300 and march["sub_targets"][0][
        "achieved_at"
    ] == datetime(2026, 3, 4, 11, tzinfo=UTC)
    assert entry["cycles"][3]["sub_targets"][0]["achieved_at"] is None
    body = api(member_care).get(f"/api/v1/customers/{customer.id}/milestones/").json()
    assert (
        body[0]["target_id"]
        and body[0]["cycles"][2]["achieved"] == 400.0
        and body[0]["cycles"][2]["sub_targets"][0]["name"] == "ABC1"
    )


def test_another_orgs_customer_answers_404(api, other_configurer, post, stores):
    post(txn(1, "2026-03-04T11:00:00+00:00", 10))
    customer = Customer.objects.get()
    assert (
        api(other_configurer).get(f"/api/v1/customers/{customer.id}/milestones/").status_code == 404
    )


def test_target_events_are_listed_and_filtered(
    api, member_care, other_configurer, make_group, post, track, stores
):
    group = make_group(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": Decimal(100),
                "sub_targets": [{"name": "Half", "criteria": "percentage", "value": Decimal(50)}],
            }
        ]
    )
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 400),
        txn(2, "2026-03-04T11:00:00+00:00", 400, mobile="9000000002"),
    )
    track()
    client = api(member_care)
    events = client.get("/api/v1/target-events/").json()
    assert len(events) == 4
    achieved = client.get("/api/v1/target-events/?type=target_achieved").json()
    assert {e["type"] for e in achieved} == {"target_achieved"} and len(achieved) == 2
    first = Customer.objects.get(mobile="9000000001")
    mine = client.get(f"/api/v1/target-events/?customer={first.id}&type=sub_target_achieved").json()
    assert len(mine) == 1
    assert (
        mine[0]["milestone_triggers"] == ["Half"]
        and mine[0]["milestone_value_defined"] == 50.0
        and mine[0]["period"] == "Spend P3"
    )
    assert (
        mine[0]["target"] == group.targets.get().id and mine[0]["is_target_achieved_event"] is False
    )
    assert api(other_configurer).get("/api/v1/target-events/").json() == []
    assert TargetEvent.objects.count() == 4
