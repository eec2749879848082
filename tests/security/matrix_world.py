"""The objects the permission matrix points at: one of each kind, all in acme."""

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
from promotions.models import Award
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
            "evaluation_run": self.evaluation_run.pk,
            "reprocess_run": self.reprocess_run.pk,
            "org": self.org.pk,
            "user": self.integration_user.pk,
        }


def build_world(org, configurer, integration) -> World:
    store = StoreFactory(organisation=org, code="S1")
    StoreFactory(organisation=org, code="T1", is_till=True)
    group, _ = target_group_create(
        organisation=org,
        user=configurer,
        via_api=True,
        data={
            "name": "Spend",
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "till_code": "T1",
            "cycle": {"type": "fixed_calendar", "frequency": "monthly",
                      "start": date(2026, 1, 1), "count": 12},
            "enrolment": {"mode": "custom_list"},
            "target_value_mode": "per_customer",
            "leaderboard_enabled": True,
            "targets": [{"name": "Spend 1000", "kpi": "gross_sales", "value": Decimal(1000)}],
        },
    )  # fmt: skip
    target = group.targets.get()
    template = template_create_from_group(
        target_group=group, name="Spend template", user=configurer
    )
    customer = Customer.objects.create(organisation=org, mobile="9000000001", name="Asha")
    enrolments_add(target_group=group, customer_ids=[customer.pk], notify=False)
    audience = audience_group_create(
        organisation=org, name="VIP", kind="list", user=configurer, customer_ids=[customer.pk]
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
        data={"name": "Bonus", "activity": "target_period_elapsed", "start": date(2026, 1, 1),
              "end": date(2026, 12, 31), "condition": "true",
              "actions": [{"type": "award_points", "basis": "fixed", "points": 100}]},
    )  # fmt: skip
    coupon_series = coupon_series_create(organisation=org, code="SUMMER10", codes=["A1", "A2"])
    period = group.periods.order_by("ordinal").first()
    now = timezone.now()
    event = TargetEvent.objects.create(
        organisation=org,
        type="period_elapsed",
        dedupe_key="matrix-1",
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
    )
