"""Test data: one factory_boy factory per model.

Rows the application only ever writes through a service are made through that service, so
they are valid and complete: a milestone (`TargetGroupFactory`, `target_group_create`) has
its periods, targets, sub-targets and till; a promotion (`PromotionFactory`,
`promotion_create`) its ordered actions; an audience group (`AudienceGroupFactory`) its
members; a coupon series (`CouponSeriesFactory`) its codes. A period is one of a
milestone's (`PeriodFactory`).

A row takes its organisation from the row it belongs to (the milestone, the target, the
customer, ...): pass that row, e.g. `EnrolmentFactory(target_group=group, customer=c)`, or
reach through it, e.g. `ActivityFactory(customer__organisation=org)`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory
from django.utils import timezone
from rest_framework.authtoken.models import Token

from enrolment.audiences import audience_group_create
from enrolment.models import (
    AudienceGroup,
    Customer,
    CustomerTargetValue,
    Enrolment,
    EnrolmentSource,
    ImportJob,
)
from evaluation.events import progress_key
from evaluation.models import (
    Activity,
    EvaluationRun,
    Progress,
    ReprocessRun,
    TargetEvent,
    TargetEventType,
)
from milestones.models import (
    EventType,
    Organisation,
    Period,
    Role,
    Store,
    SubTarget,
    Target,
    TargetGroup,
    User,
)
from milestones.services.target_groups import target_group_create
from promotions.models import (
    Award,
    Communication,
    Coupon,
    CouponSeries,
    Message,
    Promotion,
    PromotionAction,
)
from promotions.services import coupon_series_create, promotion_create

YEAR_START, YEAR_END = date(2026, 1, 1), date(2026, 12, 31)


# --- API-shaped pieces of a milestone ------------------------------------------------------


def monthly_cycle(start: date, count: int | None = None) -> dict:
    """Fixed calendar monthly cycles from `start`; without `count`, as many as fit."""
    cycle = {"type": "fixed_calendar", "frequency": "monthly", "start": start}
    if count is not None:
        cycle["count"] = count
    return cycle


def target_data(name: str, kpi: str = "gross_sales", value=1000, **fields) -> dict:
    """One target of a milestone, in the API's create shape."""
    return {"name": name, "kpi": kpi, "value": Decimal(value), **fields}


# --- organisations, users, stores ----------------------------------------------------------


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    timezone = "UTC"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    organisation = factory.SubFactory(OrganisationFactory)
    role = Role.CONFIGURER
    is_staff = factory.LazyAttribute(lambda u: u.role in (Role.CONFIGURER, Role.MEMBER_CARE))
    password = factory.PostGenerationMethodCall("set_password", "pass-1234-word")

    @factory.post_generation
    def token(obj, create, extracted, **kwargs):
        obj.save()
        if create:
            Token.objects.get_or_create(user=obj)


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    organisation = factory.SubFactory(OrganisationFactory)
    code = factory.Sequence(lambda n: f"S{n}")
    name = factory.LazyAttribute(lambda s: f"Store {s.code}")


class TillFactory(StoreFactory):
    """A till of the organisation ("T1" unless told): every milestone names one. Get-or-create,
    so helpers can ask for it whether or not a test made it already."""

    class Meta:
        model = Store
        django_get_or_create = ("organisation", "code")

    code = "T1"
    is_till = True


class EventTypeFactory(factory.django.DjangoModelFactory):
    """A behavioural event of the organisation's catalogue, added by a configurer."""

    class Meta:
        model = EventType

    organisation = factory.SubFactory(OrganisationFactory)
    kind = "behavioural"
    name = factory.Sequence(lambda n: f"Event{n}")
    attributes = factory.LazyFunction(list)
    source = "configured"


# --- milestones: target groups, periods, targets, sub-targets ------------------------------


