"""The outbox: every fact writes its deliveries in its own transaction, through the real
writers (tracking, cycle-end evaluation, the promotions consumer, enrolment, the milestone
switch), with the API's shapes; once per fact; only for active subscribed endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from enrolment.models import EnrolmentNotification
from enrolment.services import enrolments_add
from evaluation.cycle_end import evaluate_cycles
from evaluation.models import TargetEvent
from evaluation.signals import target_events_written
from milestones.services.target_groups import target_group_set_active
from promotions.consumer import target_events_consume
from promotions.models import Award
from promotions.services import promotion_create
from tests.factories import CustomerFactory, TargetGroupFactory
from tests.webhooks.conftest import spend
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.models import WebhookDelivery
from webhooks.sending import deliveries_send

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


def bodies(event_type=None):
    qs = WebhookDelivery.objects.order_by("id")
    if event_type:
        qs = qs.filter(event_type=event_type)
    return [d.body for d in qs]


def test_reaching_a_target_writes_sub_target_and_target_deliveries_with_the_api_shape(
    org, spend_milestone, endpoint, api, integration
):
    spend(org, 1200)
    types = list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))
    assert types == ["sub_target.achieved", "target.achieved"]
    api_rows = {r["id"]: r for r in api(integration).get("/api/v1/target-events/").json()}
    for body in bodies():
        assert body["data"] == api_rows[body["data"]["id"]]
        assert body["timestamp"].endswith("Z")
    (achieved,) = bodies("target.achieved")
    assert achieved["type"] == "target.achieved"
    assert achieved["data"]["target_name"] == "Spend 1000"
    assert (achieved["data"]["achieved"], achieved["data"]["defined"]) == (1200.0, 1000.0)


def test_a_rolled_back_fact_leaves_no_delivery(org, spend_milestone, endpoint):
    with pytest.raises(Boom), transaction.atomic():
        spend(org, 1200)
        assert WebhookDelivery.objects.count() == 2  # written with the events...
        raise Boom
    assert TargetEvent.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0  # ...and gone with them


def test_the_same_fact_written_twice_is_one_delivery_per_endpoint(org, spend_milestone, endpoint):
    spend(org, 1200)
    ids = list(TargetEvent.objects.values_list("id", flat=True))
    target_events_written.send(sender=TargetEvent, organisation_id=org.id, event_ids=ids)
    assert WebhookDelivery.objects.count() == 2


def test_only_the_organisations_active_subscribed_endpoints_get_a_delivery(
    org, other_org, spend_milestone, receiver
):
    wanted = WebhookEndpointFactory(organisation=org, url=receiver.url, events=["target.achieved"])
    WebhookEndpointFactory(organisation=org, url=receiver.url, events=["award.created"])
    off = WebhookEndpointFactory(organisation=org, url=receiver.url, events=["target.achieved"])
    off.is_active = False
    off.save()
    WebhookEndpointFactory(organisation=other_org, url=receiver.url, events=["target.achieved"])
    spend(org, 1200)
    rows = list(WebhookDelivery.objects.values_list("endpoint_id", "event_type"))
    assert rows == [(wanted.pk, "target.achieved")]


def test_nobody_subscribed_costs_one_query_per_batch(
    org, spend_milestone, django_assert_num_queries
):
    spend(org, 1200)
    ids = list(TargetEvent.objects.values_list("id", flat=True))
    from webhooks.receivers import target_events_written as receiver

    with django_assert_num_queries(1):
        receiver(organisation_id=org.id, event_ids=ids)


def test_the_outbox_write_costs_the_same_queries_for_one_event_or_forty(
    org, spend_milestone, endpoint, django_assert_max_num_queries
):
    from webhooks.receivers import target_events_written as receiver

    for i in range(40):
        spend(org, 1200, mobile=f"90000100{i:02d}", key=f"t-{i}")
    ids = list(TargetEvent.objects.values_list("id", flat=True))
    WebhookDelivery.objects.all().delete()
    with django_assert_max_num_queries(4):  # endpoints, events, insert (+ savepoint)
        receiver(organisation_id=org.id, event_ids=ids[:1])
    WebhookDelivery.objects.all().delete()
    with django_assert_max_num_queries(4):
        receiver(organisation_id=org.id, event_ids=ids)
    assert WebhookDelivery.objects.count() == 80


def test_a_cycle_end_writes_cycle_elapsed_for_each_enrolled_customer(
    org, spend_milestone, endpoint
):
    spend(org, 300)
    spend(org, 1200, mobile="9000000002", key="t-2")
    WebhookDelivery.objects.all().delete()
    evaluate_cycles(as_of=datetime(2026, 4, 2, tzinfo=UTC))
    elapsed = bodies("cycle.elapsed")
    assert len(elapsed) == 2 * 3  # two customers, January to March
    assert {b["data"]["type"] for b in elapsed} == {"period_elapsed"}
    march = [b["data"]["achieved"] for b in elapsed if b["data"]["cycle_ordinal"] == 3]
    assert sorted(march) == [300.0, 1200.0]


def test_awards_paid_and_capped_are_award_created_and_award_capped_with_the_api_shape(
    org, spend_milestone, endpoint, configurer, api, integration
):
    promotion_create(
        organisation=org,
        user=configurer,
        data={"name": "Bonus", "activity": "target_period_elapsed",
              "start": datetime(2026, 1, 1).date(), "end": datetime(2026, 12, 31).date(),
              "condition": "currentEvent.isTargetAchievedEvent",
              "cap_points_total": 150,
              "actions": [{"type": "award_points", "basis": "fixed", "points": 100}]},
    )  # fmt: skip
    spend(org, 1200)
    spend(org, 1200, mobile="9000000002", key="t-2")
    target_events_consume(event_ids=list(TargetEvent.objects.values_list("id", flat=True)))
    statuses = list(Award.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["done", "capped"]
    created, capped = bodies("award.created"), bodies("award.capped")
    assert len(created) == len(capped) == 1
    api_rows = {r["id"]: r for r in api(integration).get("/api/v1/awards/").json()}
    assert created[0]["data"] == api_rows[created[0]["data"]["id"]]
    assert capped[0]["data"] == api_rows[capped[0]["data"]["id"]]
    assert capped[0]["data"]["reason"].startswith("Points cap reached")


def test_a_failed_consumption_rolls_its_award_deliveries_back(
    org, spend_milestone, endpoint, configurer, monkeypatch
):
    from promotions import consumer

    promotion_create(
        organisation=org,
        user=configurer,
        data={"name": "Bonus", "activity": "target_period_elapsed",
              "start": datetime(2026, 1, 1).date(), "end": datetime(2026, 12, 31).date(),
              "condition": "currentEvent.isTargetAchievedEvent",
              "actions": [{"type": "award_points", "basis": "fixed", "points": 100}]},
    )  # fmt: skip
    spend(org, 1200)

    def broken(**kwargs):
        raise RuntimeError("messaging is down")

    monkeypatch.setattr(consumer.messaging, "period_end_communications", broken)
    monkeypatch.setattr(consumer._Cache, "period_end", lambda self, gid: ["x"])
    TargetEvent.objects.update(type="period_elapsed")  # reaches the failing part
    ids = list(TargetEvent.objects.values_list("id", flat=True))
    assert target_events_consume(event_ids=ids).failed == 2  # both roll back
    assert Award.objects.count() == 0
    assert not WebhookDelivery.objects.filter(event_type__startswith="award.").exists()
    monkeypatch.undo()  # messaging is back: the retry pays, and writes its delivery once
    target_events_consume(event_ids=ids)
    assert Award.objects.count() == 1
    assert WebhookDelivery.objects.filter(event_type="award.created").count() == 1


def test_enrolment_sends_the_enrolment_payload_and_delivery_marks_it_sent(
    org, receiver, configurer
):
    group = TargetGroupFactory(
        organisation=org, name="Visits", enrolment={"mode": "custom_list"},
        send_enrolment_trigger=True,
    )  # fmt: skip
    endpoint = WebhookEndpointFactory(
        organisation=org, url=receiver.url, events=["customer.enrolled"]
    )
    customer = CustomerFactory(organisation=org)
    enrolments_add(target_group=group, customer_ids=[customer.pk], notify=True)
    notification = EnrolmentNotification.objects.get()
    (body,) = bodies("customer.enrolled")
    assert body["data"] == notification.payload
    assert body["data"]["eventName"] == "targetLoyaltyCustomerEnrollment"
    assert body["data"]["data"]["eventId"] == notification.pk
    assert body["data"]["data"]["customerIdentifiers"]["customerId"] == customer.pk
    assert notification.sent_at is None

    deliveries_send()
    assert len(receiver.requests) == 1
    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert endpoint.deliveries.get().status == "delivered"


def test_switching_a_milestone_off_and_on_sends_deactivated_then_activated(
    org, spend_milestone, endpoint, configurer
):
    target_group_set_active(target_group=spend_milestone, active=False, user=configurer)
    target_group_set_active(target_group=spend_milestone, active=False, user=configurer)  # no-op
    target_group_set_active(target_group=spend_milestone, active=True, user=configurer)
    rows = [(b["type"], b["data"]["id"], b["data"]["is_active"]) for b in bodies()]
    assert rows == [
        ("milestone.deactivated", spend_milestone.pk, False),
        ("milestone.activated", spend_milestone.pk, True),
    ]
    assert bodies()[0]["data"]["name"] == "Spend"
    assert bodies()[0]["data"]["status"] in ("upcoming", "live", "ended")


def test_a_near_miss_target_event_is_target_near_miss(org, spend_milestone, endpoint):
    from tests.factories import TargetEventFactory

    event = TargetEventFactory(target=spend_milestone.targets.get(), type="near_miss")
    target_events_written.send(sender=TargetEvent, organisation_id=org.id, event_ids=[event.pk])
    (body,) = bodies("target.near_miss")
    assert (body["data"]["id"], body["data"]["type"]) == (event.pk, "near_miss")
