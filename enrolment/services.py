"""Writes for customers and enrolments."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from common.bulk import insert_rows, pg_array, references_held
from milestones.models import EnrolmentMode, Organisation, Target, TargetGroup

from . import signals
from .identifiers import IDENTIFIER_TYPES, IdentifierError, country_of, normalise
from .models import Customer, CustomerTargetValue, Enrolment, EnrolmentSource
from .notifications import notifications_write
from .selectors import customer_lookup

CHUNK = 2000


@transaction.atomic
def customer_get_or_create(
    *, organisation, identifiers: dict, create: bool = True, **fields
) -> tuple[Customer | None, bool]:
    """Find the customer by any identifier, or create one with all the given identifiers."""
    customer = customer_lookup(organisation=organisation, identifiers=identifiers)
    if customer is not None or not create:
        return customer, False
    country = country_of(organisation)
    values = {
        k: normalise(k, v, country=country)
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


def auto_enrol_on_activity(*, customer: Customer, target_groups) -> list[int]:
    """'All customers' milestones: a loyalty customer's first tracked activity enrols them.

    Returns the ids of the target groups the customer is (now) actively enrolled in, among
    those given. The one-customer form of `auto_enrol_on_activities`.
    """
    active = auto_enrol_on_activities(
        wanted={customer.id: list(target_groups)},
        loyalty={customer.id: customer.is_loyalty_member},
        organisation_id=customer.organisation_id,
    )
    return sorted(active[customer.id])


def auto_enrol_on_activities(
    *, wanted: dict[int, list[TargetGroup]], loyalty: dict[int, bool], organisation_id: int
) -> dict[int, set[int]]:
    """Batch form of `auto_enrol_on_activity` for many customers at once (tracking batches).

    `wanted` maps a customer id to the target groups its activities matched; `loyalty` says
    which customers are loyalty members. Returns, per customer, the ids of the groups it is
    actively enrolled in among those. A fixed number of queries: one read, one bulk insert,
    then the notifications and the announcement once per newly joined group.
    """
    customer_ids = list(wanted)
    group_ids = {g.id for groups in wanted.values() for g in groups}
    rows = Enrolment.objects.filter(
        organisation_id=organisation_id, customer_id__in=customer_ids, target_group_id__in=group_ids
    ).values_list("customer_id", "target_group_id", "is_active")
    known: dict[int, dict[int, bool]] = defaultdict(dict)
    for customer_id, group_id, is_active in rows:
        known[customer_id][group_id] = is_active
    active = {c: {g for g, on in known[c].items() if on} for c in customer_ids}
    new_by_group: dict[int, list[int]] = defaultdict(list)
    groups_by_id = {}
    for customer_id, groups in wanted.items():
        if not loyalty.get(customer_id, True):
            continue
        for g in groups:
            if g.enrolment_mode == EnrolmentMode.ALL_CUSTOMERS and g.id not in known[customer_id]:
                new_by_group[g.id].append(customer_id)
                groups_by_id[g.id] = g
                active[customer_id].add(g.id)
    if new_by_group:
        _insert_auto_enrolments(organisation_id, new_by_group)
        for gid, cids in new_by_group.items():
            _announce(groups_by_id[gid], cids, EnrolmentSource.ALL_CUSTOMERS)
    return active


def _insert_auto_enrolments(organisation_id: int, new_by_group: dict[int, list[int]]) -> None:
    """'All customers' enrolments, skipping any already there. On PostgreSQL the pairs go as
    two array parameters (no model instances: tracking's first activities create tens of
    thousands of these per batch), their references checked set-based when the role may."""
    groups = [gid for gid, cids in new_by_group.items() for _ in cids]
    customers = [cid for cids in new_by_group.values() for cid in cids]
    if connection.vendor != "postgresql":
        insert_rows(
            Enrolment,
            [
                Enrolment(
                    organisation_id=organisation_id,
                    target_group_id=gid,
                    customer_id=cid,
                    source=EnrolmentSource.ALL_CUSTOMERS,
                )
                for gid, cid in zip(groups, customers, strict=True)
            ],
            ignore_conflicts=True,
        )
        return
    with (
        connection.cursor() as cursor,
        references_held(
            cursor,
            {TargetGroup: new_by_group, Customer: customers},
            organisation_id=organisation_id,
        ),
    ):
        cursor.execute(
            f"INSERT INTO {Enrolment._meta.db_table} (organisation_id, target_group_id, "
            "customer_id, source, is_active, enrolled_at) "
            "SELECT %s, u.g, u.c, %s, true, %s FROM unnest(%s::bigint[], %s::bigint[]) AS u(g, c) "
            "ON CONFLICT DO NOTHING",
            [
                organisation_id,
                EnrolmentSource.ALL_CUSTOMERS,
                timezone.now(),
                pg_array(groups),
                pg_array(customers),
            ],
        )


# --- customers ---------------------------------------------------------------------------------


@transaction.atomic
def customer_create(
    *,
    organisation: Organisation,
    identifiers: dict,
    name: str = "",
    attributes: dict | None = None,
    joined_on=None,
    is_loyalty_member: bool = True,
) -> Customer:
    """A new customer; every identifier must be well formed and not used by another customer."""
    errors: dict[str, list[str]] = {}
    values = {}
    country = country_of(organisation)
    for kind in IDENTIFIER_TYPES:
        raw = identifiers.get(kind)
        if raw in (None, ""):
            continue
        try:
            values[kind] = normalise(kind, raw, country=country)
        except IdentifierError as exc:
            errors.setdefault(kind, []).append(str(exc))
            continue
        other = Customer.objects.filter(organisation=organisation, **{kind: values[kind]}).first()
        if other is not None:
            errors.setdefault(kind, []).append(
                f"Customer #{other.id} already has the {kind.replace('_', ' ')} {values[kind]}."
            )
    if not values and not errors:
        errors["non_field_errors"] = ["Give at least one identifier: mobile, email or external_id."]
    if attributes is not None and not isinstance(attributes, dict):
        errors["attributes"] = ["Attributes are a JSON object of name -> value."]
    if errors:
        raise ValidationError(errors)
    customer = Customer(
        organisation=organisation,
        name=name or "",
        attributes=attributes or {},
        joined_on=joined_on,
        is_loyalty_member=is_loyalty_member,
        **values,
    )
    customer.full_clean(exclude=["organisation"])
    customer.save()
    return customer


def customers_get_or_create_bulk(
    *, organisation_id: int, identifier_type: str, identifiers: list[str], create: bool
) -> tuple[dict[str, int], int]:
    """Normalised identifiers -> customer id, creating the missing ones when asked.

    Set-based: one read, at most one insert and one re-read. Returns (mapping, created).
    """
    found: dict[str, int] = {}
    for start in range(0, len(identifiers), CHUNK):
        chunk = identifiers[start : start + CHUNK]
        found.update(
            Customer.objects.filter(
                organisation_id=organisation_id, **{f"{identifier_type}__in": chunk}
            ).values_list(identifier_type, "id")
        )
    missing = [i for i in dict.fromkeys(identifiers) if i not in found]
    if not missing or not create:
        return found, 0
    Customer.objects.bulk_create(
        [Customer(organisation_id=organisation_id, **{identifier_type: i}) for i in missing],
        ignore_conflicts=True,
        batch_size=CHUNK,
    )
    for start in range(0, len(missing), CHUNK):
        found.update(
            Customer.objects.filter(
                organisation_id=organisation_id,
                **{f"{identifier_type}__in": missing[start : start + CHUNK]},
            ).values_list(identifier_type, "id")
        )
    return found, len(missing)


# --- enrolments --------------------------------------------------------------------------------


def _announce(target_group: TargetGroup, customer_ids: list[int], source: str) -> None:
    """Send `customers_enrolled` once the enrolling transaction has committed."""
    if not customer_ids:
        return
    ids = list(customer_ids)

    def send():
        for start in range(0, len(ids), signals.SIGNAL_CHUNK):
            signals.customers_enrolled.send(
                sender=Enrolment,
                target_group=target_group,
                customer_ids=ids[start : start + signals.SIGNAL_CHUNK],
                source=source,
            )

    transaction.on_commit(send)


@transaction.atomic
def enrolments_add(
    *,
    target_group: TargetGroup,
    customer_ids,
    source: str = EnrolmentSource.API,
    notify: bool | None = None,
) -> list[int]:
    """Enrol many customers (new rows, or inactive enrolments re-activated); idempotent.

    Writes the enrolment notifications when `notify` (default: the milestone's "send
    enrolment trigger" switch) and announces `customers_enrolled` after commit. Returns the
    ids of the customers newly enrolled.
    """
    ids = sorted(set(customer_ids))
    newly: list[int] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        existing = dict(
            Enrolment.objects.filter(target_group=target_group, customer_id__in=chunk).values_list(
                "customer_id", "is_active"
            )
        )
        new = [c for c in chunk if c not in existing]
        inactive = [c for c, active in existing.items() if not active]
        Enrolment.objects.bulk_create(
            [
                Enrolment(
                    organisation_id=target_group.organisation_id,
                    target_group=target_group,
                    customer_id=c,
                    source=source,
                )
                for c in new
            ],
            ignore_conflicts=True,
        )
        if inactive:
            Enrolment.objects.filter(
                target_group=target_group, customer_id__in=inactive, is_active=False
            ).update(is_active=True)
        newly.extend(new)
        newly.extend(inactive)
    if notify is None:
        notify = target_group.send_enrolment_trigger
    if notify and newly:
        notifications_write(target_group=target_group, customer_ids=newly, source=source)
    _announce(target_group, newly, source)
    return newly


@transaction.atomic
def enrolments_deactivate(
    *, target_group: TargetGroup, customer_ids, source: str | None = None
) -> int:
    """Un-enrol customers (the rows stay, inactive, for history). With `source`, only the
    enrolments that came from that source. Returns how many were active."""
    ids = sorted(set(customer_ids))
    changed = 0
    for start in range(0, len(ids), CHUNK):
        qs = Enrolment.objects.filter(
            target_group=target_group, customer_id__in=ids[start : start + CHUNK], is_active=True
        )
        if source is not None:
            qs = qs.filter(source=source)
        changed += qs.update(is_active=False)
    return changed


def enrolment_remove(*, target_group: TargetGroup, customer: Customer) -> Enrolment:
    """Un-enrol one customer by hand; ValidationError if they were never enrolled.

    The row stays (inactive) and its source becomes "api": an audience group's refresh does
    not enrol them again; an explicit enrolment or upload does.
    """
    enrolment = Enrolment.objects.filter(target_group=target_group, customer=customer).first()
    if enrolment is None:
        raise ValidationError({"customer": [f"Customer #{customer.id} is not in this milestone."]})
    if enrolment.is_active or enrolment.source != EnrolmentSource.API:
        enrolment.is_active = False
        enrolment.source = EnrolmentSource.API
        enrolment.save(update_fields=["is_active", "source"])
    return enrolment


@transaction.atomic
def enrolments_add_by_identifiers(
    *, target_group: TargetGroup, customers: list[dict], source: str = EnrolmentSource.API
) -> dict:
    """The API's enrol call: [{"mobile": ...}, ...]. All or nothing: any bad item is a 400
    naming its position; unknown customers are created when the organisation allows it."""
    org = target_group.organisation
    errors: dict[str, list[str]] = {}
    resolved: list[Customer] = []
    created = 0
    for i, identifiers in enumerate(customers):
        try:
            customer, was_created = customer_get_or_create(
                organisation=org,
                identifiers=identifiers if isinstance(identifiers, dict) else {},
                create=org.auto_create_customers,
            )
        except IdentifierError as exc:
            errors.setdefault("customers", []).append(f"Item {i + 1}: {exc}")
            continue
        if customer is None:
            errors.setdefault("customers", []).append(
                f"Item {i + 1}: no such customer, and this organisation does not create "
                "customers automatically."
            )
            continue
        created += int(was_created)
        resolved.append(customer)
    if errors:
        raise ValidationError(errors)
    newly = enrolments_add(
        target_group=target_group, customer_ids=[c.id for c in resolved], source=source
    )
    return {
        "enrolled": len(newly),
        "already_enrolled": len({c.id for c in resolved}) - len(newly),
        "created_customers": created,
        "customer_ids": [c.id for c in resolved],
    }


# --- custom list values ------------------------------------------------------------------------


def custom_list_rows_apply(
    *,
    target_group: TargetGroup,
    targets: list[Target],
    identifier_type: str,
    rows: list[tuple[str, dict[int, Decimal | None]]],
    create_customers: bool,
    notify: bool,
    source: str = EnrolmentSource.CUSTOM_LIST,
) -> dict[str, int]:
    """Write one chunk of validated custom-list rows: customers, values, enrolments.

    A value applies to every target of the milestone for its cycle; a blank cell (None)
    deletes the customer's own value for that cycle, so the target's default applies.
    """
    org_id = target_group.organisation_id
    found, created = customers_get_or_create_bulk(
        organisation_id=org_id,
        identifier_type=identifier_type,
        identifiers=[ident for ident, _ in rows],
        create=create_customers,
    )
    upserts: list[CustomerTargetValue] = []
    clears: dict[int, list[int]] = defaultdict(list)
    for ident, values in rows:
        cid = found.get(ident)
        if cid is None:
            continue
        for ordinal, value in values.items():
            if value is None:
                clears[ordinal].append(cid)
                continue
            upserts.extend(
                CustomerTargetValue(
                    organisation_id=org_id,
                    target=t,
                    customer_id=cid,
                    cycle_ordinal=ordinal,
                    value=value,
                )
                for t in targets
            )
    if upserts:
        CustomerTargetValue.objects.bulk_create(
            upserts,
            update_conflicts=True,
            unique_fields=["target", "customer", "cycle_ordinal"],
            update_fields=["value"],
            batch_size=CHUNK,
        )
    cleared = 0
    for ordinal, cids in clears.items():
        cleared += CustomerTargetValue.objects.filter(
            target__in=targets, cycle_ordinal=ordinal, customer_id__in=cids
        ).delete()[0]
    before = len(found)
    newly = enrolments_add(
        target_group=target_group,
        customer_ids=[found[i] for i, _ in rows if i in found],
        source=source,
        notify=notify,
    )
    return {
        "created_customers": created,
        "values_written": len(upserts),
        "values_cleared": cleared,
        "newly_enrolled": len(newly),
        "customers": before,
    }