class TargetGroupFactory(factory.django.DjangoModelFactory):
    """A milestone made through `target_group_create` as the API makes it (a backdated start
    is allowed), by `created_by` (None: no one).

    Besides the declared fields it takes the rest of the API's create shape: `cycle`,
    `targets`, `till_code`, `enrolment`, `target_value_mode`, `unified_mode`, `offset_days`,
    `leaderboard_enabled`, `is_active`, ... Defaults: the year 2026 in monthly fixed calendar
    cycles, one gross-sales target of 1000 named "<name> target", the organisation's till T1
    (made if missing).
    """

    class Meta:
        model = TargetGroup

    organisation = factory.SubFactory(OrganisationFactory)
    created_by = None
    name = factory.Sequence(lambda n: f"Milestone {n}")
    start = YEAR_START
    end = YEAR_END

    @classmethod
    def _create(
        cls,
        model_class,
        *,
        organisation,
        created_by,
        name,
        start,
        end,
        cycle=None,
        till_code=None,
        targets=None,
        **data,
    ):
        data = {
            "name": name,
            "start": start,
            "end": end,
            "till_code": till_code or TillFactory(organisation=organisation).code,
            "cycle": cycle or monthly_cycle(start),
            "targets": targets or [target_data(f"{name} target")],
            **data,
        }
        group, _ = target_group_create(
            organisation=organisation, data=data, user=created_by, via_api=True
        )
        return group


class PeriodFactory(factory.django.DjangoModelFactory):
    """A cycle of a milestone: periods are written with their milestone, so this is the
    milestone's period `ordinal` (the first unless told), on a new milestone unless given."""

    class Meta:
        model = Period

    target_group = factory.SubFactory(TargetGroupFactory)
    ordinal = 1

    @classmethod
    def _create(cls, model_class, *, target_group, ordinal):
        return target_group.periods.get(ordinal=ordinal)


class TargetFactory(factory.django.DjangoModelFactory):
    """A further target of a milestone, written directly (a milestone's own targets come with
    it: `TargetGroupFactory(targets=[...])`). Gross sales of transactions; give the `entity`
    with another `kpi`."""

    class Meta:
        model = Target

    target_group = factory.SubFactory(TargetGroupFactory)
    organisation = factory.SelfAttribute("target_group.organisation")
    ordinal = factory.LazyAttribute(lambda o: o.target_group.targets.count() + 1)
    name = factory.Sequence(lambda n: f"Target {n}")
    kpi = "gross_sales"
    entity = "transaction"
    value = Decimal(1000)


class SubTargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubTarget

    target = factory.SubFactory(TargetFactory)
    name = factory.Sequence(lambda n: f"Sub-target {n}")
    criteria = "percentage"
    value = Decimal(50)


def _target_of_a_new_milestone():
    return TargetGroupFactory().targets.get()


# --- enrolment: customers, audiences, enrolments, per-customer values, imports -------------


class CustomerFactory(factory.django.DjangoModelFactory):
    """A customer with a mobile in its normal form (digits; the organisation has no default
    country unless a test gives it one)."""

    class Meta:
        model = Customer

    organisation = factory.SubFactory(OrganisationFactory)
    mobile = factory.Sequence(lambda n: f"98{n:08d}")
    name = ""


class AudienceGroupFactory(factory.django.DjangoModelFactory):
    """An audience group made through `audience_group_create`: a list of `customers` (or
    `customer_ids`) unless told `kind="filter", filter={...}` or `kind="merge", sources=[ids]`."""

    class Meta:
        model = AudienceGroup

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Audience {n}")
    kind = "list"
    created_by = None

    @classmethod
    def _create(cls, model_class, *, created_by, customers=(), customer_ids=None, **fields):
        ids = list(customer_ids or []) + [c.pk for c in customers]
        return audience_group_create(user=created_by, customer_ids=ids, **fields)


class EnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrolment

    target_group = factory.SubFactory(TargetGroupFactory)
    organisation = factory.SelfAttribute("target_group.organisation")
    customer = factory.SubFactory(
        CustomerFactory, organisation=factory.SelfAttribute("..organisation")
    )
    source = EnrolmentSource.API


class CustomerTargetValueFactory(factory.django.DjangoModelFactory):
    """A per-customer target value for one cycle (by default of a new milestone's target)."""

    class Meta:
        model = CustomerTargetValue

    target = factory.LazyFunction(_target_of_a_new_milestone)
    organisation = factory.SelfAttribute("target.organisation")
    customer = factory.SubFactory(
        CustomerFactory, organisation=factory.SelfAttribute("..organisation")
    )
    cycle_ordinal = 1
    value = Decimal(1000)


