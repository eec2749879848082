"""The objects the permission matrix points at: one of each kind, all in acme.

Their names are distinctive ("Acme ...", "Asha", "9000000001"): `World.labels()` lists what
another organisation must never read on any page (a raw-id label, a filter choice, an
autocomplete answer), and `World.by_model()` gives the row to point at for each model a
foreign key can name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.files.base import ContentFile
from django.utils import timezone

from enrolment.audiences import audience_group_create
from enrolment.models import Customer, ImportJob
from enrolment.services import enrolments_add
from evaluation.models import EvaluationRun, ReprocessRun, TargetEvent
from milestones.services.target_groups import target_group_create, template_create_from_group
from promotions.models import Award, Communication, ConsumeFailure, Message
from promotions.services import coupon_series_create, promotion_create
from tests.factories import StoreFactory


@dataclass
class World:
    org: object
    store: object
    group: object
    target: object
    template: object
    customer: object
    audience: object
    import_job: object
    promotion: object
    coupon_series: object
    award: object
    evaluation_run: object
    reprocess_run: object
    integration_user: object
    period: object
    sub_target: object
    event: object
    communication: object
    message: object
    coupon: object
    second_group: object
    consume_failure: object

    def ids(self) -> dict[str, int]:
        """Values for the URL parameters of every route."""
        return {
            "store": self.store.pk,
            "group": self.group.pk,
            "target": self.target.pk,
            "template": self.template.pk,
            "customer": self.customer.pk,
            "audience": self.audience.pk,
            "import": self.import_job.pk,
            "promotion": self.promotion.pk,
            "coupon_series": self.coupon_series.pk,
            "award": self.award.pk,
            "consume_failure": self.consume_failure.pk,
            "evaluation_run": self.evaluation_run.pk,
            "reprocess_run": self.reprocess_run.pk,
            "org": self.org.pk,
            "user": self.integration_user.pk,
        }

    def objects(self) -> list:
        return [
            self.org, self.store, self.group, self.target, self.template, self.customer,
            self.audience, self.import_job, self.promotion, self.coupon_series, self.award,
            self.evaluation_run, self.reprocess_run, self.integration_user, self.period,
            self.sub_target, self.event, self.communication, self.message, self.coupon,
            self.consume_failure,
        ]  # fmt: skip

    def by_model(self) -> dict:
        """The acme row a foreign key to each model can point at."""
        return {type(obj): obj for obj in self.objects()}

    def labels(self) -> set[str]:
        """What shows acme's data: every object's label, the customer's mobile, the names."""
        return {str(obj) for obj in self.objects()} | {
            self.customer.mobile,
            self.customer.name,
            self.org.name,
            self.integration_user.username,
            self.second_group.name,
        }


def build_world(org, configurer, integration) -> World:
    store = StoreFactory(organisation=org, code="S1", name="Acme Mall")
    StoreFactory(organisation=org, code="T1", is_till=True)
    group, _ = target_group_create(
        organisation=org,
        user=configurer,
        via_api=True,
        data={
            "name": "Acme spend",
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "till_code": "T1",
            "cycle": {"type": "fixed_calendar", "frequency": "monthly",
                      "start": date(2026, 1, 1), "count": 12},
            "enrolment": {"mode": "custom_list"},
            "target_value_mode": "per_customer",
            "leaderboard_enabled": True,
            "targets": [{"name": "Acme spend 1000", "kpi": "gross_sales", "value": Decimal(1000),
                         "sub_targets": [{"name": "Acme halfway", "criteria": "absolute",
                                          "value": Decimal(500)}]}],
        },
    )  # fmt: skip
    target = group.targets.get()
    # A second milestone: a filter with a single choice is not shown at all.
    second_group, _ = target_group_create(
        organisation=org,
        user=configurer,
        via_api=True,
        data={
            "name": "Acme visits",
            "till_code": "T1",
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "cycle": {"type": "fixed_calendar", "frequency": "monthly",
                      "start": date(2026, 1, 1), "count": 12},
            "enrolment": {"mode": "all_customers"},
            "targets": [{"name": "Acme visits 5", "kpi": "transaction_count", "value": Decimal(5)}],
        },
    )  # fmt: skip
    template = template_create_from_group(
        target_group=group, name="Acme spend template", user=configurer
    )
    customer = Customer.objects.create(organisation=org, mobile="9000000001", name="Asha Acmeson")
    enrolments_add(target_group=group, customer_ids=[customer.pk], notify=False)
    audience = audience_group_create(
        organisation=org, name="Acme VIP", kind="list", user=configurer, customer_ids=[customer.pk]
    )
    import_job = ImportJob.objects.create(
        organisation=org,
        target_group=group,
        created_by=configurer,
        file=ContentFile(b"mobile,P1\n9000000001,100\n", name="values.csv"),
        original_name="values.csv",
    )
    promotion = promotion_create(
        organisation=org,
        user=configurer,
        data={"name": "Acme bonus", "activity": "target_period_elapsed", "start": date(2026, 1, 1),
              "end": date(2026, 12, 31), "condition": "true",
              "actions": [{"type": "award_points", "basis": "fixed", "points": 100}]},
    )  # fmt: skip
    coupon_series = coupon_series_create(
        organisation=org, code="ACMESUMMER", codes=["ACME-CODE-1", "ACME-CODE-2"]
    )
    period = group.periods.order_by("ordinal").first()
    now = timezone.now()
    event = TargetEvent.objects.create(
        organisation=org,
        type="period_elapsed",
        dedupe_key="acme-matrix-1",
        customer=customer,
        target_group=group,
        target=target,
        cycle_ordinal=1,
        period_name=period.name,
        achieved=Decimal(1200),
        defined=Decimal(1000),
        occurred_at=now,
    )
    award = Award.objects.create(
        organisation=org,
        promotion=promotion,
        event=event,
        action_index=0,
        type="award_points",
        status="done",
        customer=customer,
        target_group=group,
        target=target,
        period=period.name,
        cycle_ordinal=1,
        points=Decimal(100),
        awarded_at=now,
    )
    evaluation_run = EvaluationRun.objects.create(
        organisation=org, target_group=group, period=period
    )
    reprocess_run = ReprocessRun.objects.create(organisation=org, target_group=group)
    communication = Communication.objects.create(
        organisation=org,
        target_group=group,
        kind="period_start",
        channel="sms",
        template="Acme says hello",
    )
    message = Message.objects.create(
        organisation=org,
        customer=customer,
        channel="sms",
        recipient=customer.mobile,
        body="Acme message",
        award=award,
        communication=communication,
    )
    return World(
        org=org,
        store=store,
        group=group,
        target=target,
        template=template,
        customer=customer,
        audience=audience,
        import_job=import_job,
        promotion=promotion,
        coupon_series=coupon_series,
        award=award,
        evaluation_run=evaluation_run,
        reprocess_run=reprocess_run,
        integration_user=integration,
        period=period,
        sub_target=target.sub_targets.get(),
        event=event,
        communication=communication,
        message=message,
        coupon=coupon_series.coupons.order_by("code").first(),
        second_group=second_group,
        consume_failure=ConsumeFailure.objects.create(
            organisation=org, event=event, error="Acme failure", failed_at=now
        ),
    )
