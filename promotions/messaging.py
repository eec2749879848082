"""Messages: one outbox for promotion messages and the old flow's communications.

A message is a row written in the same transaction as what caused it (an award, a
communication delivery). Emails are sent after commit through Django's email backend
(`django.core.mail`), each claimed with a conditional update so two senders never send
the same row; SMS rows stay `pending` in the outbox for the SMS gateway to collect.

Communications (reference 004 "Configure Communications"):
- end of evaluation period: sent when the cycle's period-elapsed event is consumed;
- start of evaluation period: a periodic sweep sends it to every enrolled customer of a
  fixed period that has started (and, for per-customer cycles, when the customer's cycle
  has begun), once per customer and cycle;
- change of target value: the sweep compares each enrolled customer's target value for
  the current cycle with the value last seen and sends it when it changed (the first
  sweep only records the values).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from enrolment.models import Customer, CustomerTargetValue, Enrolment
from evaluation.models import Progress

from .models import (
    Channel,
    Communication,
    CommunicationDelivery,
    CommunicationKind,
    DeliverySettings,
    Message,
    MessageStatus,
    TargetValueSeen,
)
from .selectors import event_target_name
from .templating import render

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
STALE_SENDING = timedelta(minutes=10)


class NoRecipient(Exception):
    pass


def recipient_for(customer: Customer, channel: str) -> str:
    if channel == Channel.SMS:
        if not customer.mobile:
            raise NoRecipient("The customer has no mobile number: the SMS was not sent.")
        return customer.mobile
    if not customer.email:
        raise NoRecipient("The customer has no email address: the email was not sent.")
    return customer.email


def message_values(
    *,
    customer: Customer,
    group=None,
    target_name: str = "",
    period: str = "",
    achieved=None,
    defined=None,
    triggers=(),
    sub_target_value=None,
    promotion=None,
    points=None,
    points_expiry=None,
    coupon_code: str = "",
) -> dict:
    """The whitelisted values a template can use (see templating.PLACEHOLDERS)."""
    values = {
        "customer.name": customer.name or "",
        "customer.mobile": customer.mobile or "",
        "customer.email": customer.email or "",
        "customer.external_id": customer.external_id or "",
        "milestone.name": group.name if group is not None else "",
        "target.name": target_name,
        "period.name": period,
        "target.value": defined,
        "achieved": achieved,
        "sub_target.name": ", ".join(triggers or ()),
        "sub_target.value": sub_target_value,
        "promotion.name": promotion.name if promotion is not None else "",
        "points": points,
        "points.expiry": points_expiry.isoformat() if points_expiry else "",
        "coupon.code": coupon_code,
    }
    if achieved is not None and defined is not None:
        achieved, defined = Decimal(achieved), Decimal(defined)
        values["gap"] = max(defined - achieved, Decimal(0))
        values["over_achievement"] = max(achieved - defined, Decimal(0))
    return values


def message_write(
    *,
    customer: Customer,
    channel: str,
    body: str,
    subject: str = "",
    award=None,
    communication=None,
    sender: str = "",
    send_after: datetime | None = None,
) -> Message:
    """Write one message to the outbox (raises NoRecipient). Emails are queued for sending
    after the transaction commits; one with a later `send_after` waits for the sweep."""
    message = Message.objects.create(
        organisation_id=customer.organisation_id,
        customer=customer,
        channel=channel,
        recipient=recipient_for(customer, channel),
        subject=subject[:200],
        body=body,
        award=award,
        communication=communication,
        sender=sender,
        send_after=send_after,
    )
    if channel == Channel.EMAIL and (send_after is None or send_after <= timezone.now()):
        queue_email(message.id)
    return message


def queue_email(message_id: int) -> None:
    def send():
        from .tasks import send_messages

        try:
            send_messages.delay([message_id])
        except Exception:  # noqa: BLE001 - broker down: the sweep sends it later
            log.warning("could not queue email %s; the sweep will send it", message_id)

    transaction.on_commit(send)


def messages_send(*, message_ids=None, limit: int = 500) -> int:
    """Send pending emails (all pending ones when no ids). Returns how many were sent."""
    qs = Message.objects.filter(channel=Channel.EMAIL, status=MessageStatus.PENDING).filter(
        Q(send_after__isnull=True) | Q(send_after__lte=timezone.now())
    )
    if message_ids is not None:
        qs = qs.filter(id__in=message_ids)
    sent = 0
    for message_id in qs.order_by("id").values_list("id", flat=True)[:limit]:
        # Claim: only one sender moves a row from pending to sending.
        claimed = Message.objects.filter(pk=message_id, status=MessageStatus.PENDING).update(
            status=MessageStatus.SENDING, attempts=F("attempts") + 1
        )
        if not claimed:
            continue
        message = Message.objects.get(pk=message_id)
        try:
            send_mail(
                message.subject or "A message from your loyalty programme",
                message.body,
                message.sender or settings.DEFAULT_FROM_EMAIL,
                [message.recipient],
            )
        except Exception as exc:  # noqa: BLE001 - any backend failure: retry later, then give up
            status = (
                MessageStatus.FAILED if message.attempts >= MAX_ATTEMPTS else MessageStatus.PENDING
            )
            Message.objects.filter(pk=message_id).update(status=status, error=str(exc)[:2000])
            continue
        Message.objects.filter(pk=message_id).update(
            status=MessageStatus.SENT, sent_at=timezone.now(), error=""
        )
        sent += 1
    return sent


def messages_release_stale(*, now: datetime | None = None) -> int:
    """Emails left 'sending' by a killed worker go back to pending (may send twice in that
    rare case: the email backend gives no way to know)."""
    now = now or timezone.now()
    return Message.objects.filter(
        status=MessageStatus.SENDING, created_at__lt=now - STALE_SENDING
    ).update(status=MessageStatus.PENDING)


# --- communications ---------------------------------------------------------------------


def delivery_settings_for(target_group_id: int) -> DeliverySettings | None:
    return (
        DeliverySettings.objects.select_related("sms_sender", "email_sender")
        .filter(target_group_id=target_group_id)
        .first()
    )


def communication_deliver(
    *, communication: Communication, customer: Customer, cycle_ordinal: int, values: dict, key=""
) -> Message | None:
    """Send a communication once per (customer, cycle, key); None if already sent or the
    customer cannot be reached (recorded without a message)."""
    try:
        with transaction.atomic():
            delivery = CommunicationDelivery.objects.create(
                organisation_id=communication.organisation_id,
                communication=communication,
                customer=customer,
                cycle_ordinal=cycle_ordinal,
                key=str(key)[:100],
            )
    except IntegrityError:
        return None
    body = render(communication.template, values)
    subject = render(communication.subject, values) if communication.subject else ""
    delivery_settings = delivery_settings_for(communication.target_group_id)
    try:
        message = message_write(
            customer=customer,
            channel=communication.channel,
            body=body,
            subject=subject,
            communication=communication,
            sender=delivery_settings.sender_for(communication.channel) if delivery_settings else "",
            send_after=timezone.now() + timedelta(hours=delivery_settings.delivery_offset_hours)
            if delivery_settings and delivery_settings.delivery_offset_hours
            else None,
        )
    except NoRecipient:
        return None
    delivery.message = message
    delivery.save(update_fields=["message"])
    return message


def period_end_communications(*, event, communications) -> list[Message]:
    """The 'end of evaluation period' communications for a consumed period-elapsed event."""
    sent = []
    for comm in communications:
        values = message_values(
            customer=event.customer,
            group=event.target_group,
            target_name=event_target_name(event),
            period=event.period_name,
            achieved=event.achieved,
            defined=event.defined,
            triggers=event.milestone_triggers,
        )
        message = communication_deliver(
            communication=comm,
            customer=event.customer,
            cycle_ordinal=event.cycle_ordinal or 0,
            values=values,
        )
        if message is not None:
            sent.append(message)
    return sent


def _current_cycles(group, customer_ids, now) -> dict[int, tuple[int, str, datetime]]:
    """customer id -> (ordinal, period name, cycle start) of the cycle running at `now`."""
    if group.has_fixed_periods:
        period = group.periods.filter(starts_at__lte=now, ends_at__gt=now).first()
        if period is None:
            return {}
        return {c: (period.ordinal, period.name, period.starts_at) for c in customer_ids}
    out = {}
    rows = (
        Progress.objects.filter(
            target__target_group=group,
            customer_id__in=customer_ids,
            cycle_start__lte=now,
        )
        .filter(Q(cycle_end__isnull=True) | Q(cycle_end__gt=now))
        .values("customer_id", "cycle_ordinal", "cycle_start")
    )
    for row in rows:
        c = row["customer_id"]
        if c not in out or row["cycle_ordinal"] > out[c][0]:
            name = f"{group.name} C{row['cycle_ordinal']}"
            out[c] = (row["cycle_ordinal"], name, row["cycle_start"])
    return out


def communications_sweep(*, now: datetime | None = None, target_group_id: int | None = None):
    """Start-of-period and change-of-target-value communications due at `now`."""
    now = now or timezone.now()
    comms = Communication.objects.filter(
        is_active=True,
        target_group__is_active=True,
        kind__in=[CommunicationKind.PERIOD_START, CommunicationKind.TARGET_VALUE_CHANGED],
    ).select_related("target_group__organisation")
    if target_group_id is not None:
        comms = comms.filter(target_group_id=target_group_id)
    sent = 0
    for comm in comms:
        with transaction.atomic():
            if comm.kind == CommunicationKind.PERIOD_START:
                sent += _period_start(comm, now)
            else:
                sent += _target_value_changed(comm, now)
    return sent


CUSTOMER_CHUNK = 2000


def _enrolled_chunks(group):
    ids = list(
        Enrolment.objects.filter(target_group=group, is_active=True)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )
    for start in range(0, len(ids), CUSTOMER_CHUNK):
        yield ids[start : start + CUSTOMER_CHUNK]


def _period_start(comm, now) -> int:
    group = comm.target_group
    targets = list(group.targets.all())
    first = targets[0] if targets else None
    sent = 0
    for chunk in _enrolled_chunks(group):
        cycles = _current_cycles(group, chunk, now)
        if not cycles:
            continue
        done = set(
            CommunicationDelivery.objects.filter(
                communication=comm, customer_id__in=list(cycles), key=""
            ).values_list("customer_id", "cycle_ordinal")
        )
        todo = {c: v for c, v in cycles.items() if (c, v[0]) not in done}
        if not todo:
            continue
        values_by = _defined_values(first, todo) if first else {}
        for customer in Customer.objects.filter(id__in=list(todo)):
            ordinal, name, _start = todo[customer.id]
            values = message_values(
                customer=customer,
                group=group,
                target_name=first.name if first else group.name,
                period=name,
                achieved=Decimal(0),
                defined=values_by.get((customer.id, ordinal)),
            )
            if communication_deliver(
                communication=comm, customer=customer, cycle_ordinal=ordinal, values=values
            ):
                sent += 1
    return sent


def _defined_values(target, cycles: dict) -> dict:
    """(customer id, ordinal) -> the customer's target value for that cycle."""
    custom = {
        (c, o): v
        for c, o, v in CustomerTargetValue.objects.filter(
            target=target, customer_id__in=list(cycles)
        ).values_list("customer_id", "cycle_ordinal", "value")
    }
    out = {}
    for c, (ordinal, *_rest) in cycles.items():
        out[(c, ordinal)] = custom.get((c, ordinal), target.value_for_cycle(ordinal))
    return out


