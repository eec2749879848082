"""Communications' delivery settings (reference 004, "Delivery settings"): the SMS sender id,
the email sender id and name, and a delivery offset, through the message outbox."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from promotions.messaging import communications_sweep, messages_send
from promotions.models import DeliverySettings, Message, Sender
from promotions.services import communication_set
from tests.factories import OrganisationFactory

from . import test_communications

MARCH_2 = test_communications.MARCH_2
b2b = test_communications.b2b  # the fixture

pytestmark = pytest.mark.django_db


def test_the_milestone_s_senders_and_offset_reach_its_messages(b2b, org):
    group, asha, _bala = b2b
    sms = Sender.objects.create(organisation=org, channel="sms", sender_id="ACMEIN")
    email = Sender.objects.create(
        organisation=org, channel="email", sender_id="rewards@acme.test", name="Acme Rewards"
    )
    DeliverySettings.objects.create(organisation=org, target_group=group, sms_sender=sms,
                                    email_sender=email, delivery_offset_hours=2)  # fmt: skip
    for channel in ("sms", "email"):
        communication_set(target_group=group, kind="period_start", channel=channel,
                          template="Hi {customer.name}", subject="Started")  # fmt: skip
    before = timezone.now()
    communications_sweep(now=MARCH_2)
    senders = sorted(Message.objects.values_list("channel", "recipient", "sender"))
    assert senders == [
        ("email", "a@example.com", "Acme Rewards <rewards@acme.test>"),
        ("sms", "9000000001", "ACMEIN"),
        ("sms", "9000000002", "ACMEIN"),
    ]
    for m in Message.objects.all():
        assert before + timedelta(hours=2) <= m.send_after <= timezone.now() + timedelta(hours=2)
    assert messages_send() == 0 and mail.outbox == []  # not before the offset
    Message.objects.update(send_after=timezone.now() - timedelta(minutes=1))
    assert messages_send() == 1
    assert mail.outbox[0].from_email == "Acme Rewards <rewards@acme.test>"


def test_without_settings_messages_go_at_once_from_the_default_sender(b2b):
    group, _a, _b = b2b
    communication_set(target_group=group, kind="period_start", channel="email",
                      template="Hi", subject="Started")  # fmt: skip
    communications_sweep(now=MARCH_2)
    assert Message.objects.get().send_after is None
    assert messages_send() == 1 and mail.outbox[0].from_email == "milestones@localhost"


@pytest.mark.parametrize(
    "channel, sender_id, name, field",
    [("sms", "AC", "", "sender_id"), ("sms", "ACME-IN!", "", "sender_id"),
     ("email", "not-an-address", "", "sender_id"), ("sms", "ACMEIN", "Acme", "name")],
)  # fmt: skip
def test_a_bad_sender_is_refused_at_its_field(org, channel, sender_id, name, field):
    with pytest.raises(ValidationError) as refused:
        Sender(organisation=org, channel=channel, sender_id=sender_id, name=name).full_clean()
    assert field in refused.value.message_dict


def test_settings_pick_only_the_organisation_s_senders_of_the_right_channel(
    b2b,
    org,
    admin_client_for,
    configurer,
):
    group, _a, _b = b2b
    Sender.objects.create(organisation=org, channel="sms", sender_id="ACMEIN")
    Sender.objects.create(organisation=org, channel="email", sender_id="hi@acme.test")
    other = OrganisationFactory(slug="other-co")
    Sender.objects.create(organisation=other, channel="sms", sender_id="GLOBEX")
    html = admin_client_for(configurer).get("/admin/promotions/deliverysettings/add/")
    page = html.content.decode()
    sms_select = page.split('name="sms_sender"')[1].split("</select>")[0]
    assert (
        "ACMEIN" in sms_select and "GLOBEX" not in sms_select and "hi@acme.test" not in sms_select
    )
    wrong = DeliverySettings(organisation=org, target_group=group,
                             sms_sender=Sender.objects.get(sender_id="GLOBEX"), delivery_offset_hours=800)  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        wrong.full_clean()
    assert set(refused.value.message_dict) == {"sms_sender", "delivery_offset_hours"}
