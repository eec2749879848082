"""Reads about configuration that more than one caller needs."""

import difflib

from django.db.models import Q
from django.utils import timezone

from .catalogue import CUSTOMER_EVENTS
from .models import EventKind, EventType, MilestoneStatus, Store


def org_today(organisation):
    return timezone.now().astimezone(organisation.tzinfo).date()


def status_q(status: str, organisation) -> Q:
    """Upcoming / Live / Ended as a filter, from the dates in the organisation's timezone."""
    today = org_today(organisation)
    if status == MilestoneStatus.UPCOMING:
        return Q(start__gt=today)
    if status == MilestoneStatus.ENDED:
        return Q(end__lt=today)
    return Q(start__lte=today, end__gte=today)


def sole_till_code(organisation) -> str | None:
    """The code of the organisation's till when it has exactly one (what a template, a
    clone or the create screen without a till picks), else None."""
    codes = list(
        Store.objects.filter(organisation=organisation, is_till=True).values_list(
            "code", flat=True
        )[:2]
    )
    return codes[0] if len(codes) == 1 else None


def enrolment_summary(group) -> dict:
    """The milestone's enrolment mode, plus what the apps above add
    (`signals.enrolment_summary_requested`)."""
    from .signals import enrolment_summary_requested

    out = {"mode": group.enrolment_mode}
    for _receiver, answer in enrolment_summary_requested.send(
        sender=type(group), target_group=group
    ):
        out.update(answer or {})
    return out


def event_catalogue(organisation) -> list[dict]:
    """The organisation's event catalogue, for pickers and checks: one dict per name with
    `name`, `kind` ("behavioural" | "customer"), `attributes` (names, sorted), `source`
    ("learned" | "configured" | "builtin"), `last_seen` (aware UTC datetime or None) and
    `similar` (the other names of its kind that differ only in case: "Review" for "review",
    a likely typo that tracking counts apart).
    Sorted by kind, then name (case-insensitively, so "Review" sits beside "review").

    The customer-level events are the fixed list of `milestones.catalogue.CUSTOMER_EVENTS`:
    always listed, with the attributes seen on them once they have been received."""
    rows = {
        (r["kind"], r["name"]): r
        for r in EventType.objects.filter(organisation=organisation).values(
            "kind", "name", "attributes", "source", "last_seen"
        )
    }
    for name in CUSTOMER_EVENTS:
        rows.setdefault(
            (EventKind.CUSTOMER, name),
            {
                "kind": EventKind.CUSTOMER,
                "name": name,
                "attributes": [],
                "source": "builtin",
                "last_seen": None,
            },
        )
    out = [
        {
            "name": r["name"],
            "kind": str(r["kind"]),
            "attributes": sorted(r["attributes"] or []),
            "source": str(r["source"]),
            "last_seen": r["last_seen"],
        }
        for r in rows.values()
    ]
    out.sort(key=lambda r: (r["kind"], r["name"].casefold(), r["name"]))
    spellings: dict[tuple[str, str], list[str]] = {}
    for r in out:
        spellings.setdefault((r["kind"], r["name"].casefold()), []).append(r["name"])
    for r in out:
        r["similar"] = [n for n in spellings[(r["kind"], r["name"].casefold())] if n != r["name"]]
    return out


def event_names(organisation, kind: str) -> set[str]:
    """The names of one kind of event the catalogue knows (customer-level: the fixed list)."""
    names = set(
        EventType.objects.filter(organisation=organisation, kind=kind).values_list(
            "name", flat=True
        )
    )
    if kind == EventKind.CUSTOMER:
        names.update(CUSTOMER_EVENTS)
    return names


def closest_event_name(name: str, known) -> str | None:
    """The known name nearest to `name`, if one is near enough to be a likely typo: the same
    name in another case first ("review" -> "Review"), else difflib's closest match."""
    folded = name.casefold()
    same = sorted(k for k in known if k != name and k.casefold() == folded)
    if same:
        return same[0]
    by_fold = {}
    for k in sorted(known):
        by_fold.setdefault(k.casefold(), k)
    match = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=0.6)
    return by_fold[match[0]] if match else None


def event_types_known(organisation, names) -> dict[tuple[str, str], tuple[set[str], object]]:
    """The catalogue rows of these names (one query): {(kind, name): (attribute names,
    last_seen)}. What ingest compares a batch with before learning from it."""
    names = set(names)
    if not names:
        return {}
    return {
        (kind, name): (set(attributes or []), last_seen)
        for kind, name, attributes, last_seen in EventType.objects.filter(
            organisation=organisation, name__in=names
        ).values_list("kind", "name", "attributes", "last_seen")
    }