class ImportJobFactory(factory.django.DjangoModelFactory):
    """An uploaded custom list waiting for its task (one row: a mobile and its P1 value)."""

    class Meta:
        model = ImportJob

    target_group = factory.SubFactory(
        TargetGroupFactory, enrolment={"mode": "custom_list"}, target_value_mode="per_customer"
    )
    organisation = factory.SelfAttribute("target_group.organisation")
    created_by = None
    file = factory.django.FileField(filename="values.csv", data=b"mobile,P1\n9000000001,100\n")
    original_name = "values.csv"


# --- evaluation: activities, progress, target events, runs ---------------------------------


class ActivityFactory(factory.django.DjangoModelFactory):
    """A stored transaction of 100, waiting to be tracked."""

    class Meta:
        model = Activity

    customer = factory.SubFactory(CustomerFactory)
    organisation = factory.SelfAttribute("customer.organisation")
    external_id = factory.Sequence(lambda n: f"activity-{n}")
    type = "transaction"
    occurred_at = factory.LazyFunction(timezone.now)
    payload = factory.Dict({"gross": "100", "net": "100"})


def _period_of(o):
    return o.target.target_group.periods.filter(ordinal=o.cycle_ordinal).first()


class ProgressFactory(factory.django.DjangoModelFactory):
    """A customer's progress in one cycle of a target (its fixed period's dates when it has
    one; else open from now)."""

    class Meta:
        model = Progress

    target = factory.LazyFunction(_target_of_a_new_milestone)
    organisation = factory.SelfAttribute("target.organisation")
    customer = factory.SubFactory(
        CustomerFactory, organisation=factory.SelfAttribute("..organisation")
    )
    cycle_ordinal = 1
    period = factory.LazyAttribute(_period_of)
    cycle_start = factory.LazyAttribute(
        lambda o: o.period.starts_at if o.period else timezone.now()
    )
    cycle_end = factory.LazyAttribute(lambda o: o.period.ends_at if o.period else None)
    target_value = factory.LazyAttribute(lambda o: o.target.value_for_cycle(o.cycle_ordinal))
    achieved = Decimal(0)


class TargetEventFactory(factory.django.DjangoModelFactory):
    """A target event in the outbox, not consumed yet; by default a cycle end (period
    elapsed) with the target's value as `defined`. The dedupe key is tracking's."""

    class Meta:
        model = TargetEvent

    target = factory.LazyFunction(_target_of_a_new_milestone)
    organisation = factory.SelfAttribute("target.organisation")
    target_group = factory.SelfAttribute("target.target_group")
    customer = factory.SubFactory(
        CustomerFactory, organisation=factory.SelfAttribute("..organisation")
    )
    type = TargetEventType.PERIOD_ELAPSED
    sub_target = None
    cycle_ordinal = 1
    period_name = factory.LazyAttribute(lambda o: getattr(_period_of(o), "name", ""))
    defined = factory.LazyAttribute(lambda o: o.target.value_for_cycle(o.cycle_ordinal))
    achieved = Decimal(0)
    is_target_achieved_event = factory.LazyAttribute(
        lambda o: o.type == TargetEventType.TARGET_ACHIEVED
    )
    occurred_at = factory.LazyFunction(timezone.now)
    dedupe_key = factory.LazyAttribute(
        lambda o: progress_key(
            o.type,
            o.target.id,
            o.customer.id,
            o.cycle_ordinal,
            o.sub_target.id if o.sub_target else None,
        )
    )


class EvaluationRunFactory(factory.django.DjangoModelFactory):
    """A planned cycle-end evaluation of one period (the first of a new milestone unless
    given)."""

    class Meta:
        model = EvaluationRun

    period = factory.SubFactory(PeriodFactory)
    target_group = factory.SelfAttribute("period.target_group")
    organisation = factory.SelfAttribute("period.organisation")


class ReprocessRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReprocessRun

    target_group = factory.SubFactory(TargetGroupFactory)
    organisation = factory.SelfAttribute("target_group.organisation")


