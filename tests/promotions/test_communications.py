"""Reference 004's communications (start of evaluation period, end of evaluation period,
change of target value) through the promotions' message outbox."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from enrolment.models import CustomerTargetValue
from enrolment.services import customer_create, enrolments_add
from milestones_site.celery import app as celery_app
from promotions.messaging import communications_sweep, messages_send
from promotions.models import CommunicationDelivery, Message
from promotions.services import communication_set
from tests.factories import CustomerTargetValueFactory

from .conftest import close_cycles, txn

pytestmark = pytest.mark.django_db

MARCH_2 = datetime(2026, 3, 2, tzinfo=UTC)
APRIL_2 = datetime(2026, 4, 2, tzinfo=UTC)


@pytest.fixture
def b2b(org, make_group):
    group = make_group(
        "ABC",
        target_value_mode="per_customer",
        enrolment={"mode": "custom_list"},
        targets=[{"name": "ABC", "kpi": "gross_sales", "value": Decimal(1000)}],
    )
    a = customer_create(
        organisation=org,
        identifiers={"mobile": "9000000001", "email": "a@example.com"},
        name="Asha",
    )
    b = customer_create(organisation=org, identifiers={"mobile": "9000000002"}, name="Bala")
    enrolments_add(target_group=group, customer_ids=[a.id, b.id], notify=False)
    CustomerTargetValueFactory(target=group.targets.get(), customer=a, value=2000)
    return group, a, b


def test_start_of_evaluation_period_is_sent_once_per_customer_and_cycle(b2b):
    group, a, b = b2b
    communication_set(
        target_group=group,
        kind="period_start",
        channel="sms",
        template="Hi {customer.name}, {period.name} has started: reach {target.value}.",
    )
    assert communications_sweep(now=datetime(2026, 2, 20, tzinfo=UTC)) == 0  # not started
    assert communications_sweep(now=MARCH_2) == 2
    assert sorted(Message.objects.values_list("recipient", "body")) == [
        ("9000000001", "Hi Asha, ABC P1 has started: reach 2000."),
        ("9000000002", "Hi Bala, ABC P1 has started: reach 1000."),
    ]
    assert communications_sweep(now=MARCH_2) == 0
    assert communications_sweep(now=APRIL_2) == 2  # the next cycle
    assert Message.objects.filter(body__contains="ABC P2").count() == 2


def test_end_of_evaluation_period_is_sent_when_the_cycle_is_evaluated(org, b2b, post, run):
    group, a, b = b2b
    communication_set(
        target_group=group,
        kind="period_end",
        channel="email",
        subject="{period.name} is over",
        template="You reached {achieved} of {target.value}.",
    )
    post(txn(1, "2026-03-04T10:00:00+00:00", 2500, mobile="9000000001"))
    run()
    assert not Message.objects.exists()
    close_cycles(APRIL_2)
    # Bala has no email address: nothing to send to her.
    message = Message.objects.get()
    assert (message.recipient, message.body) == ("a@example.com", "You reached 2500 of 2000.")
    assert messages_send() == 1
    assert [(m.subject, m.to) for m in mail.outbox] == [("ABC P1 is over", ["a@example.com"])]
    assert CommunicationDelivery.objects.filter(customer=b).exists()  # decided, not retried


def test_change_of_target_value_is_sent_when_a_customers_value_changes(b2b):
    group, a, b = b2b
    communication_set(
        target_group=group,
        kind="target_value_changed",
        channel="sms",
        template="{customer.name}, your target for {period.name} is now {target.value}.",
    )
    assert communications_sweep(now=MARCH_2) == 0  # the first look records the values
    CustomerTargetValue.objects.filter(customer=a).update(value=1500)
    CustomerTargetValueFactory(target=group.targets.get(), customer=b, value=1200)
    assert communications_sweep(now=MARCH_2) == 2
    assert sorted(Message.objects.values_list("body", flat=True)) == [
        "Asha, your target for ABC P1 is now 1500.",
        "Bala, your target for ABC P1 is now 1200.",
    ]
    assert communications_sweep(now=MARCH_2) == 0
    CustomerTargetValue.objects.filter(customer=a).update(value=2000)  # back again: a change
    assert communications_sweep(now=MARCH_2) == 1


def test_editing_a_milestone_checks_its_target_value_communications(
    org, make_group, django_capture_on_commit_callbacks
):
    from promotions.tasks import on_target_group_saved

    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=10), today + timedelta(days=10)
    group = make_group(
        "Now",
        start=first,
        end=last,
        target_value_mode="per_customer",
        enrolment={"mode": "custom_list"},
        cycle={"type": "custom_periods", "periods": [{"name": "Now", "start": first, "end": last}]},
    )
    a = customer_create(organisation=org, identifiers={"mobile": "9000000001"})
    enrolments_add(target_group=group, customer_ids=[a.id], notify=False)
    value = CustomerTargetValueFactory(target=group.targets.get(), customer=a, value=10)
    communication_set(
        target_group=group, kind="target_value_changed", channel="sms", template="{target.value}"
    )
    assert communications_sweep() == 0
    value.value = 12
    value.save()
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            on_target_group_saved(sender=None, target_group=group, created=False)
    finally:
        celery_app.conf.task_always_eager = False
    assert list(Message.objects.values_list("body", flat=True)) == ["12"]


def test_a_bad_communication_template_is_refused(b2b):
    from django.core.exceptions import ValidationError

    group, *_ = b2b
    with pytest.raises(ValidationError, match="Unknown placeholder"):
        communication_set(target_group=group, kind="period_start", channel="sms", template="{x}")