def _target_value_changed(comm, now) -> int:
    group = comm.target_group
    sent = 0
    for target in group.targets.all():
        for chunk in _enrolled_chunks(group):
            cycles = _current_cycles(group, chunk, now)
            if not cycles:
                continue
            current = _defined_values(target, cycles)
            seen = {
                (s.customer_id, s.cycle_ordinal): s
                for s in TargetValueSeen.objects.filter(
                    communication=comm, target=target, customer_id__in=list(cycles)
                )
            }
            new_rows, changed = [], []
            for (c, ordinal), value in current.items():
                row = seen.get((c, ordinal))
                if row is None:
                    new_rows.append(
                        TargetValueSeen(
                            communication=comm,
                            customer_id=c,
                            target=target,
                            cycle_ordinal=ordinal,
                            value=value,
                        )
                    )
                elif Decimal(row.value) != Decimal(value):
                    changed.append((row, value))
            TargetValueSeen.objects.bulk_create(new_rows, ignore_conflicts=True)
            if not changed:
                continue
            changed_ids = [row.customer_id for row, _ in changed]
            customers = Customer.objects.in_bulk(changed_ids)
            achieved_by = {
                (c, o): a
                for c, o, a in Progress.objects.filter(
                    target=target, customer_id__in=changed_ids
                ).values_list("customer_id", "cycle_ordinal", "achieved")
            }
            for row, value in changed:
                customer = customers[row.customer_id]
                ordinal, name, _start = cycles[row.customer_id]
                progress = achieved_by.get((customer.id, ordinal))
                values = message_values(
                    customer=customer,
                    group=group,
                    target_name=target.name,
                    period=name,
                    achieved=progress if progress is not None else Decimal(0),
                    defined=value,
                )
                key = f"{target.id}:{Decimal(value).normalize()}:{Decimal(row.value).normalize()}"
                if communication_deliver(
                    communication=comm,
                    customer=customer,
                    cycle_ordinal=ordinal,
                    values=values,
                    key=key,
                ):
                    sent += 1
                TargetValueSeen.objects.filter(pk=row.pk).update(value=value)
    return sent
