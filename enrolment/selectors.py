"""Reads about customers and enrolment that tracking and the API share."""

from decimal import Decimal

from .identifiers import IDENTIFIER_TYPES, IdentifierError, normalise
from .models import Customer, CustomerTargetValue


def customer_lookup(*, organisation, identifiers: dict) -> Customer | None:
    """The customer matching any given identifier (mobile, email, external_id), or None.

    Raises IdentifierError for a malformed identifier or when none is given.
    """
    given = {
        k: v
        for k, v in (identifiers or {}).items()
        if k in IDENTIFIER_TYPES and v not in (None, "")
    }
    if not given:
        raise IdentifierError("Identify the customer by mobile, email or external_id.")
    for kind in IDENTIFIER_TYPES:
        if kind in given:
            value = normalise(kind, given[kind])
            customer = Customer.objects.filter(organisation=organisation, **{kind: value}).first()
            if customer is not None:
                return customer
    return None


def target_value_for(*, target, customer_id: int, cycle_ordinal: int) -> Decimal:
    """The customer's own value for the cycle, else the target's per-cycle value, else its default."""
    row = (
        CustomerTargetValue.objects.filter(
            target=target, customer_id=customer_id, cycle_ordinal=cycle_ordinal
        )
        .values_list("value", flat=True)
        .first()
    )
    return row if row is not None else target.value_for_cycle(cycle_ordinal)
