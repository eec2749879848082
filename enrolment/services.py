"""Writes for customers and enrolments."""

from django.db import IntegrityError, transaction

from milestones.models import EnrolmentMode, TargetGroup

from .identifiers import IDENTIFIER_TYPES, IdentifierError, normalise
from .models import Customer, Enrolment, EnrolmentSource
from .selectors import customer_lookup


@transaction.atomic
def customer_get_or_create(
    *, organisation, identifiers: dict, create: bool = True, **fields
) -> tuple[Customer | None, bool]:
    """Find the customer by any identifier, or create one with all the given identifiers."""
    customer = customer_lookup(organisation=organisation, identifiers=identifiers)
    if customer is not None or not create:
        return customer, False
    values = {
        k: normalise(k, v)
        for k, v in identifiers.items()
        if k in IDENTIFIER_TYPES and v not in (None, "")
    }
    try:
        with transaction.atomic():
            customer = Customer.objects.create(organisation=organisation, **values, **fields)
    except IntegrityError:
        # A concurrent request created it first.
        customer = customer_lookup(organisation=organisation, identifiers=identifiers)
        if customer is None:
            raise IdentifierError("These identifiers belong to different customers.") from None
        return customer, False
    return customer, True


def enrolment_ensure(
    *, target_group: TargetGroup, customer: Customer, source: str = EnrolmentSource.API
) -> tuple[Enrolment, bool]:
    """Enrol (or re-enrol) a customer; idempotent. Returns (enrolment, newly_enrolled)."""
    enrolment, created = Enrolment.objects.get_or_create(
        target_group=target_group,
        customer=customer,
        defaults={"organisation_id": target_group.organisation_id, "source": source},
    )
    if not created and not enrolment.is_active:
        enrolment.is_active = True
        enrolment.save(update_fields=["is_active"])
        return enrolment, True
    return enrolment, created


def auto_enrol_on_activity(*, customer: Customer, target_groups) -> list[int]:
    """'All customers' milestones: a loyalty customer's first tracked activity enrols them.

    Returns the ids of the target groups the customer is (now) actively enrolled in, among
    those given. Set-based: one read and at most one bulk insert.
    """
    groups = list(target_groups)
    active = set(
        Enrolment.objects.filter(
            customer=customer, target_group__in=groups, is_active=True
        ).values_list("target_group_id", flat=True)
    )
    if customer.is_loyalty_member:
        known = set(
            Enrolment.objects.filter(customer=customer, target_group__in=groups).values_list(
                "target_group_id", flat=True
            )
        )
        missing = [
            g
            for g in groups
            if g.enrolment_mode == EnrolmentMode.ALL_CUSTOMERS and g.id not in known
        ]
        if missing:
            Enrolment.objects.bulk_create(
                [
                    Enrolment(
                        organisation_id=customer.organisation_id,
                        target_group=g,
                        customer=customer,
                        source=EnrolmentSource.ALL_CUSTOMERS,
                    )
                    for g in missing
                ],
                ignore_conflicts=True,
            )
            active |= {g.id for g in missing}
    return sorted(active)