# --- promotions: promotions, actions, coupons, the ledger, messages ------------------------


class PromotionFactory(factory.django.DjangoModelFactory):
    """A promotion made through `promotion_create`: on "target period elapsed", over 2026,
    always true, awarding 100 fixed points unless given other `actions` (the API's shape;
    a coupon action's `series` is a code or a `CouponSeries`)."""

    class Meta:
        model = Promotion

    organisation = factory.SubFactory(OrganisationFactory)
    created_by = None
    name = factory.Sequence(lambda n: f"Promotion {n}")
    activity = "target_period_elapsed"
    start = YEAR_START
    end = YEAR_END
    condition = "true"

    @classmethod
    def _create(cls, model_class, *, organisation, created_by, actions=None, **fields):
        if actions is None:
            actions = [{"type": "award_points", "basis": "fixed", "points": 100}]
        return promotion_create(
            organisation=organisation, data={**fields, "actions": actions}, user=created_by
        )


class PromotionActionFactory(factory.django.DjangoModelFactory):
    """One more action of a promotion, written directly after the ones it has."""

    class Meta:
        model = PromotionAction

    promotion = factory.SubFactory(PromotionFactory, actions=[])
    position = factory.LazyAttribute(lambda o: o.promotion.actions.count())
    type = "award_points"
    basis = "fixed"
    points = Decimal(100)


class CouponSeriesFactory(factory.django.DjangoModelFactory):
    """A coupon series made through `coupon_series_create`; `codes=[...]` or `generate=N`
    fill it."""

    class Meta:
        model = CouponSeries

    organisation = factory.SubFactory(OrganisationFactory)
    code = factory.Sequence(lambda n: f"SERIES{n}")

    @classmethod
    def _create(cls, model_class, **fields):
        return coupon_series_create(**fields)


class CouponFactory(factory.django.DjangoModelFactory):
    """A free code of a series; `CouponFactory(issued=True)` gives it to a customer."""

    class Meta:
        model = Coupon

    series = factory.SubFactory(CouponSeriesFactory)
    organisation = factory.SelfAttribute("series.organisation")
    code = factory.Sequence(lambda n: f"CODE-{n}")

    class Params:
        issued = factory.Trait(
            customer=factory.SubFactory(
                CustomerFactory, organisation=factory.SelfAttribute("..organisation")
            ),
            issued_at=factory.LazyFunction(timezone.now),
        )


class AwardFactory(factory.django.DjangoModelFactory):
    """A ledger row: 100 points paid by a promotion for a target event (both new unless
    given), with the event's customer, milestone, target and cycle."""

    class Meta:
        model = Award

    event = factory.SubFactory(TargetEventFactory)
    organisation = factory.SelfAttribute("event.organisation")
    promotion = factory.SubFactory(
        PromotionFactory, organisation=factory.SelfAttribute("..organisation")
    )
    achievement = factory.LazyAttribute(lambda o: o.event.achievement)
    action_index = 0
    type = "award_points"
    status = "done"
    customer = factory.SelfAttribute("event.customer")
    target_group = factory.SelfAttribute("event.target_group")
    target = factory.SelfAttribute("event.target")
    period = factory.SelfAttribute("event.period_name")
    cycle_ordinal = factory.SelfAttribute("event.cycle_ordinal")
    points = Decimal(100)
    points_type = "regular"
    awarded_at = factory.SelfAttribute("event.occurred_at")


class CommunicationFactory(factory.django.DjangoModelFactory):
    """A milestone's start-of-period SMS (the old flow's communications)."""

    class Meta:
        model = Communication

    target_group = factory.SubFactory(TargetGroupFactory)
    organisation = factory.SelfAttribute("target_group.organisation")
    kind = "period_start"
    channel = "sms"
    template = "A new cycle starts"


class MessageFactory(factory.django.DjangoModelFactory):
    """An SMS to a customer, pending in the outbox."""

    class Meta:
        model = Message

    customer = factory.SubFactory(CustomerFactory)
    organisation = factory.SelfAttribute("customer.organisation")
    channel = "sms"
    recipient = factory.LazyAttribute(lambda o: o.customer.mobile)
    body = "Hello"
