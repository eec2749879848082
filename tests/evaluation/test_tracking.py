"""Tracking: every KPI, every cycle type, events, returns, idempotency."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from enrolment.models import Customer, CustomerTargetValue, Enrolment
from evaluation.models import Activity, Progress, TargetEvent
from tests.evaluation.conftest import txn

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def achieved(target, ordinal=None, mobile="9000000001"):
    rows = Progress.objects.filter(target=target, customer__mobile=mobile)
    if ordinal is not None:
        row = rows.filter(cycle_ordinal=ordinal).first()
        return row.achieved if row else Decimal(0)
    return {r.cycle_ordinal: r.achieved for r in rows}


def T(group):
    return group.targets.get()


def test_gross_sales_sum_in_the_cycle_with_the_rule_box(make_group, post, track, stores):
    group = make_group(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": Decimal(1000),
                "rule": "currentTxn.value >= 100",
            }
        ]
    )
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 120),
        txn(2, "2026-03-05T11:00:00+00:00", 99),
        txn(3, "2026-04-02T11:00:00+00:00", 300),
    )
    track()
    assert achieved(T(group)) == {3: Decimal(120), 4: Decimal(300)}


def test_net_sales_at_line_item_level_with_a_category_rule(make_group, post, track, stores):
    group = make_group(targets=[{"name": "Petrol net", "kpi": "net_sales", "entity": "line_item", "value": Decimal(100),
                                 "rule": 'currentLineItem.category == "petrol"'}])  # fmt: skip
    lines = [
        {"sku": "P-1", "category": "petrol", "quantity": 5, "gross": 60, "net": 50},
        {"sku": "M-1", "category": "milk", "quantity": 1, "gross": 10, "net": 9},
    ]
    post(txn(1, "2026-03-04T11:00:00+00:00", lines=lines))
    track()
    assert achieved(T(group), 3) == Decimal(50)


def test_quantity_of_matching_line_items(make_group, post, track, stores):
    group = make_group(
        targets=[
            {
                "name": "Litres",
                "kpi": "quantity",
                "entity": "line_item",
                "value": Decimal(100),
                "rule": 'currentLineItem.sku == "P-1"',
            }
        ]
    )
    lines = [
        {"sku": "P-1", "category": "petrol", "quantity": 5, "gross": 60},
        {"sku": "P-2", "quantity": 7, "gross": 10},
    ]
    post(
        txn(1, "2026-03-04T11:00:00+00:00", lines=lines),
        txn(2, "2026-03-06T11:00:00+00:00", lines=[{"sku": "P-1", "quantity": 2.5, "gross": 30}]),
    )
    track()
    assert achieved(T(group), 3) == Decimal("7.5")


def test_transaction_count_and_scope(make_group, post, track, stores):
    group = make_group(
        targets=[
            {
                "name": "Visits",
                "kpi": "transaction_count",
                "value": Decimal(5),
                "scope": {"stores": [], "zones": ["North"], "concepts": []},
            }
        ]
    )
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 10, store="S1"),
        txn(2, "2026-03-04T12:00:00+00:00", 10, store="S2"),
        txn(3, "2026-03-05T12:00:00+00:00", 10, store="S1"),
    )
    track()
    assert achieved(T(group), 3) == 2  # S2 is in zone South


def test_days_of_activity_are_unique_days_in_the_org_timezone(make_group, post, track, stores):
    group = make_group(targets=[{"name": "Days", "kpi": "days_of_activity", "value": Decimal(5)}])
    # Asia/Kolkata is UTC+5:30: 19:00Z on Mar 4 is 00:30 on Mar 5 there.
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 10),
        txn(2, "2026-03-04T12:00:00+00:00", 10),
        txn(3, "2026-03-04T19:00:00+00:00", 10),
    )
    track()
    assert achieved(T(group), 3) == 2


def test_cycle_boundary_at_midnight_in_the_org_timezone(make_group, post, track, stores):
    group = make_group()
    # 2026-03-31T19:00Z is April 1st 00:30 in Kolkata: the April cycle.
    post(txn(1, "2026-03-31T18:00:00+00:00", 100), txn(2, "2026-03-31T19:00:00+00:00", 200))
    track()
    assert achieved(T(group)) == {3: Decimal(100), 4: Decimal(200)}


def test_extended_field_count_and_sum(make_group, post, track, stores):
    group = make_group(targets=[
        {"name": "Gold bills", "kpi": "extended_field_count", "extended_field": "metal", "extended_field_value": "gold", "value": Decimal(3)},
        {"name": "Tax", "kpi": "extended_field_sum", "extended_field": "tax", "value": Decimal(100000)},
        {"name": "Gold grams", "kpi": "extended_field_sum", "entity": "line_item", "extended_field": "grams", "value": Decimal(13)},
    ])  # fmt: skip
    lines = [
        {"sku": "G", "gross": 10, "extended_fields": {"grams": 4}},
        {"sku": "G2", "gross": 10, "extended_fields": {"grams": 2.5}},
    ]
    post(txn(1, "2026-03-04T11:00:00+00:00", 10, extended_fields={"metal": "gold", "tax": 10}, lines=lines),
         txn(2, "2026-03-05T11:00:00+00:00", 10, extended_fields={"metal": "silver", "tax": 5.5}))  # fmt: skip
    track()
    gold, tax, grams = group.targets.order_by("ordinal")
    assert (
        achieved(gold, 3) == 1
        and achieved(tax, 3) == Decimal("15.5")
        and achieved(grams, 3) == Decimal("6.5")
    )


@pytest.mark.parametrize(
    ("points_type", "expected"), [("regular", 10), ("promotional", 5), ("both", 15)]
)
def test_points_earned(make_group, post, track, points_type, expected):
    group = make_group(
        targets=[
            {"name": "Points", "kpi": "points", "points_type": points_type, "value": Decimal(100)}
        ]
    )
    post(
        {
            "id": "p-1",
            "type": "points",
            "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-03-04T11:00:00+00:00",
            "regular": 10,
            "promotional": 5,
        }
    )
    track()
    assert achieved(T(group), 3) == expected


def event(i, at, name="AddToCart", **attributes):
    return {
        "id": f"e-{i}",
        "type": "event",
        "customer": {"mobile": "9000000001"},
        "occurred_at": at,
        "name": name,
        "attributes": attributes,
    }


def test_behavioural_count_days_sum_and_daily_highest(make_group, post, track):
    group = make_group(targets=[
        {"name": "Adds", "kpi": "event_count", "event_name": "AddToCart", "value": Decimal(10)},
        {"name": "Add days", "kpi": "event_days", "event_name": "AddToCart", "value": Decimal(3)},
        {"name": "Add sum", "kpi": "event_sum", "event_name": "AddToCart", "attribute": "price", "value": Decimal(100000)},
        {"name": "Add max", "kpi": "event_daily_max_sum", "event_name": "AddToCart", "attribute": "price", "value": Decimal(100000)},
    ])  # fmt: skip
    post(event(1, "2026-03-04T05:00:00+00:00", price=3000), event(2, "2026-03-04T06:00:00+00:00", price=4000),
         event(3, "2026-03-04T07:00:00+00:00", price=3500), event(4, "2026-03-06T07:00:00+00:00", price=1000),
         event(5, "2026-03-06T08:00:00+00:00", name="Review", price=99999))  # fmt: skip
    track()
    count, days, total, daily_max = group.targets.order_by("ordinal")
    assert achieved(count, 3) == 4
    assert achieved(days, 3) == 2
    assert achieved(total, 3) == 11500
    assert achieved(daily_max, 3) == 5000  # 4000 (highest of 3000, 4000, 3500) + 1000


def test_customer_level_events_count_and_days(make_group, post, track):
    group = make_group(targets=[
        {"name": "Redemptions", "kpi": "customer_event_count", "event_name": "points_redemption", "value": Decimal(5)},
        {"name": "Referral days", "kpi": "customer_event_days", "event_name": "referral", "value": Decimal(5)},
    ])  # fmt: skip

    def ce(i, at, name):
        return {
            "id": f"c-{i}",
            "type": "customer_event",
            "customer": {"mobile": "9000000001"},
            "occurred_at": at,
            "name": name,
        }  # noqa: E731

    post(ce(1, "2026-03-04T05:00:00+00:00", "points_redemption"), ce(2, "2026-03-04T06:00:00+00:00", "points_redemption"),
         ce(3, "2026-03-04T06:00:00+00:00", "referral"), ce(4, "2026-03-04T07:00:00+00:00", "referral"), ce(5, "2026-03-05T07:00:00+00:00", "referral"))  # fmt: skip
    track()
    redemptions, referrals = group.targets.order_by("ordinal")
    assert achieved(redemptions, 3) == 2 and achieved(referrals, 3) == 2


@pytest.mark.parametrize("allow", [True, False])
def test_returns_inside_the_offset_window_lower_the_cycle_that_counted_the_bill_only_when_allowed(
    org, make_group, post, track, stores, allow
):
    org.allow_return_on_target = allow
    org.save()
    group = make_group(offset_days=5, targets=[
        {"name": "Spend", "kpi": "gross_sales", "value": Decimal(5000)},
        {"name": "Returns", "kpi": "customer_event_count", "event_name": "return", "value": Decimal(10)},
    ])  # fmt: skip
    post(txn(1, "2026-03-30T11:00:00+00:00", 1000, bill="B1"))
    post(
        {
            "id": "r-1",
            "type": "return",
            "customer": {"mobile": "9000000001"},
            "occurred_at": "2026-04-02T11:00:00+00:00",
            "bill_number": "B1",
            "gross": 200,
            "net": 200,
        }
    )
    track()
    spend, returns = group.targets.order_by("ordinal")
    assert achieved(spend) == ({3: Decimal(800)} if allow else {3: Decimal(1000)})
    assert achieved(returns, 4) == 1  # counted either way, in the return's own cycle


def test_a_return_tracked_in_the_same_batch_as_its_bill_lowers_that_bills_cycle(
    org, make_group, post, track, stores
):
    """Bill and return posted together (a replay of history): the return finds the bill's
    cycle among the activities folded just before it in the batch, not only in the database."""
    org.allow_return_on_target = True
    org.save()
    group = make_group(offset_days=5)
    post(
        txn(1, "2026-03-30T11:00:00+00:00", 1000, bill="B1"),
        {"id": "r-1", "type": "return", "customer": {"mobile": "9000000001"}, "bill_number": "B1",
         "occurred_at": "2026-04-02T11:00:00+00:00", "gross": 200, "net": 200},
        txn(2, "2026-04-03T11:00:00+00:00", 50, bill="B1"),  # a later bill reusing the number
        {"id": "r-2", "type": "return", "customer": {"mobile": "9000000001"}, "bill_number": "B9",
         "occurred_at": "2026-04-04T11:00:00+00:00", "gross": 70, "net": 70},  # no such bill
    )  # fmt: skip
    track(now=datetime(2026, 4, 5, tzinfo=UTC))  # all four in one batch
    assert achieved(T(group)) == {3: Decimal(800), 4: Decimal(50)}


def test_activities_outside_every_cycle_count_nowhere(make_group, post, track, stores):
    group = make_group(
        cycle={
            "type": "fixed_calendar",
            "frequency": "monthly",
            "start": date(2026, 3, 1),
            "count": 1,
        }
    )
    post(
        txn(1, "2026-02-10T11:00:00+00:00", 100),
        txn(2, "2026-04-10T11:00:00+00:00", 100),
        txn(3, "2026-03-10T11:00:00+00:00", 100),
    )
    track()
    assert achieved(T(group)) == {1: Decimal(100)}


def test_custom_periods(make_group, post, track, stores):
    group = make_group(cycle={"type": "custom_periods", "periods": [
        {"name": "Spring", "start": date(2026, 3, 1), "end": date(2026, 3, 10)},
        {"name": "Summer", "start": date(2026, 6, 1), "end": date(2026, 6, 30)}]})  # fmt: skip
    post(
        txn(1, "2026-03-05T11:00:00+00:00", 100),
        txn(2, "2026-03-20T11:00:00+00:00", 100),
        txn(3, "2026-06-05T11:00:00+00:00", 7),
    )
    track()
    assert achieved(T(group)) == {1: Decimal(100), 2: Decimal(7)}


def cyclic_group(make_group, org):
    org.timezone = "UTC"
    org.save()
    return make_group("Cyclic", start=date(2021, 9, 1), end=date(2022, 3, 31),
                      cycle={"type": "cyclic", "frequency": "days", "days": 30, "start": date(2021, 9, 1), "count": 3})  # fmt: skip


def test_cyclic_window_customer_a_and_b_from_the_reference(
    api, configurer, make_group, org, post, track, stores
):
    cyclic_group(make_group, org)
    post(
        txn(1, "2021-09-04T10:00:00+00:00", 10, mobile="9000000001"),
        txn(2, "2021-10-01T10:00:00+00:00", 10, mobile="9000000002"),
    )
    track(now=datetime(2021, 10, 2, tzinfo=UTC))
    expected = {
        "9000000001": [
            ("2021-09-04", "2021-10-03"),
            ("2021-10-04", "2021-11-02"),
            ("2021-11-03", "2021-12-02"),
        ],
        # The reference prints Oct 30 for customer B's second start; 30-day cycles give Oct 31.
        "9000000002": [
            ("2021-10-01", "2021-10-30"),
            ("2021-10-31", "2021-11-29"),
            ("2021-11-30", "2021-12-29"),
        ],
    }
    for mobile, cycles in expected.items():
        customer = Customer.objects.get(mobile=mobile)
        body = api(configurer).get(f"/api/v1/customers/{customer.id}/milestones/").json()
        assert [(c["start"], c["end"]) for c in body[0]["cycles"]] == cycles


def test_retro_activities_never_move_a_cyclic_start(make_group, org, post, track, stores):
    group = cyclic_group(make_group, org)
    post(txn(1, "2021-09-04T10:00:00+00:00", 10))
    track(now=datetime(2021, 9, 10, tzinfo=UTC))
    post(txn(2, "2021-09-02T10:00:00+00:00", 500), txn(3, "2021-10-05T10:00:00+00:00", 7))
    track(now=datetime(2021, 10, 10, tzinfo=UTC))
    assert achieved(T(group)) == {1: Decimal(10), 2: Decimal(7)}


def test_till_achievement_closes_on_reaching_the_target_and_opens_the_next(
    make_group, post, track, stores
):
    group = make_group("Till", cycle={"type": "till_achievement", "start": date(2026, 1, 1), "count": 2},
                       targets=[{"name": "Till 100", "kpi": "gross_sales", "value": Decimal(100)}])  # fmt: skip
    post(txn(1, "2026-03-01T10:00:00+00:00", 60), txn(2, "2026-03-02T10:00:00+00:00", 50), txn(3, "2026-03-03T10:00:00+00:00", 30),
         txn(4, "2026-03-04T10:00:00+00:00", 80), txn(5, "2026-03-05T10:00:00+00:00", 1000))  # fmt: skip
    track()
    rows = {r.cycle_ordinal: r for r in Progress.objects.filter(target=T(group))}
    assert rows[1].achieved == 110 and rows[1].achieved_at == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert rows[2].cycle_start == rows[1].achieved_at and rows[2].achieved == 110
    assert set(rows) == {1, 2}  # at most two cycles: the fifth transaction counts nowhere
    assert TargetEvent.objects.filter(type="target_achieved", target=T(group)).count() == 2


def test_per_customer_and_per_cycle_target_values(make_group, post, track, stores, org):
    group = make_group(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": Decimal(1000),
                "period_values": {"P4": Decimal(1500)},
            }
        ]
    )
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 10),
        txn(2, "2026-04-04T11:00:00+00:00", 10),
        txn(3, "2026-03-04T11:00:00+00:00", 10, mobile="9000000002"),
    )
    CustomerTargetValue.objects.create(
        organisation=org,
        target=T(group),
        customer=Customer.objects.get(mobile="9000000002"),
        cycle_ordinal=3,
        value=Decimal(700),
    )
    track()
    values = {
        (r.customer.mobile, r.cycle_ordinal): r.target_value
        for r in Progress.objects.filter(target=T(group)).select_related("customer")
    }
    assert values == {("9000000001", 3): 1000, ("9000000001", 4): 1500, ("9000000002", 3): 700}


def test_sub_target_at_80_percent_of_20000_gives_16000(make_group, post, track, stores):
    make_group(
        targets=[
            {
                "name": "ABC",
                "kpi": "gross_sales",
                "value": Decimal(20000),
                "sub_targets": [{"name": "ABC80", "criteria": "percentage", "value": Decimal(80)}],
            }
        ]
    )
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 15000),
        txn(2, "2026-03-05T11:00:00+00:00", 1500),
        txn(3, "2026-03-06T11:00:00+00:00", 100),
    )
    track()
    (event,) = TargetEvent.objects.filter(type="sub_target_achieved")
    assert event.milestone_value_defined == 16000
    assert event.milestone_triggers == ["ABC80"]
    assert (
        event.achieved == 16500
        and event.defined == 20000
        and event.is_target_achieved_event is False
    )
    assert event.period_name == "Spend P3" and event.cycle_ordinal == 3


def test_achievement_event_is_written_once_when_the_award_switch_is_on(
    make_group, post, track, stores
):
    group = make_group()
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 600),
        txn(2, "2026-03-05T11:00:00+00:00", 600),
        txn(3, "2026-03-06T11:00:00+00:00", 600),
    )
    track()
    (event,) = TargetEvent.objects.filter(type="target_achieved")
    assert (event.achieved, event.defined, event.is_target_achieved_event) == (1200, 1000, True)
    assert Progress.objects.get(target=T(group)).achieved_at == datetime(2026, 3, 5, 11, tzinfo=UTC)


def test_no_immediate_achievement_event_when_the_award_switch_is_off(
    org, make_group, post, track, stores
):
    org.award_when_target_achieved = False
    org.save()
    group = make_group(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": Decimal(1000),
                "sub_targets": [{"name": "Half", "criteria": "percentage", "value": Decimal(50)}],
            }
        ]
    )
    post(txn(1, "2026-03-04T11:00:00+00:00", 1200))
    track()
    assert list(TargetEvent.objects.values_list("type", flat=True)) == ["sub_target_achieved"]
    assert Progress.objects.get(target=T(group)).achieved_at is not None


def test_the_same_id_twice_is_counted_once(make_group, post, track, stores):
    group = make_group()
    first = post(txn(1, "2026-03-04T11:00:00+00:00", 100), txn(1, "2026-03-04T11:00:00+00:00", 100))
    again = post(txn(1, "2026-03-04T11:00:00+00:00", 100))
    assert (first["accepted"], first["duplicates"], again["accepted"], again["duplicates"]) == (
        1,
        1,
        0,
        1,
    )
    track()
    track()
    assert Activity.objects.count() == 1
    assert achieved(T(group), 3) == 100


def test_replaying_tracking_never_counts_twice(make_group, post, track, stores):
    from evaluation.tracking import activities_track

    group = make_group()
    post(txn(1, "2026-03-04T11:00:00+00:00", 100))
    ids = list(Activity.objects.values_list("id", flat=True))
    activities_track(activity_ids=ids, now=datetime(2026, 3, 5, tzinfo=UTC))
    activities_track(activity_ids=ids, now=datetime(2026, 3, 5, tzinfo=UTC))
    assert achieved(T(group), 3) == 100


def test_inactive_milestones_track_nothing(make_group, post, track, stores):
    group = make_group()
    group.is_active = False
    group.save()
    post(txn(1, "2026-03-04T11:00:00+00:00", 100))
    track()
    assert not Progress.objects.exists() and not Enrolment.objects.exists()


def test_late_arrivals_count_until_the_cycle_end_evaluation_then_nothing_does(
    make_group, post, track, stores
):
    from evaluation.cycle_end import evaluate_cycles

    late = make_group("Late", offset_days=5)
    strict = make_group("Strict", offset_days=0)
    post(txn(1, "2026-03-31T11:00:00+00:00", 100))
    # April 3rd: the strict milestone's March evaluation has run (end + 0 days), the late
    # one's has not (end + 5 days): the late arrival counts only in the latter.
    evaluate_cycles(as_of=datetime(2026, 4, 3, tzinfo=UTC))
    track(now=datetime(2026, 4, 3, tzinfo=UTC))
    assert achieved(T(late), 3) == 100
    assert achieved(T(strict), 3) == 0
    # After the late milestone's cycle end too, a March activity counts nowhere.
    evaluate_cycles(as_of=datetime(2026, 4, 7, tzinfo=UTC))
    post(txn(2, "2026-03-30T11:00:00+00:00", 50))
    track(now=datetime(2026, 4, 7, tzinfo=UTC))
    assert achieved(T(late), 3) == 100


def test_only_enrolled_customers_are_tracked_outside_all_customers_mode(
    make_group, post, track, stores, org
):
    group = make_group(
        "Listed", target_value_mode="per_customer", enrolment={"mode": "custom_list"}
    )
    listed = Customer.objects.create(organisation=org, mobile="9000000002")
    Enrolment.objects.create(organisation=org, target_group=group, customer=listed, source="api")
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 100),
        txn(2, "2026-03-04T11:00:00+00:00", 100, mobile="9000000002"),
    )
    track()
    assert list(Progress.objects.values_list("customer__mobile", flat=True)) == ["9000000002"]


def test_all_customers_mode_enrols_on_first_tracked_activity(make_group, post, track, stores):
    group = make_group()
    post(txn(1, "2026-03-04T11:00:00+00:00", 100))
    track()
    assert Enrolment.objects.get().target_group == group
