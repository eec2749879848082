"""Merging duplicate customers, enrolment's part: the plan (which customers one mobile names
once normalised in the organisation's country), enrolment's own rows, and the last step that
folds the duplicates' identifiers into the customer kept and deletes them.

The whole merge is run by `promotions.merge` (the top engine app, the one that may import
every app whose rows point at a customer), which calls each app's part in turn inside one
transaction per merged person: enrolment (here), evaluation (`evaluation.merge`) and its own
rows. Each app knows only its own tables; imports point downward.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import F

from .identifiers import IdentifierError, country_of, normalise_mobile
from .models import (
    AudienceGroup,
    AudienceMember,
    Customer,
    CustomerTargetValue,
    Enrolment,
    EnrolmentNotification,
)

PLAN_CHUNK = 5000


class MergeRefused(Exception):
    """A merge that would lose data (rows the merge does not know how to move)."""


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class MergeGroup:
    """The customers one normalised mobile names: `into` (the oldest) keeps them all."""

    mobile: str
    into_id: int
    from_ids: list[int]
    stored: list[str]  # the mobiles as stored today, `into`'s first


@dataclass
class MergePlan:
    organisation_id: int
    country: str
    customers: int = 0  # with a mobile
    groups: list[MergeGroup] = field(default_factory=list)
    renames: list[tuple[int, str, str]] = field(default_factory=list)  # (id, stored, normal)
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (id, stored, message)


def customers_merge_plan(*, organisation, country: str | None = None) -> MergePlan:
    """Every customer's mobile normalised in the organisation's country (or `country`):
    the groups of customers that then share one (to merge, oldest first), the customers
    whose stored form changes alone (to rename), and the mobiles that do not normalise
    (left as they are, listed). Reads only."""
    country = (country if country is not None else country_of(organisation)).upper()
    plan = MergePlan(organisation_id=organisation.id, country=country)
    if not country:
        return plan
    by_form: dict[str, list[tuple]] = {}
    rows = (
        Customer.objects.filter(organisation=organisation, mobile__isnull=False)
        .order_by("created_at", "id")
        .values_list("id", "mobile")
    )
    for customer_id, mobile in rows.iterator(chunk_size=PLAN_CHUNK):
        plan.customers += 1
        try:
            form = normalise_mobile(mobile, country)
        except IdentifierError as exc:
            plan.invalid.append((customer_id, mobile, str(exc)))
            continue
        by_form.setdefault(form, []).append((customer_id, mobile))
    for form, holders in by_form.items():
        if len(holders) > 1:
            plan.groups.append(
                MergeGroup(
                    mobile=form,
                    into_id=holders[0][0],
                    from_ids=[cid for cid, _ in holders[1:]],
                    stored=[m for _, m in holders],
                )
            )
        elif holders[0][1] != form:
            plan.renames.append((holders[0][0], holders[0][1], form))
    plan.groups.sort(key=lambda g: g.into_id)
    plan.renames.sort()
    return plan


def customer_relations() -> list:
    """Every foreign key to Customer, in any app, hidden ones (related_name="+") included."""
    return [
        f
        for f in Customer._meta.get_fields(include_hidden=True)
        if f.auto_created and f.is_relation and not f.concrete and not f.many_to_many
    ]


def customer_rows(customer_ids) -> Counter:
    """How many rows of each kind point at these customers (every app's, found through the
    model's relations, not by importing the apps): what a merge moves."""
    counts: Counter = Counter()
    for relation in customer_relations():
        model = relation.related_model
        n = model._base_manager.filter(**{f"{relation.field.name}__in": list(customer_ids)}).count()
        if n:
            counts[model._meta.label] += n
    return counts


# --- moving rows ---------------------------------------------------------------------------------


def move_rows(model, *, into_id, from_ids, key_fields=(), merge=None, fk="customer_id") -> Counter:
    """Point `model`'s rows from the duplicates at `into_id`. With `key_fields` (the rest of
    a unique constraint with the customer), a row whose key `into` already has is handed to
    `merge(kept, row)` and deleted. Returns {"moved": n, "merged": n}."""
    out: Counter = Counter()
    rows = model._base_manager.filter(**{f"{fk}__in": list(from_ids)})
    if not key_fields:
        out["moved"] = rows.update(**{fk: into_id})
        return out
    kept = {
        tuple(getattr(r, f) for f in key_fields): r
        for r in model._base_manager.filter(**{fk: into_id})
    }
    for row in rows.order_by("pk"):
        key = tuple(getattr(row, f) for f in key_fields)
        if key in kept:
            if merge is not None:
                merge(kept[key], row)
            model._base_manager.filter(pk=row.pk).delete()
            out["merged"] += 1
        else:
            model._base_manager.filter(pk=row.pk).update(**{fk: into_id})
            setattr(row, fk, into_id)
            kept[key] = row
            out["moved"] += 1
    return out


def _enrolment_merge(kept: Enrolment, row: Enrolment) -> None:
    """One enrolment per milestone: active if either was (with that one's source), since the
    earlier of the two."""
    changes = {}
    if row.is_active and not kept.is_active:
        changes.update(is_active=True, source=row.source)
    if row.enrolled_at < kept.enrolled_at:
        changes["enrolled_at"] = row.enrolled_at
    if changes:
        Enrolment.objects.filter(pk=kept.pk).update(**changes)
        for name, value in changes.items():
            setattr(kept, name, value)


def _notification_merge(kept: EnrolmentNotification, row: EnrolmentNotification) -> None:
    """Notified once: if either was sent, the kept one counts as sent."""
    if kept.sent_at is None and row.sent_at is not None:
        EnrolmentNotification.objects.filter(pk=kept.pk).update(sent_at=row.sent_at)
        kept.sent_at = row.sent_at


def enrolment_rows_merge(*, into_id: int, from_ids: list[int]) -> Counter:
    """Enrolments, per-customer target values, audience memberships and enrolment
    notifications of the duplicates, onto `into` (its own value wins where both have one).
    Call with the customers locked, inside the merge's transaction."""
    counts: Counter = Counter()
    moved = move_rows(
        Enrolment, into_id=into_id, from_ids=from_ids, key_fields=("target_group_id",),
        merge=_enrolment_merge,
    )  # fmt: skip
    counts.update({f"enrolments_{k}": v for k, v in moved.items()})
    moved = move_rows(
        CustomerTargetValue, into_id=into_id, from_ids=from_ids,
        key_fields=("target_id", "cycle_ordinal"),
    )  # fmt: skip
    counts.update({f"target_values_{k}": v for k, v in moved.items()})
    shared = list(
        AudienceMember.objects.filter(customer_id__in=from_ids)
        .filter(audience_group_id__in=AudienceMember.objects.filter(customer_id=into_id).values(
            "audience_group_id"
        ))
        .values_list("audience_group_id", flat=True)
    )  # fmt: skip
    moved = move_rows(
        AudienceMember, into_id=into_id, from_ids=from_ids, key_fields=("audience_group_id",)
    )
    for group_id, dropped in Counter(shared).items():  # one member less per merged duplicate
        AudienceGroup.objects.filter(pk=group_id).update(member_count=F("member_count") - dropped)
    counts.update({f"audience_members_{k}": v for k, v in moved.items()})
    moved = move_rows(
        EnrolmentNotification, into_id=into_id, from_ids=from_ids, key_fields=("target_id",),
        merge=_notification_merge,
    )  # fmt: skip
    counts.update({f"notifications_{k}": v for k, v in moved.items()})
    return +counts


def customers_absorb(*, into: Customer, from_ids: list[int], mobile: str) -> None:
    """The last step: nothing may point at the duplicates any more (else MergeRefused, and
    the transaction rolls back: a row kind the merge does not know is never deleted by a
    cascade); they are deleted, and `into` takes the normalised `mobile` and the identifiers,
    name and attributes it lacked."""
    left = customer_rows(from_ids)
    if left:
        kinds = ", ".join(f"{label} ({n})" for label, n in sorted(left.items()))
        raise MergeRefused(f"Rows still point at customers {from_ids}: {kinds}.")
    others = list(Customer.objects.filter(pk__in=from_ids).order_by("created_at", "id"))
    Customer.objects.filter(pk__in=from_ids).delete()
    for other in others:
        for name in ("email", "external_id"):
            if getattr(into, name) is None and getattr(other, name) is not None:
                setattr(into, name, getattr(other, name))
        if not into.name and other.name:
            into.name = other.name
        if other.joined_on and (into.joined_on is None or other.joined_on < into.joined_on):
            into.joined_on = other.joined_on
        into.attributes = {**(other.attributes or {}), **(into.attributes or {})}
    into.mobile = mobile
    into.save(update_fields=["mobile", "email", "external_id", "name", "joined_on", "attributes"])
