"""The test data factories make valid rows that hang together: one organisation per row and
the rows it points at, milestones and promotions complete as their services make them."""

from datetime import date
from decimal import Decimal

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

EVERY_FACTORY = [
    factories.OrganisationFactory, factories.UserFactory, factories.StoreFactory,
    factories.TillFactory, factories.TargetGroupFactory, factories.PeriodFactory,
    factories.TargetFactory, factories.SubTargetFactory, factories.CustomerFactory,
    factories.AudienceGroupFactory, factories.EnrolmentFactory,
    factories.CustomerTargetValueFactory, factories.ImportJobFactory, factories.ActivityFactory,
    factories.ProgressFactory, factories.TargetEventFactory, factories.EvaluationRunFactory,
    factories.ReprocessRunFactory, factories.PromotionFactory, factories.PromotionActionFactory,
    factories.CouponSeriesFactory, factories.CouponFactory, factories.AwardFactory,
    factories.CommunicationFactory, factories.MessageFactory, factories.EventTypeFactory,
]  # fmt: skip


def organisation_ids(row) -> set[int]:
    """The organisation of the row and of every row it points at."""
    found = {row.organisation_id} if getattr(row, "organisation_id", None) else set()
    for field in row._meta.concrete_fields:
        if field.is_relation and field.many_to_one:
            related = getattr(row, field.name)
            if related is not None and getattr(related, "organisation_id", None):
                found.add(related.organisation_id)
    return found


@pytest.mark.parametrize("factory", EVERY_FACTORY, ids=lambda f: f.__name__)
def test_every_factory_saves_a_row_whose_references_share_its_organisation(factory):
    row = factory()
    assert row.pk is not None
    assert len(organisation_ids(row)) <= 1


def test_a_milestone_has_monthly_periods_one_gross_sales_target_and_a_till():
    group = factories.TargetGroupFactory(name="Spend")
    assert (group.start, group.end) == (date(2026, 1, 1), date(2026, 12, 31))
    assert [p.name for p in group.periods.all()] == [f"Spend P{i}" for i in range(1, 13)]
    (target,) = group.targets.all()
    assert (target.name, target.kpi, target.value) == ("Spend target", "gross_sales", 1000)
    assert (group.till.code, group.till.is_till) == ("T1", True)


def test_a_milestone_takes_the_apis_create_shape():
    org = factories.OrganisationFactory()
    group = factories.TargetGroupFactory(
        organisation=org,
        cycle={"type": "cyclic", "frequency": "weekly", "count": 4},
        enrolment={"mode": "custom_list"},
        target_value_mode="per_customer",
        targets=[factories.target_data("Visits", kpi="transaction_count", value=5)],
    )
    assert (group.cycle_type, group.cycle_count, group.enrolment_mode) == (
        "cyclic", 4, "custom_list",
    )  # fmt: skip
    assert not group.periods.exists()
    assert group.targets.get().entity == "transaction"


def test_a_period_is_one_of_its_milestones():
    group = factories.TargetGroupFactory()
    assert factories.PeriodFactory(target_group=group, ordinal=3) == group.periods.get(ordinal=3)


def test_rows_of_a_target_read_its_cycle():
    event = factories.TargetEventFactory(cycle_ordinal=2)
    target = event.target
    assert event.period_name == target.target_group.periods.get(ordinal=2).name
    assert event.defined == Decimal(1000)
    assert event.dedupe_key == f"period_elapsed:{target.id}:{event.customer_id}:2"
    progress = factories.ProgressFactory(target=target, customer=event.customer, cycle_ordinal=2)
    assert progress.period.ordinal == 2 and progress.cycle_start == progress.period.starts_at


def test_a_promotion_is_made_with_its_actions():
    promotion = factories.PromotionFactory()
    assert [a.describe() for a in promotion.actions.all()] == [
        "Award 100.0000 points (regular, actual)"
    ]
    factories.PromotionActionFactory(promotion=promotion, points=Decimal(5))
    assert list(promotion.actions.values_list("position", flat=True)) == [0, 1]


def test_an_award_pays_its_events_achievement():
    award = factories.AwardFactory()
    assert award.achievement == award.event.achievement
    assert (award.customer, award.target) == (award.event.customer, award.event.target)


def test_a_list_audience_holds_the_customers_given():
    customer = factories.CustomerFactory()
    audience = factories.AudienceGroupFactory(
        organisation=customer.organisation, customers=[customer]
    )
    assert audience.member_count == 1


def test_an_issued_coupon_belongs_to_a_customer_of_its_organisation():
    coupon = factories.CouponFactory(issued=True)
    assert coupon.customer.organisation_id == coupon.organisation_id
    assert coupon.issued_at is not None
