"""The awards ledger: each action at most once per (promotion, event), coupons, messages,
points fed back into tracking with the loop guard, the outbox hooks and sweeper."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from enrolment.models import CustomerTargetValue
from enrolment.services import customer_create
from evaluation.models import Activity, Progress, TargetEvent
from milestones_site.celery import app as celery_app
from promotions.consumer import events_redeliver, target_events_consume
from promotions.models import Award, Coupon, Message
from promotions.services import coupon_series_create, coupons_add

from .conftest import close_cycles, txn

pytestmark = pytest.mark.django_db

REACHED_NOW = (
    'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")'
    " && currentEvent.isTargetAchievedEvent == true"
)
MARCH_5 = datetime(2026, 3, 5, tzinfo=UTC)
THREE_ACTIONS = [
    {"type": "award_points", "basis": "fixed", "points": 100},
    {"type": "issue_coupon", "series": "WIN"},
    {"type": "send_message", "channel": "sms", "template": "{points} points and {coupon.code}"},
]


def _counts():
    return (
        Award.objects.count(),
        Coupon.objects.filter(issued_at__isnull=False).count(),
        Message.objects.count(),
        Activity.objects.filter(type="points").count(),
    )


def test_a_redelivered_event_pays_nothing_twice(org, make_group, promo, post, run):
    make_group("ABC")
    coupon_series_create(organisation=org, code="WIN", generate=5)
    promo(REACHED_NOW, THREE_ACTIONS)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    assert _counts() == (3, 1, 1, 1)
    message = Message.objects.get()
    code = Coupon.objects.get(issued_at__isnull=False).code
    assert message.body == f"100 points and {code}"

    ids = list(TargetEvent.objects.values_list("id", flat=True))
    assert events_redeliver(event_ids=ids) == len(ids)
    result = target_events_consume(event_ids=ids)
    assert result.claimed == len(ids) and result.awards == []
    run()
    assert _counts() == (3, 1, 1, 1)


def test_consuming_the_same_events_twice_claims_them_once(org, make_group, promo, post, run):
    make_group("ABC")
    promo(REACHED_NOW)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    from evaluation.tracking import activities_track

    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)), now=MARCH_5)
    ids = list(TargetEvent.objects.values_list("id", flat=True))
    first = target_events_consume(event_ids=ids)
    second = target_events_consume(event_ids=ids)
    assert (first.claimed, len(first.awards)) == (1, 1)
    assert (second.claimed, second.skipped, second.awards) == (0, 1, [])


def test_the_ledger_refuses_a_second_row_for_the_same_promotion_event_and_action(
    org, make_group, promo, post, run
):
    make_group("ABC")
    promo(REACHED_NOW)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    award = Award.objects.get()
    award.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        award.save(force_insert=True)


def test_a_series_that_runs_out_writes_an_error_row_and_issues_nothing(
    org, make_group, promo, post, run
):
    make_group("ABC")
    series = coupon_series_create(organisation=org, code="WIN", codes=["ONLY-ONE"])
    promo(REACHED_NOW, THREE_ACTIONS)
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 1500, mobile="9000000001"),
        txn(2, "2026-03-05T10:00:00+00:00", 1500, mobile="9000000002"),
    )
    run()
    rows = {
        (a.customer.mobile, a.type): (a.status, a.coupon_code, a.error)
        for a in Award.objects.select_related("customer")
    }
    assert rows[("9000000001", "issue_coupon")] == ("done", "ONLY-ONE", "")
    status, code, error = rows[("9000000002", "issue_coupon")]
    assert (status, code) == ("failed", "")
    assert "'WIN' has run out" in error and "nothing was issued" in error
    # The message showing the code is not sent without a code; the points are still given.
    assert rows[("9000000002", "send_message")][0] == "failed"
    assert rows[("9000000002", "award_points")][0] == "done"
    assert list(Message.objects.values_list("recipient", "body")) == [
        ("9000000001", "100 points and ONLY-ONE")
    ]
    assert Coupon.objects.get(series=series).customer.mobile == "9000000001"


def test_coupon_codes_are_unique_in_the_organisation(org):
    from django.core.exceptions import ValidationError

    series = coupon_series_create(organisation=org, code="A", codes=["X1", "X2"])
    with pytest.raises(ValidationError, match="Already used"):
        coupon_series_create(organisation=org, code="B", codes=["X2"])
    with pytest.raises(ValidationError, match="appears twice"):
        coupons_add(series=series, codes=["Y1", "Y1"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.create(organisation=org, series=series, code="X1")


def test_generated_codes_are_unique_and_prefixed(org):
    series = coupon_series_create(organisation=org, code="SUMMER10", generate=300)
    codes = list(series.coupons.values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 300
    assert all(c.startswith("SUMMER10-") and len(c) == len("SUMMER10-") + 10 for c in codes)


def test_an_sms_to_a_customer_without_a_mobile_is_a_failed_row(org, make_group, promo, post, run):
    make_group("ABC")
    promo(REACHED_NOW, [{"type": "send_message", "channel": "sms", "template": "Well done"}])
    post(
        {
            "id": "e-1",
            "type": "transaction",
            "customer": {"email": "no-mobile@example.com"},
            "occurred_at": "2026-03-04T10:00:00+00:00",
            "gross": 1500,
        }
    )
    run()
    award = Award.objects.get()
    assert (award.status, award.error) == (
        "failed",
        "The customer has no mobile number: the SMS was not sent.",
    )
    assert not Message.objects.exists()


# --- points fed back into tracking ---------------------------------------------------------


def test_awarded_points_feed_a_milestone_tracking_points_at_the_till(
    org, make_group, promo, post, run, stores
):
    make_group("ABC")
    points_group = make_group(
        "Points earned",
        targets=[{"name": "Points earned", "kpi": "points", "entity": "points",
                  "points_type": "promotional", "value": Decimal(500)}],
    )  # fmt: skip
    promo(
        REACHED_NOW,
        [{"type": "award_points", "basis": "fixed", "points": 120, "points_type": "promotional"}],
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    award = Award.objects.get()
    assert award.fed_activity == f"award-{award.id}"
    activity = Activity.objects.get(external_id=award.fed_activity)
    assert (activity.type, activity.store_code) == ("points", "T1")
    assert activity.payload["attributes"]["award_depth"] == 1
    progress = Progress.objects.get(target=points_group.targets.get())
    assert progress.achieved == 120


def test_points_fed_back_cannot_loop_more_than_one_round(org, make_group, promo, post, run):
    """A points milestone that restarts on achievement, and a promotion giving as many points
    as its target: without the guard each award would reach the next cycle, forever."""
    make_group(
        "Loop",
        start=date(2026, 3, 1),
        end=date(2026, 12, 31),
        cycle={"type": "till_achievement", "start": date(2026, 3, 1), "count": 20},
        targets=[{"name": "Loop", "kpi": "points", "entity": "points", "points_type": "both",
                  "value": Decimal(100)}],
    )  # fmt: skip
    promo(
        'currentEvent.targetAchieved("Loop") >= currentEvent.targetDefined("Loop")'
        " && currentEvent.isTargetAchievedEvent == true",
        [{"type": "award_points", "basis": "fixed", "points": 100}],
    )
    post(
        {
            "id": "p-1",
            "type": "points",
            "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-04T10:00:00+00:00",
            "regular": 100,
        }
    )
    run()
    first, second = Award.objects.order_by("id")
    assert (first.depth, first.fed_activity) == (0, f"award-{first.id}")
    assert (second.depth, second.fed_activity) == (1, "")  # paid, not fed back again
    assert second.cycle_ordinal == 2
    assert Activity.objects.filter(type="points").count() == 2
    assert Progress.objects.filter(target__name="Loop").count() == 2


def test_feeding_points_back_can_be_switched_off(org, make_group, promo, post, run, settings):
    settings.PROMOTIONS_FEED_POINTS = False
    make_group("ABC")
    promo(REACHED_NOW)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    assert Award.objects.get().fed_activity == ""
    assert not Activity.objects.filter(type="points").exists()


# --- the outbox hooks, the sweeper, the customer's timeline --------------------------------


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_tracking_through_the_worker_queues_the_consumption_of_its_events(
    org, make_group, promo, post, eager, django_capture_on_commit_callbacks
):
    from evaluation.tasks import track_activities

    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=10), today + timedelta(days=10)
    make_group(
        "ABC",
        start=first,
        end=last,
        cycle={"type": "custom_periods", "periods": [{"name": "Now", "start": first, "end": last}]},
    )
    promo(REACHED_NOW, start=first, end=last)
    post(txn(1, (datetime.now(UTC) - timedelta(minutes=5)).isoformat(), 1500))
    with django_capture_on_commit_callbacks(execute=True):
        track_activities.delay(list(Activity.objects.values_list("id", flat=True)))
    assert Award.objects.get().event.type == "target_achieved"
    assert not TargetEvent.objects.filter(consumed_at__isnull=True).exists()


def test_cycle_end_evaluation_queues_the_consumption_of_its_events(
    org, make_group, promo, post, run, eager, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    make_group("ABC")
    promo(
        'currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")'
        " && currentEvent.isTargetAchievedEvent == false"
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "evaluate_cycles", as_of="2026-04-02T00:00:00+00:00", stdout=open("/dev/null", "w")
        )
    assert Award.objects.get().event.type == "period_elapsed"


def test_the_sweep_delivers_events_whose_message_was_lost(
    org, make_group, promo, post, eager, django_capture_on_commit_callbacks
):
    from evaluation.tracking import activities_track
    from promotions.tasks import consume_sweep

    make_group("ABC")
    promo(REACHED_NOW)
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    activities_track(activity_ids=list(Activity.objects.values_list("id", flat=True)), now=MARCH_5)
    event = TargetEvent.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert consume_sweep() == 0  # too fresh: its own task may still be on the way
    TargetEvent.objects.filter(pk=event.pk).update(
        created_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert consume_sweep() == 1
    assert Award.objects.get().event == event


def test_the_customers_milestones_show_the_actions_per_sub_target_and_cycle(
    org, make_group, promo, post, run, api, member_care
):
    make_group("ABC", targets=[{"name": "ABC", "kpi": "gross_sales", "value": Decimal(1000),
                                "sub_targets": [{"name": "ABC70", "criteria": "percentage", "value": 70}]}])  # fmt: skip
    promo(
        'currentEvent.targetMilestoneTrigger.contains("ABC70")',
        [{"type": "send_message", "channel": "sms", "template": "70% there"}],
        activity="sub_target_reached",
        name="Nudge",
    )
    promo(REACHED_NOW, name="Reward")
    post(txn(1, "2026-03-04T10:00:00+00:00", 800), txn(2, "2026-03-05T10:00:00+00:00", 300))
    run()
    customer = Award.objects.first().customer
    data = api(member_care).get(f"/api/v1/customers/{customer.id}/milestones/").json()
    march = data[0]["cycles"][0]
    sub = march["sub_targets"][0]
    assert [(a["type"], a["promotion"], a["message"]) for a in sub["actions"]] == [
        ("send_message", "Nudge", "70% there")
    ]
    assert sorted((a["promotion"], a["type"]) for a in march["actions"]) == [
        ("Nudge", "send_message"),
        ("Reward", "award_points"),
    ]


def test_enrolling_customers_reaches_promotions_on_the_enrolled_activity(
    org, make_group, promo, django_capture_on_commit_callbacks, eager
):
    from enrolment.services import enrolments_add

    group = make_group("ABC", enrolment={"mode": "custom_list"}, target_value_mode="per_customer")
    promo(
        'currentEvent.targetName == "ABC"',
        [{"type": "send_message", "channel": "sms", "template": "Welcome to {milestone.name}, target {target.value}"}],
        activity="enrolled",
    )  # fmt: skip
    c = customer_create(organisation=org, identifiers={"mobile": "9000000005"})
    CustomerTargetValue.objects.create(
        organisation=org, target=group.targets.get(), customer=c, cycle_ordinal=1, value=1500
    )
    with django_capture_on_commit_callbacks(execute=True):
        enrolments_add(target_group=group, customer_ids=[c.id], notify=False)
    event = TargetEvent.objects.get(type="enrolled")
    assert event.consumed_at is not None
    assert Message.objects.get().body == "Welcome to ABC, target 1500"
    # Enrolling again writes no second event.
    with django_capture_on_commit_callbacks(execute=True):
        enrolments_add(target_group=group, customer_ids=[c.id], notify=False)
    assert TargetEvent.objects.filter(type="enrolled").count() == 1


def test_no_enrolled_events_are_written_when_no_promotion_listens(
    org, make_group, django_capture_on_commit_callbacks
):
    from enrolment.services import enrolments_add

    group = make_group("ABC", enrolment={"mode": "custom_list"}, target_value_mode="per_customer")
    c = customer_create(organisation=org, identifiers={"mobile": "9000000005"})
    with django_capture_on_commit_callbacks(execute=True):
        enrolments_add(target_group=group, customer_ids=[c.id], notify=False)
    assert not TargetEvent.objects.filter(type="enrolled").exists()


def test_a_promotion_outside_its_dates_or_inactive_does_nothing(org, make_group, promo, post, run):
    make_group("ABC")
    promo(REACHED_NOW, is_active=False, name="Off")
    promo(REACHED_NOW, start=date(2026, 3, 1), end=date(2026, 12, 31), name="Later")
    from promotions.models import Promotion

    Promotion.objects.filter(name="Later").update(start=date(2026, 3, 5))  # after Mar 4
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    assert not Award.objects.exists()
    close_cycles(datetime(2026, 4, 2, tzinfo=UTC))
    assert not Award.objects.exists()
