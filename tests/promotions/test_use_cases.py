"""Reference 001 use cases 1-6 and reference 004's B2B and milestone-based loyalty examples,
end to end: activity -> tracking -> target event -> promotion -> award."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from enrolment.models import Customer, CustomerTargetValue
from enrolment.services import customer_create, enrolments_add
from evaluation.ingest import activities_ingest
from evaluation.models import TargetEvent
from promotions.messaging import messages_send
from promotions.models import Award, Message
from promotions.selectors import liability_report

from .conftest import close_cycles, pipeline, txn

pytestmark = pytest.mark.django_db

AFTER_MARCH = datetime(2026, 4, 2, tzinfo=UTC)
REACHED = 'currentEvent.targetAchieved("{0}") > currentEvent.targetDefined("{0}")'
IMMEDIATE = " && currentEvent.isTargetAchievedEvent == true"
AT_CYCLE_END = " && currentEvent.isTargetAchievedEvent == false"


def set_switch(org, active: bool):
    org.award_when_target_achieved = active
    org.save()


# --- Use case 1: instant benefit delivery ----------------------------------------------


def test_use_case_1_instant_benefit_is_paid_the_moment_the_target_is_passed(
    org, make_group, promo, post, run, stores
):
    set_switch(org, True)
    make_group("ABC")
    promo(
        REACHED.format("ABC") + IMMEDIATE,
        [{"type": "award_points", "basis": "fixed", "points": 250, "expiry_days": 90}],
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 600))
    run()
    assert not Award.objects.exists()  # 600 of 1000: not yet

    post(txn(2, "2026-03-10T10:00:00+00:00", 600))
    run()
    award = Award.objects.get()
    assert award.event.type == "target_achieved"
    assert award.points == 250 and award.points_type == "regular"
    assert award.awarded_at == datetime(2026, 3, 10, 10, 1, tzinfo=UTC)  # not at the cycle end
    assert award.expires_on == date(2026, 3, 10) + timedelta(days=90)
    assert award.till == stores[1]  # the milestone's till T1
    assert award.period == "ABC P1"

    close_cycles(AFTER_MARCH)
    assert Award.objects.count() == 1


# --- Use case 2: delayed benefits at the end of the cycle -------------------------------


def test_use_case_2_benefit_is_delayed_to_the_end_of_the_cycle(org, make_group, promo, post, run):
    set_switch(org, False)
    make_group("ABC")
    promo(
        REACHED.format("ABC") + AT_CYCLE_END,
        [{"type": "award_points", "basis": "percent_of_achieved", "percent": 5}],
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 700), txn(2, "2026-03-20T10:00:00+00:00", 500))
    run()
    assert not Award.objects.exists()
    assert not TargetEvent.objects.filter(type="target_achieved").exists()

    close_cycles(AFTER_MARCH)
    award = Award.objects.get()
    assert award.event.type == "period_elapsed"
    assert award.points == Decimal(60)  # 5% of 1200


# --- Use case 3: a message to everyone at the end of a cycle ----------------------------


def test_use_case_3_message_to_every_customer_at_the_end_of_the_cycle(
    org, make_group, promo, post, run
):
    set_switch(org, False)
    make_group("ABC")
    promo(
        'currentEvent.targetName.contains("ABC")' + AT_CYCLE_END,
        [
            {
                "type": "send_message",
                "channel": "sms",
                "template": "Hi {customer.name}, {period.name} is over: "
                "you reached {achieved} of {target.value}.",
            }
        ],
    )
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 1200, mobile="9000000001"),
        txn(2, "2026-03-05T10:00:00+00:00", 300, mobile="9000000002"),
    )
    run()
    Customer.objects.filter(mobile="9000000001").update(name="Asha")
    assert not Message.objects.exists()

    close_cycles(AFTER_MARCH)
    sms = {m.recipient: (m.body, m.status) for m in Message.objects.all()}
    assert sms == {
        "9000000001": ("Hi Asha, ABC P1 is over: you reached 1200 of 1000.", "pending"),
        "9000000002": ("Hi there, ABC P1 is over: you reached 300 of 1000.", "pending"),
    }
    assert set(Award.objects.values_list("type", "status")) == {("send_message", "done")}


# --- Use case 4: a message the moment the target is reached ------------------------------


def test_use_case_4_email_is_sent_on_achieving_the_target(org, make_group, promo, post, run):
    set_switch(org, True)
    make_group("ABC")
    promo(
        'currentEvent.targetName.contains("ABC") && ' + REACHED.format("ABC") + IMMEDIATE,
        [
            {
                "type": "send_message",
                "channel": "email",
                "subject": "You did it, {customer.name}",
                "template": "You reached {target.name}: {achieved} of {target.value}.",
            }
        ],
    )
    customer_create(
        organisation=org,
        identifiers={"mobile": "9000000001", "email": "asha@example.com"},
        name="Asha",
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1100))
    run()
    assert messages_send() == 1  # the worker's send_messages task, after commit
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [
        (["asha@example.com"], "You did it, Asha", "You reached ABC: 1100 of 1000.")
    ]
    assert Message.objects.get().status == "sent"
    assert messages_send() == 0  # sent once

    close_cycles(AFTER_MARCH)
    assert Message.objects.count() == 1
    assert len(mail.outbox) == 1


# --- Use case 5: two targets in one promotion --------------------------------------------


def test_use_case_5_a_rule_combining_two_milestones_pays_when_both_are_reached(
    org, make_group, promo, post, run
):
    set_switch(org, True)
    make_group("ABC")
    make_group("XYZ", targets=[{"name": "XYZ", "kpi": "gross_sales", "value": Decimal(2000)}])
    promo(REACHED.format("ABC") + " && " + REACHED.format("XYZ") + IMMEDIATE)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1100))  # ABC passed; XYZ at 1100 of 2000
    run()
    assert TargetEvent.objects.filter(type="target_achieved").count() == 1
    assert not Award.objects.exists()
    post(txn(2, "2026-03-12T10:00:00+00:00", 1000))  # XYZ at 2100: both passed
    run()
    award = Award.objects.select_related("target").get()
    # The rule reads ABC's progress in the cycle of the XYZ event; the event was XYZ's.
    assert award.target.name == "XYZ"
    assert award.event.occurred_at == datetime(2026, 3, 12, 10, tzinfo=UTC)


def test_one_promotion_serving_two_milestones_splits_the_liability_by_milestone(
    org, make_group, promo, post, run
):
    set_switch(org, True)
    abc = make_group("ABC")
    xyz = make_group("XYZ", targets=[{"name": "XYZ", "kpi": "gross_sales", "value": Decimal(2000)}])
    promo(
        '(currentEvent.targetName.contains("ABC") || currentEvent.targetName.contains("XYZ"))'
        + IMMEDIATE,
        [{"type": "award_points", "basis": "percent_of_achieved", "percent": 10}],
        name="Both milestones",
    )
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 1200, mobile="9000000001"),  # ABC and XYZ 1200
        txn(2, "2026-03-05T10:00:00+00:00", 1300, mobile="9000000001"),  # XYZ 2500
        txn(3, "2026-03-06T10:00:00+00:00", 2100, mobile="9000000002"),  # both for #2
    )
    run()
    report = {
        (r["target_group__name"], r["target__name"]): r["total_points"]
        for r in liability_report(organisation_id=org.id)
    }
    # ABC: 10% of 1200 (#1) + 10% of 2100 (#2); XYZ: 10% of 2500 (#1) + 10% of 2100 (#2).
    assert report == {("ABC", "ABC"): Decimal(330), ("XYZ", "XYZ"): Decimal(460)}
    assert set(Award.objects.values_list("target_group_id", flat=True)) == {abc.id, xyz.id}
    assert Award.objects.values("promotion").distinct().count() == 1


# --- Use case 6: sub-target actions ------------------------------------------------------

SUB_70 = [
    {
        "name": "ABC",
        "kpi": "gross_sales",
        "value": Decimal(1000),
        "sub_targets": [{"name": "ABC70", "criteria": "percentage", "value": Decimal(70)}],
    }
]
MESSAGE_70 = [
    {
        "type": "send_message",
        "channel": "sms",
        "template": "{sub_target.name}: {achieved} of {target.value}, {gap} to go "
        "(the 70% mark is {sub_target.value}).",
    }
]


def test_use_case_6_message_at_70_percent_of_the_target(org, make_group, promo, post, run):
    set_switch(org, True)
    make_group("ABC", targets=SUB_70)
    promo(
        'currentEvent.targetMilestoneTrigger.contains("ABC70")',
        MESSAGE_70,
        activity="sub_target_reached",
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 500))
    run()
    assert not Message.objects.exists()
    post(txn(2, "2026-03-05T10:00:00+00:00", 250))
    run()
    message = Message.objects.get()
    assert message.body == "ABC70: 750 of 1000, 250 to go (the 70% mark is 700)."
    assert message.award.event.type == "sub_target_achieved"

    post(txn(3, "2026-03-06T10:00:00+00:00", 500))  # the target itself: no new sub-target event
    run()
    close_cycles(AFTER_MARCH)
    assert Message.objects.count() == 1


def test_use_case_6_with_the_switch_inactive_the_sub_target_action_waits_for_the_cycle_end(
    org, make_group, promo, post, run
):
    set_switch(org, False)
    make_group("ABC", targets=SUB_70)
    promo('currentEvent.targetMilestoneTrigger.contains("ABC70")', MESSAGE_70)
    post(txn(1, "2026-03-04T10:00:00+00:00", 750))
    run()
    assert TargetEvent.objects.get(type="sub_target_achieved").consumed_at is not None
    assert not Message.objects.exists()

    close_cycles(AFTER_MARCH)
    message = Message.objects.get()
    assert message.award.event.type == "period_elapsed"
    assert message.body.startswith("ABC70: 750 of 1000, 250 to go")


def test_use_case_6_with_the_switch_active_pays_at_once_and_only_then(
    org, make_group, promo, post, run
):
    """Issue 16: "the configuration settings determine whether sub-target actions take effect
    immediately or at the end of the period" -- one or the other, never both. With the switch
    Active the cycle-end event no longer lists the sub-targets already delivered."""
    set_switch(org, True)
    make_group("ABC", targets=SUB_70)
    promo('currentEvent.targetMilestoneTrigger.contains("ABC70")', MESSAGE_70)
    post(txn(1, "2026-03-04T10:00:00+00:00", 750))
    run()
    assert [m.award.event.type for m in Message.objects.all()] == ["sub_target_achieved"]
    close_cycles(AFTER_MARCH)
    assert TargetEvent.objects.get(type="period_elapsed").consumed_at is not None
    assert [m.award.event.type for m in Message.objects.order_by("id")] == ["sub_target_achieved"]


# --- Reference 004: targets for B2B programs ---------------------------------------------


def test_b2b_5_percent_of_achieved_plus_5_percent_of_over_achievement(org, make_group, promo, run):
    set_switch(org, False)
    group = make_group(
        "Monthly purchase",
        target_value_mode="per_customer",
        enrolment={"mode": "custom_list"},
        targets=[{"name": "Monthly purchase", "kpi": "gross_sales", "value": Decimal(5000)}],
    )
    target = group.targets.get()
    a = customer_create(organisation=org, identifiers={"mobile": "9000000001"}, name="Account A")
    b = customer_create(organisation=org, identifiers={"mobile": "9000000002"}, name="Account B")
    enrolments_add(target_group=group, customer_ids=[a.id, b.id])
    for customer, value in ((a, 10000), (b, 20000)):
        CustomerTargetValue.objects.create(
            organisation=org, target=target, customer=customer, cycle_ordinal=1, value=value
        )
    promo(
        REACHED.format("Monthly purchase") + AT_CYCLE_END,
        [
            {"type": "award_points", "basis": "percent_of_achieved", "percent": 5,
             "rounding": "floor", "points_type": "regular"},
            {"type": "award_points", "basis": "percent_over_target", "percent": 5,
             "rounding": "floor", "points_type": "promotional"},
        ],
    )  # fmt: skip
    activities_ingest(
        organisation=org,
        items=[
            txn(1, datetime(2026, 3, 3, 9, tzinfo=UTC), Decimal("7000")),
            txn(2, datetime(2026, 3, 25, 9, tzinfo=UTC), Decimal("5345.50")),
            txn(3, datetime(2026, 3, 9, 9, tzinfo=UTC), Decimal("15000"), mobile="9000000002"),
        ],
    )
    run()
    assert not Award.objects.exists()
    close_cycles(AFTER_MARCH)
    awards = list(
        Award.objects.order_by("action_index").values_list("customer", "points", "points_type")
    )
    # A: 12,345.50 achieved on a 10,000 target: 5% = 617.275 -> 617; 5% of 2,345.50 = 117.275 -> 117.
    # B: 15,000 of 20,000: nothing.
    assert awards == [(a.id, Decimal(617), "regular"), (a.id, Decimal(117), "promotional")]
    assert sum(p for _, p, _ in awards) == 734


def test_b2b_with_actual_rounding_keeps_the_decimals(org, make_group, promo, run):
    set_switch(org, False)
    make_group("ABC")
    promo(
        REACHED.format("ABC") + AT_CYCLE_END,
        [
            {"type": "award_points", "basis": "percent_of_achieved", "percent": 5, "rounding": "actual"},
            {"type": "award_points", "basis": "percent_over_target", "percent": 5, "rounding": "round"},
        ],
    )  # fmt: skip
    activities_ingest(
        organisation=org, items=[txn(1, datetime(2026, 3, 3, tzinfo=UTC), Decimal("1234.50"))]
    )
    run()
    close_cycles(AFTER_MARCH)
    # 5% of 1234.50 = 61.725; 5% of 234.50 = 11.725 -> 12.
    assert list(Award.objects.order_by("action_index").values_list("points", flat=True)) == [
        Decimal("61.725"),
        Decimal(12),
    ]


# --- Reference 004: targets for milestone-based loyalty ----------------------------------


def _yearly(make_group):
    return make_group(
        "Five visits",
        start=date(2026, 1, 1),
        end=date(2028, 12, 31),
        cycle={"type": "cyclic", "frequency": "yearly", "start": date(2026, 1, 1), "count": 2},
        targets=[{"name": "Five visits", "kpi": "transaction_count", "value": Decimal(5),
                  "rule": "currentTxn.value >= 50"}],
    )  # fmt: skip


def _visits(org, start: datetime, amounts, prefix):
    activities_ingest(
        organisation=org,
        items=[
            txn(f"{prefix}{i}", start + timedelta(days=7 * i), Decimal(v))
            for i, v in enumerate(amounts)
        ],
    )


def test_500_points_on_the_5th_transaction_of_50_or_more_in_each_membership_year(
    org, make_group, promo, run
):
    set_switch(org, True)
    _yearly(make_group)
    promo(
        'currentEvent.targetAchieved("Five visits") >= currentEvent.targetDefined("Five visits")'
        + IMMEDIATE,
        [{"type": "award_points", "basis": "fixed", "points": 500}],
        start=date(2026, 1, 1),
        end=date(2028, 12, 31),
    )
    first = datetime(2026, 2, 10, 12, tzinfo=UTC)  # the membership year starts here
    _visits(org, first, [60, 30, 55, 70, 49, 50], "y1-")  # four of $50+
    run()
    assert not Award.objects.exists()
    _visits(org, first + timedelta(days=60), [80, 90], "y1b-")  # the 5th, then a 6th
    run()
    award = Award.objects.get()
    assert award.points == 500
    assert award.event.occurred_at == first + timedelta(days=60)
    assert award.cycle_ordinal == 1

    # The second membership year starts a year after the first transaction, not on Jan 1.
    year2 = first + timedelta(days=365)
    _visits(org, year2 - timedelta(days=3), [100], "y1c-")  # still year 1
    _visits(org, year2 + timedelta(hours=1), [50, 50, 50, 50], "y2-")
    run()
    assert Award.objects.count() == 1
    _visits(org, year2 + timedelta(days=40), [75], "y2b-")
    run()
    assert list(Award.objects.values_list("cycle_ordinal", "points")) == [
        (1, Decimal(500)),
        (2, Decimal(500)),
    ]


def test_the_references_strictly_greater_rule_would_wait_for_a_6th_transaction(
    org, make_group, promo, run
):
    """Reference 004 writes `targetAchieved > targetDefined`; the achievement event comes at
    the 5th transaction (5 of 5), where that rule is false. The example needs `>=`."""
    set_switch(org, True)
    _yearly(make_group)
    promo(
        REACHED.format("Five visits") + IMMEDIATE,
        start=date(2026, 1, 1),
        end=date(2028, 12, 31),
    )
    _visits(org, datetime(2026, 2, 10, tzinfo=UTC), [60, 60, 60, 60, 60, 60], "x-")
    pipeline()
    assert TargetEvent.objects.filter(type="target_achieved").count() == 1
    assert not Award.objects.exists()
