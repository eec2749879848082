"""The `currentEvent` profile of a target event: any target of the customer by name."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from enrolment.models import Customer
from enrolment.services import customer_create, enrolments_add
from evaluation.models import TargetEvent
from promotions.models import Award
from promotions.selectors import NameIndex, event_profile

from .conftest import close_cycles, txn

pytestmark = pytest.mark.django_db


def profile(event, *names):
    return event_profile(event, names, NameIndex.load(event.organisation_id, names))


@pytest.fixture
def two_milestones(org, make_group):
    abc = make_group("ABC")  # monthly, March to May
    season = make_group(
        "Season",
        cycle={"type": "custom_periods", "periods": [
            {"name": "Spring", "start": date(2026, 3, 1), "end": date(2026, 4, 15)},
            {"name": "Summer", "start": date(2026, 4, 16), "end": date(2026, 5, 31)}]},
        targets=[{"name": "Visits", "kpi": "transaction_count", "value": Decimal(10)}],
    )  # fmt: skip
    return abc, season


def test_the_events_own_target_reads_the_event_and_others_read_the_customers_progress(
    org, two_milestones, post, run
):
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 600),
        txn(2, "2026-03-10T10:00:00+00:00", 600),
    )
    run()
    event = TargetEvent.objects.get(type="target_achieved", target__name="ABC")
    p = profile(event, "ABC", "Visits", "Nobody")
    assert p.targets == {"ABC": (Decimal(1200), Decimal(1000)), "Visits": (Decimal(2), Decimal(10))}
    assert (p.name, p.target_name, p.target_period) == ("targetAchieved", "ABC", "ABC P1")
    assert p.is_target_achieved_event is True


def test_a_cycle_end_event_reads_other_milestones_in_the_cycle_containing_its_last_day(
    org, two_milestones, post, run
):
    # Spring runs to April 15: April visits count in the same Spring cycle.
    post(
        txn(1, "2026-03-30T10:00:00+00:00", 10),
        txn(2, "2026-04-10T10:00:00+00:00", 10),
        txn(3, "2026-04-20T10:00:00+00:00", 10),  # Summer
    )
    run()
    close_cycles(datetime(2026, 4, 2, tzinfo=UTC))
    event = TargetEvent.objects.get(type="period_elapsed", period_name="ABC P1")
    assert profile(event, "Visits").targets == {"Visits": (Decimal(2), Decimal(10))}


def test_a_target_the_customer_is_in_without_progress_exists_with_zero_achieved(
    org, make_group, post, run
):
    make_group("ABC")
    other = make_group(
        "Club",
        enrolment={"mode": "custom_list"},
        target_value_mode="per_customer",
        targets=[{"name": "Club", "kpi": "gross_sales", "value": Decimal(700)}],
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    event = TargetEvent.objects.get(type="target_achieved")
    assert profile(event, "Club").targets == {}  # not enrolled: absent (exists false)
    enrolments_add(target_group=other, customer_ids=[event.customer_id], notify=False)
    assert profile(event, "Club").targets == {"Club": (Decimal(0), Decimal(700))}


def test_a_milestones_name_stands_for_its_only_target(org, make_group, promo, post, run):
    make_group(
        "Spend group",
        targets=[{"name": "Spend 1000", "kpi": "gross_sales", "value": Decimal(1000)}],
    )
    promo(
        'currentEvent.targetAchieved("Spend group") > currentEvent.targetDefined("Spend group")'
        " && currentEvent.isTargetAchievedEvent == true"
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 1500))
    run()
    assert Award.objects.get().target.name == "Spend 1000"


def test_a_unified_event_reads_its_milestone_by_name(org, make_group):
    group = make_group(
        "Both",
        targets=[{"name": "B1", "kpi": "gross_sales", "value": Decimal(10)},
                 {"name": "B2", "kpi": "transaction_count", "value": Decimal(2)}],
    )  # fmt: skip
    customer = customer_create(organisation=org, identifiers={"mobile": "9000000001"})
    event = TargetEvent.objects.create(
        organisation=org,
        type="target_achieved",
        dedupe_key="unified:x",
        customer=customer,
        target_group=group,
        target=None,
        cycle_ordinal=1,
        period_name="Both P1",
        achieved=Decimal(2),
        defined=Decimal(2),
        is_target_achieved_event=True,
        occurred_at=datetime(2026, 3, 4, tzinfo=UTC),
    )
    p = profile(event, "Both")
    assert p.targets == {"Both": (Decimal(2), Decimal(2))}
    assert p.target_name == "Both"


def test_a_rule_reading_the_customer_profile(org, make_group, promo, post, run):
    make_group("ABC")
    promo('currentEvent.isTargetAchievedEvent == true && currentCustomer.attributes.tier == "gold"')
    post(
        txn(1, "2026-03-04T10:00:00+00:00", 1500, mobile="9000000001"),
        txn(2, "2026-03-04T10:00:00+00:00", 1500, mobile="9000000002"),
    )
    Customer.objects.filter(mobile="9000000002").update(attributes={"tier": "gold"})
    run()
    assert list(Award.objects.values_list("customer__mobile", flat=True)) == ["9000000002"]
