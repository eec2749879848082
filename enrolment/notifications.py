"""`targetLoyaltyCustomerEnrollment` notifications (reference 004), written to an outbox.

One row per (target, customer): re-enrolling or re-uploading never notifies twice. The
payload fills every field of the reference schema:

- targetGroupId, targetGroupName, targetId, targetName: the milestone and the target;
- targetPeriodId, targetPeriodName, targetPeriodStartDate: the cycle the customer joins -- the
  fixed period containing today (org timezone), else the next one, else the last one; for
  per-customer cycles (cyclic window), whose dates start at the customer's first activity, the
  first cycle: id = ordinal 1, name "P1", start = the cycle start date;
- targetCycleStartDate: when the milestone's cycles begin (first period or cycle start);
- defaultTargetValue: the target's value for that cycle (a string, as in the schema);
  `targetValue` (extra) is the customer's own value when a custom list gave one;
- milestoneDetails: the ladder the customer climbs: each sub-target with its threshold for
  this customer's target value, then the target itself;
- customerIdentifiers: customerId, mobile, email, externalId;
- eventId: the outbox row's id; source: how the customer was enrolled.

The payload is built by one function, `enrolment_payload`, for every writer: with Python
values here (`notifications_write`: the API, audiences, the Python import path) and with SQL
pieces by the PostgreSQL import (`importing.pg_path`), which turns the same structure into
one JSON text expression per row. Sub-target thresholds follow `milestones.thresholds`, the
rule tracking fires at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from milestones.models import TargetGroup
from milestones.thresholds import threshold

from .models import Customer, CustomerTargetValue, EnrolmentNotification
from .signals import notifications_written

EVENT_NAME = EnrolmentNotification.EVENT_NAME


def dec_str(value: Decimal) -> str:
    """100.0000 -> '100', 12.5000 -> '12.5' (the SQL path uses trim_scale, which agrees)."""
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class CycleInfo:
    ordinal: int
    period_id: int
    period_name: str
    period_start: date
    cycles_start: date


def notification_cycle(group: TargetGroup, today: date | None = None) -> CycleInfo:
    if today is None:
        today = timezone.now().astimezone(group.organisation.tzinfo).date()
    periods = list(group.periods.order_by("ordinal"))
    if periods:
        chosen = next((p for p in periods if p.start <= today <= p.end), None)
        chosen = chosen or next((p for p in periods if p.start > today), None) or periods[-1]
        return CycleInfo(chosen.ordinal, chosen.id, chosen.name, chosen.start, periods[0].start)
    start = group.cycle_start or group.start
    return CycleInfo(1, 1, "P1", start, start)


def target_parts(group: TargetGroup, cycle: CycleInfo, source: str) -> list[dict]:
    """What every notification of one target shares (the SQL path uses it too)."""
    parts = []
    for target in group.targets.prefetch_related("sub_targets").order_by("ordinal", "id"):
        default = target.value_for_cycle(cycle.ordinal)
        parts.append(
            {
                "target": target,
                "default": default,
                "subs": [(s.name, s.criteria, s.value) for s in target.sub_targets.all()],
                "base": {
                    "targetGroupId": group.id,
                    "targetId": target.id,
                    "targetPeriodId": cycle.period_id,
                    "targetGroupName": group.name,
                    "source": source,
                    "targetCycleStartDate": cycle.cycles_start.isoformat(),
                    "targetName": target.name,
                    "targetPeriodName": cycle.period_name,
                    "targetPeriodStartDate": cycle.period_start.isoformat(),
                    "defaultTargetValue": dec_str(default),
                },
            }
        )
    return parts


def customer_identifiers(customer) -> dict:
    """`customerIdentifiers` of a customer (or of an object giving their SQL columns)."""
    return {
        "customerId": customer.id,
        "mobile": customer.mobile,
        "email": customer.email,
        "externalId": customer.external_id,
    }


def enrolment_payload(
    part: dict, *, identifiers: dict, target_value, threshold_of, event_id=None
) -> dict:
    """The `targetLoyaltyCustomerEnrollment` payload (reference 004) of one customer and one
    target: `part` is the target's shared piece (`target_parts`), `identifiers` the
    customer's (`customer_identifiers`), `target_value` the customer's value as shown (a
    string without trailing zeros), `threshold_of(criteria, value)` a sub-target's threshold
    as shown for this customer (`milestones.thresholds`), `event_id` the outbox row's id
    (None until the row has one).

    Both import backends build it here: the Python writers pass values, the PostgreSQL import
    passes SQL pieces in the same places (`importing.pg_path`)."""
    details = [
        {
            "milestoneName": name,
            "criteria": criteria,
            "value": dec_str(value),
            "thresholdValue": threshold_of(criteria, value),
        }
        for name, criteria, value in part["subs"]
    ]
    details.append(
        {
            "milestoneName": part["target"].name,
            "criteria": "target",
            "value": target_value,
            "thresholdValue": target_value,
        }
    )
    data = dict(part["base"])
    data.update(
        customerIdentifiers=identifiers,
        milestoneDetails=details,
        targetValue=target_value,
        eventId=event_id,
    )
    return {"eventName": EVENT_NAME, "data": data}


def payload_for(part: dict, customer: Customer, value: Decimal) -> dict:
    """`enrolment_payload` with Python values (eventId stamped after the insert)."""
    return enrolment_payload(
        part,
        identifiers=customer_identifiers(customer),
        target_value=dec_str(value),
        threshold_of=lambda criteria, sub_value: dec_str(threshold(criteria, sub_value, value)),
    )


def notifications_write(*, target_group: TargetGroup, customer_ids, source: str) -> int:
    """Write the enrolment notification of each target for each customer (once). Returns how
    many rows were written."""
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    cycle = notification_cycle(target_group)
    parts = target_parts(target_group, cycle, source)
    if not parts:
        return 0
    written = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        customers = Customer.objects.in_bulk(chunk)
        done = set(
            EnrolmentNotification.objects.filter(
                target_id__in=[part["target"].id for part in parts], customer_id__in=chunk
            ).values_list("target_id", "customer_id")  # the (target, customer) unique index
        )
        own = {
            (t, c): v
            for t, c, v in CustomerTargetValue.objects.filter(
                target__target_group=target_group,
                customer_id__in=chunk,
                cycle_ordinal=cycle.ordinal,
            ).values_list("target_id", "customer_id", "value")
        }
        rows = []
        for cid in chunk:
            customer = customers.get(cid)
            if customer is None:
                continue
            for part in parts:
                target = part["target"]
                if (target.id, cid) in done:
                    continue
                value = own.get((target.id, cid), part["default"])
                rows.append(
                    EnrolmentNotification(
                        organisation_id=target_group.organisation_id,
                        target_group=target_group,
                        target=target,
                        customer_id=cid,
                        source=source,
                        payload=payload_for(part, customer, value),
                    )
                )
        written += _insert(rows, target_group.id)
    return written


def _insert(rows: list[EnrolmentNotification], target_group_id: int) -> int:
    if not rows:
        return 0
    try:
        with transaction.atomic():
            created = EnrolmentNotification.objects.bulk_create(rows)
    except IntegrityError:  # a concurrent enrolment wrote some of them first
        created = EnrolmentNotification.objects.bulk_create(rows, ignore_conflicts=True)
        _stamp_event_ids(target_group_id, None)
        # ours and the racing writer's (which announced its own: the webhooks outbox keeps
        # one delivery per notification)
        ids = EnrolmentNotification.objects.filter(
            target_group_id=target_group_id,
            target_id__in={r.target_id for r in rows},
            customer_id__in={r.customer_id for r in rows},
        ).values_list("id", flat=True)
        announce_written(rows[0].organisation_id, list(ids))
        return len(created)
    pks = [r.pk for r in created if r.pk is not None]
    _stamp_event_ids(target_group_id, (min(pks), max(pks)) if pks else None)
    announce_written(rows[0].organisation_id, pks)
    return len(created)


def announce_written(organisation_id: int, ids: list[int]) -> None:
    """`signals.notifications_written`, in the writing transaction (the webhooks outbox)."""
    if ids:
        notifications_written.send(
            sender=EnrolmentNotification, organisation_id=organisation_id, notification_ids=ids
        )


def _stamp_event_ids(target_group_id: int, id_range: tuple[int, int] | None) -> None:
    """eventId = the outbox row's id, set in one statement for the rows still without one."""
    table = EnrolmentNotification._meta.db_table
    where, params = "target_group_id = %s", [target_group_id]
    if id_range is not None:
        where += " AND id BETWEEN %s AND %s"
        params += list(id_range)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} SET payload = jsonb_set(payload, '{{data,eventId}}', to_jsonb(id)) "
                f"WHERE {where} AND payload->'data'->'eventId' = 'null'::jsonb",
                params,
            )
        else:
            cursor.execute(
                f"UPDATE {table} SET payload = json_set(payload, '$.data.eventId', id) "
                f"WHERE {where} AND json_type(payload, '$.data.eventId') = 'null'",
                params,
            )
