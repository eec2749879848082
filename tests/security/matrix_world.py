"""The objects the permission matrix points at: one of each kind, all in acme.

Their names are distinctive ("Acme ...", "Asha", "9000000001"): `World.labels()` lists what
another organisation must never read on any page (a raw-id label, a filter choice, an
autocomplete answer), and `World.by_model()` gives the row to point at for each model a
foreign key can name."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from enrolment.services import enrolments_add
from evaluation.near_miss import near_miss_rule_set
from milestones.services.target_groups import template_create_from_group
from promotions.models import ConsumeFailure, DeliverySettings, Sender
from simulations.models import Simulation
from tests.factories import (
    AudienceGroupFactory,
    AwardFactory,
    CommunicationFactory,
    CouponSeriesFactory,
    CustomerFactory,
    EvaluationRunFactory,
    EventTypeFactory,
    ImportJobFactory,
    MessageFactory,
    PeriodFactory,
    PromotionFactory,
    ReprocessRunFactory,
    StoreFactory,
    TargetEventFactory,
    TargetGroupFactory,
    target_data,
)
from tests.webhooks.factories import WebhookDeliveryFactory, WebhookEndpointFactory


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
    event_type: object
    webhook_endpoint: object
    webhook_delivery: object
    simulation: object
    near_miss: object
    sender: object
    delivery_settings: object

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
            "event_type": self.event_type.pk,
            "webhook_endpoint": self.webhook_endpoint.pk,
            "delivery": self.webhook_delivery.pk,
            "simulation": self.simulation.pk,
            "near_miss": self.near_miss.pk,
            "sender": self.sender.pk,
            "delivery_settings": self.delivery_settings.pk,
            "group_type": ContentType.objects.get_for_model(self.group).pk,
        }

    def objects(self) -> list:
        return [
            self.org, self.store, self.group, self.target, self.template, self.customer,
            self.audience, self.import_job, self.promotion, self.coupon_series, self.award,
            self.evaluation_run, self.reprocess_run, self.integration_user, self.period,
            self.sub_target, self.event, self.communication, self.message, self.coupon,
            self.consume_failure, self.event_type, self.webhook_endpoint, self.webhook_delivery,
            self.near_miss, self.sender, self.delivery_settings,
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
    group = TargetGroupFactory(
        organisation=org,
        created_by=configurer,
        name="Acme spend",
        enrolment={"mode": "custom_list"},
        target_value_mode="per_customer",
        leaderboard_enabled=True,
        targets=[
            target_data(
                "Acme spend 1000",
                sub_targets=[
                    {"name": "Acme halfway", "criteria": "absolute", "value": Decimal(500)}
                ],
            )
        ],
    )
    target = group.targets.get()
    # A second milestone: a filter with a single choice is not shown at all.
    second_group = TargetGroupFactory(
        organisation=org,
        created_by=configurer,
        name="Acme visits",
        targets=[target_data("Acme visits 5", kpi="transaction_count", value=5)],
    )
    template = template_create_from_group(
        target_group=group, name="Acme spend template", user=configurer
    )
    customer = CustomerFactory(organisation=org, mobile="9000000001", name="Asha Acmeson")
    enrolments_add(target_group=group, customer_ids=[customer.pk], notify=False)
    audience = AudienceGroupFactory(
        organisation=org, name="Acme VIP", created_by=configurer, customers=[customer]
    )
    import_job = ImportJobFactory(target_group=group, created_by=configurer)
    promotion = PromotionFactory(organisation=org, created_by=configurer, name="Acme bonus")
    coupon_series = CouponSeriesFactory(
        organisation=org, code="ACMESUMMER", codes=["ACME-CODE-1", "ACME-CODE-2"]
    )
    period = PeriodFactory(target_group=group)
    event = TargetEventFactory(
        target=target, customer=customer, dedupe_key="acme-matrix-1", achieved=Decimal(1200)
    )
    award = AwardFactory(event=event, promotion=promotion)
    evaluation_run = EvaluationRunFactory(period=period)
    reprocess_run = ReprocessRunFactory(target_group=group)
    communication = CommunicationFactory(target_group=group, template="Acme says hello")
    message = MessageFactory(
        customer=customer, body="Acme message", award=award, communication=communication
    )
    webhook_endpoint = WebhookEndpointFactory(organisation=org, url="https://hooks.acme.test/in")
    sender = Sender.objects.create(organisation=org, channel="sms", sender_id="ACMEIN")
    # The simulation has no admin and no foreign key points at it: only its id is needed (it
    # is left out of `objects()`: its str, "simulation N: pending", is not distinctive).
    simulation = Simulation.objects.create(
        organisation=org, created_by=configurer, label="Acme what-if",
        input={"target_group_id": group.pk, "window": {"start": "2026-01-01", "end": "2026-01-31"}},
    )  # fmt: skip
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
            organisation=org, event=event, error="Acme failure", failed_at=timezone.now()
        ),
        event_type=EventTypeFactory(organisation=org, name="AcmeReview", attributes=["stars"]),
        webhook_endpoint=webhook_endpoint,
        webhook_delivery=WebhookDeliveryFactory(endpoint=webhook_endpoint, key="acme-fact-1"),
        simulation=simulation,
        near_miss=near_miss_rule_set(target=target, within_percent=Decimal(10), days_left=3),
        sender=sender,
        delivery_settings=DeliverySettings.objects.create(
            organisation=org, target_group=group, sms_sender=sender, delivery_offset_hours=2
        ),
    )
