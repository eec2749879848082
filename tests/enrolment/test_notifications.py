"""The targetLoyaltyCustomerEnrollment notification (reference 004), field by field."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from enrolment.models import Customer, EnrolmentNotification

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(make_group):
    return make_group(
        "Fuel B2B",
        per_customer=True,
        targets=[
            {
                "name": "Litres",
                "kpi": "gross_sales",
                "value": Decimal(100),
                "sub_targets": [
                    {"name": "Halfway", "criteria": "percentage", "value": Decimal(50)},
                    {"name": "First 10", "criteria": "absolute", "value": Decimal(10)},
                ],
            }
        ],
    )


def expected_period(group):
    today = timezone.now().astimezone(group.organisation.tzinfo).date()
    periods = list(group.periods.order_by("ordinal"))
    current = next((p for p in periods if p.start <= today <= p.end), None)
    return current or next((p for p in periods if p.start > today), None) or periods[-1]


def test_every_field_of_the_payload_is_filled(upload, group):
    status = upload(group, "mobile,P1,P2,P3\n9000000001,150,150,150\n")
    assert status["notifications"] == 1
    note = EnrolmentNotification.objects.get()
    customer = Customer.objects.get()
    target = group.targets.get()
    period = expected_period(group)
    assert note.payload["eventName"] == "targetLoyaltyCustomerEnrollment"
    data = note.payload["data"]
    assert data["targetGroupId"] == group.id
    assert data["customerIdentifiers"] == {
        "customerId": customer.id,
        "mobile": "9000000001",
        "email": None,
        "externalId": None,
    }
    assert data["targetId"] == target.id
    assert data["targetPeriodId"] == period.id
    # sub-targets in the milestone's order (by value), then the target itself
    assert data["milestoneDetails"] == [
        {
            "milestoneName": "First 10",
            "criteria": "absolute",
            "value": "10",
            "thresholdValue": "10",
        },
        {
            "milestoneName": "Halfway",
            "criteria": "percentage",
            "value": "50",
            "thresholdValue": "75",
        },
        {"milestoneName": "Litres", "criteria": "target", "value": "150", "thresholdValue": "150"},
    ]
    assert data["eventId"] == note.id
    assert data["targetGroupName"] == "Fuel B2B"
    assert data["source"] == "custom_list"
    assert data["targetCycleStartDate"] == "2026-01-01"
    assert data["targetName"] == "Litres"
    assert data["targetPeriodName"] == period.name
    assert data["targetPeriodStartDate"] == period.start.isoformat()
    assert data["defaultTargetValue"] == "100"
    assert data["targetValue"] == "150"
    schema_fields = {
        "targetGroupId", "customerIdentifiers", "targetId", "targetPeriodId", "milestoneDetails",
        "eventId", "targetGroupName", "source", "targetCycleStartDate", "targetName",
        "targetPeriodName", "targetPeriodStartDate", "defaultTargetValue",
    }  # fmt: skip
    assert schema_fields <= set(data)
    assert all(data[f] not in (None, "", []) for f in schema_fields)


def test_a_blank_cell_notifies_the_default_value(upload, group):
    upload(group, "mobile,P1,P2,P3\n9000000001,,,\n")
    data = EnrolmentNotification.objects.get().payload["data"]
    assert data["targetValue"] == "100"
    assert data["milestoneDetails"][1]["thresholdValue"] == "50"


def test_a_reupload_never_notifies_twice(upload, group):
    upload(group, "mobile,P1\n9000000001,150\n")
    second = upload(group, "mobile,P1\n9000000001,175\n9000000002,1\n")
    assert second["notifications"] == 1
    assert EnrolmentNotification.objects.count() == 2
    assert sorted(
        n.payload["data"]["customerIdentifiers"]["mobile"]
        for n in EnrolmentNotification.objects.all()
    ) == ["9000000001", "9000000002"]


def test_send_trigger_off_writes_no_notification(upload, group):
    status = upload(group, "mobile,P1\n9000000001,150\n", send_trigger=False)
    assert status["status"] == "done" and status["notifications"] == 0
    assert not EnrolmentNotification.objects.exists()


def test_customers_enrolled_is_sent_after_commit_with_the_new_customers(
    upload, group, enrolled_signals
):
    upload(group, "mobile,P1\n9000000001,1\n9000000002,2\n")
    upload(group, "mobile,P1\n9000000001,1\n9000000003,3\n")
    ids = dict(Customer.objects.values_list("mobile", "id"))
    assert enrolled_signals == [
        (group.id, sorted([ids["9000000001"], ids["9000000002"]]), "custom_list"),
        (group.id, [ids["9000000003"]], "custom_list"),
    ]


def test_cyclic_milestones_notify_the_first_cycle(upload, make_group):
    group = make_group(
        "Cyclic B2B",
        per_customer=True,
        cycle={
            "type": "cyclic",
            "frequency": "days",
            "days": 30,
            "count": 2,
            "start": date(2026, 2, 1),
        },
    )
    upload(group, "mobile,P1\n9000000001,7\n")
    data = EnrolmentNotification.objects.get().payload["data"]
    assert (data["targetPeriodId"], data["targetPeriodName"]) == (1, "P1")
    assert data["targetPeriodStartDate"] == data["targetCycleStartDate"] == "2026-02-01"
    assert data["targetValue"] == "7"


def test_identifiers_and_names_with_quotes_come_out_as_written(upload, make_group):
    """The SQL path builds the payload as JSON text: quotes and backslashes stay escaped."""
    group = make_group(
        'Say "hi" \\ B2B',
        per_customer=True,
        targets=[{"name": 'The "big" one', "kpi": "quantity", "value": Decimal(10)}],
    )
    body = 'email,P1,P2,P3\n"o""neil\\x@example.com",12.5,12.5,12.5\n'
    status = upload(group, body, identifier_type="email")
    assert status["status"] == "done", status
    data = EnrolmentNotification.objects.get().payload["data"]
    assert data["customerIdentifiers"]["email"] == 'o"neil\\x@example.com'
    assert data["targetGroupName"] == 'Say "hi" \\ B2B'
    assert data["targetName"] == 'The "big" one'
    assert data["targetValue"] == "12.5"
    assert data["milestoneDetails"][-1]["milestoneName"] == 'The "big" one'
