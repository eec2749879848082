"""Audience groups: a CSV list, a filter over customers and target results, a merge.

Members are materialised in AudienceMember. Filter groups are recomputed by
`audience_group_refresh` (a beat task runs it for every filter group, and
`audience_groups_refresh_for_target` runs it for the groups that read a target when that
target is achieved); a merge group follows its sources; milestones linked to a group follow
its members (`audience_enrolments_sync`).

Filter definition (all conditions must hold)::

    {"conditions": [
        {"field": "attributes.city", "op": "eq", "value": "Pune"},
        {"field": "joined_on", "op": "gte", "value": "2026-01-01"},
        {"target": "Target 1", "achieved": true, "min_value": 100,
         "cycle": "P1", "from": "2026-01-01", "to": "2026-03-31", "last_days": 90}
    ]}

Customer fields: name, mobile, email, external_id, joined_on, is_loyalty_member, created_at,
attributes.<key>; operators eq, ne, gt, gte, lt, lte, in, contains, exists. A target condition
names a target (name or id) and keeps the customers with a cycle of it where: `achieved`
(true: the target was reached), `min_value` (achieved value at least this), `cycle` (a period
name, "P2", or "current" / "previous", which move with time: see `_cycle_q`), a time window
`from`/`to` (dates, organisation timezone) or `last_days` -- on the moment of achievement
when `achieved` is true, else on the cycle's start.

Saving checks the group as a whole too (`audience_group_errors`, for the API and the admin
alike): a unique name; a filter's conditions; a merge of two or more of the organisation's
groups that does not include itself, directly or through the groups it includes.
`filter_problems` gives each refusal with its condition and key, for a screen that shows it at
its input.

Every value is checked when the group is saved, and a bad one is a 400 naming its condition:
mobile, email and external_id compared in their stored form (enrolment.identifiers); dates
from 1900-01-01 to 2999-12-31 (created_at against a date means that whole day in the
organisation's timezone); is_loyalty_member and `exists` take true or false; an attribute
is compared with a JSON string, number, true, false or null; `in` takes a list of up to
1,000; min_value is a number; last_days 1 to 36,500; at most 50 conditions.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import DataError, ProgrammingError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from milestones.models import EnrolmentMode, MilestoneStatus, Period, Target, TargetGroup

from .identifiers import IdentifierError, country_of, fragment, normalise
from .models import (
    AudienceGroup,
    AudienceKind,
    AudienceMember,
    AudienceRefreshStatus,
    Customer,
    Enrolment,
    EnrolmentSource,
    TargetGroupAudience,
)
from .services import CHUNK, enrolments_add, enrolments_deactivate

logger = logging.getLogger(__name__)

# Customer fields a condition may name, and the kind of value each compares with.
CUSTOMER_FIELDS = {
    "name": "text",
    "mobile": "identifier",
    "email": "identifier",
    "external_id": "identifier",
    "joined_on": "date",
    "is_loyalty_member": "bool",
    "created_at": "datetime",
}
OPS = {
    "eq": "exact",
    "ne": "exact",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "in": "in",
    "contains": "icontains",
    "exists": "isnull",
}
ORDERING_OPS = ("gt", "gte", "lt", "lte")
OPS_BY_KIND = {
    "text": tuple(OPS),
    "identifier": tuple(OPS),
    "attribute": tuple(OPS),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"),
    "datetime": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"),
    "bool": ("eq", "ne", "in", "exists"),
}
TARGET_KEYS = {"target", "achieved", "min_value", "cycle", "from", "to", "last_days"}
MAX_CONDITIONS = 50
MAX_IN_VALUES = 1000
MAX_TEXT = 1000
MAX_LAST_DAYS = 36500
MAX_NUMBER = 10**14  # the largest amount an activity carries
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2999, 12, 31)


# --- the filter --------------------------------------------------------------------------------


class _Bad(ValueError):
    """One value of a condition is not acceptable; the message says why."""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_date(value) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        if not isinstance(value, str):
            raise _Bad(f"{_shown(value)} is not a date like 2026-01-31.")
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise _Bad(f"{_shown(value)} is not a date like 2026-01-31.") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise _Bad(f"{value.isoformat()} is outside {EARLIEST_DATE} to {LATEST_DATE}.")
    return value


def _as_moment(value, tz) -> datetime | date:
    """A date (a whole calendar day in the organisation's timezone) or an aware datetime."""
    text = value.strip() if isinstance(value, str) else None
    if text is not None and len(text) > 10:  # more than a date: a date and a time
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad(
                f"{_shown(value)} is not a date (2026-01-31) or a date and time "
                "(2026-01-31T10:00:00+05:30)."
            ) from None
        _as_date(moment.date())
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    return _as_date(value)


def _as_number(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _Bad(f"{_shown(value)} is not a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Bad(f"{_shown(value)} is not a number.") from None
    if not number.is_finite() or abs(number) > MAX_NUMBER:
        raise _Bad(f"{_shown(value)} is not a number between -10^14 and 10^14.")
    return number


def _as_text(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Bad(f"{_shown(value)} is not text.")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise _Bad(f"{_shown(value)} is longer than {MAX_TEXT} characters or has a NUL.")
    return value


def _as_attribute_value(value, op: str):
    """A JSON scalar to compare an attribute with."""
    if value is None:
        if op not in ("eq", "ne"):
            raise _Bad(f"'{op}' needs a value, not null.")
        return None
    if op == "contains":
        return _as_text(value)
    if isinstance(value, bool):
        if op in ORDERING_OPS:
            raise _Bad(f"'{op}' compares numbers or text, not {_shown(value)}.")
        return value
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise _Bad(f"{value} is too large a number (at most 2^53).")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"{value} is not a finite number.")
        return value
    if isinstance(value, str):
        return _as_text(value)
    raise _Bad(f"{_shown(value)} is not a string, number, true, false or null.")


def _day(d: date, tz) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in the organisation's timezone."""
    return datetime.combine(d, time(), tz), datetime.combine(d + timedelta(days=1), time(), tz)


def _moment_q(lookup: str, op: str, value, tz) -> Q:
    """created_at against a day (the whole day, in the organisation's timezone) or a moment."""
    if isinstance(value, datetime):
        return Q(**{f"{lookup}__{OPS[op]}": value})
    start, end = _day(value, tz)
    return {
        "eq": Q(**{f"{lookup}__gte": start, f"{lookup}__lt": end}),
        "ne": Q(**{f"{lookup}__gte": start, f"{lookup}__lt": end}),
        "gt": Q(**{f"{lookup}__gte": end}),
        "gte": Q(**{f"{lookup}__gte": start}),
        "lt": Q(**{f"{lookup}__lt": start}),
        "lte": Q(**{f"{lookup}__lt": end}),
    }[op]


@dataclass(frozen=True)
class FilterProblem:
    """One reason a filter is refused: the condition (1-based; None: the whole filter), the
    key of the condition at fault when one is (target, cycle, min_value, value, op, ...), and
    the message, which names the condition ("Condition 2: ...")."""

    condition: int | None
    key: str | None
    message: str


class _FilterBuilder:
    """Turns a filter definition into a queryset, collecting one message per bad condition."""

    def __init__(self, organisation):
        self.organisation = organisation
        self.tz = organisation.tzinfo
        self.country = country_of(organisation)
        self.errors: list[str] = []
        self.problems: list[FilterProblem] = []
        self.index: int | None = None  # the condition being read (1-based)
        self.aliases: dict[str, KeyTransform] = {}

    def bad(self, label: str, message: str, key: str | None = None) -> Q:
        """Record one problem of the condition being read; `key` names its bad key (a screen
        shows the message at that input)."""
        self.errors.append(f"{label}: {message}")
        self.problems.append(FilterProblem(self.index, key, f"{label}: {message}"))
        return Q()

    def whole(self, message: str) -> None:
        """A problem of the filter as a whole, not of one condition."""
        self.errors.append(message)
        self.problems.append(FilterProblem(None, None, message))

    # customer fields and attributes

    def customer_q(self, cond: dict, label: str) -> Q:
        name = cond.get("field")
        op = cond.get("op") or "eq"
        value = cond.get("value")
        if not isinstance(op, str) or op not in OPS:
            return self.bad(
                label, f"unknown operator {_shown(op)}; use one of {', '.join(OPS)}.", "op"
            )
        if isinstance(name, str) and name.startswith("attributes."):
            key = name.split(".", 1)[1]
            if not key.strip() or len(key) > 200 or "\x00" in key:
                return self.bad(label, "name the attribute, as in attributes.city.", "field")
            kind = "attribute"
            lookup = f"attr_{len(self.aliases) + 1}"
            self.aliases[lookup] = KeyTransform(key, "attributes")
        elif isinstance(name, str) and name in CUSTOMER_FIELDS:
            kind = CUSTOMER_FIELDS[name]
            lookup = name
        else:
            return self.bad(
                label,
                f"unknown field {_shown(name)}; use {', '.join(CUSTOMER_FIELDS)} or "
                "attributes.<key>.",
                "field",
            )
        if op not in OPS_BY_KIND[kind]:
            return self.bad(
                label,
                f"{name} takes the operators {', '.join(OPS_BY_KIND[kind])}, not '{op}'.",
                "op",
            )
        if op == "exists":
            if not isinstance(value, bool):
                return self.bad(label, "'exists' needs the value true or false.", "value")
            return Q(**{f"{lookup}__isnull": not value})
        if op == "in":
            if not isinstance(value, list) or not value:
                return self.bad(label, "the 'in' operator needs a list of values.", "value")
            if len(value) > MAX_IN_VALUES:
                return self.bad(
                    label, f"the 'in' list has more than {MAX_IN_VALUES} values.", "value"
                )
        try:
            if op == "in":
                values = [self.value(kind, name, "in", v) for v in value]
            else:
                values = [self.value(kind, name, op, value)]
        except (_Bad, IdentifierError) as exc:
            return self.bad(label, f"{name}: {exc}", "value")
        if kind == "datetime":
            q = Q()
            for v in values:
                q |= _moment_q(lookup, "eq" if op == "in" else op, v, self.tz)
            return ~q if op == "ne" else q
        if op == "in":
            q = Q(**{f"{lookup}__in": values})
        else:
            q = Q(**{f"{lookup}__{OPS[op]}": values[0]})
        return ~q if op == "ne" else q

    def value(self, kind: str, name: str, op: str, value):
        """One value of a customer-field condition, checked and in the stored form."""
        if kind == "attribute":
            return _as_attribute_value(value, op)
        if value is None:
            if op in ("eq", "ne"):
                return None
            raise _Bad(f"'{op}' needs a value, not null.")
        if kind == "bool":
            if not isinstance(value, bool):
                raise _Bad(f"{_shown(value)} is not true or false.")
            return value
        if kind == "date":
            return _as_date(value)
        if kind == "datetime":
            return _as_moment(value, self.tz)
        text = _as_text(value)
        if kind == "identifier":
            # the stored form (enrolment.identifiers), so a condition finds what a lookup finds
            if op == "contains":
                part = fragment(name, text)
                if not part:
                    raise _Bad(f"{_shown(value)} has nothing to search for.")
                return part
            return normalise(name, text, country=self.country)
        return text

    # target results

    def target_q(self, cond: dict, label: str) -> Q:
        unknown = set(cond) - TARGET_KEYS
        if unknown:
            self.bad(label, f"unknown keys {', '.join(sorted(map(str, unknown)))}.", "target")
        ref = cond.get("target")
        if isinstance(ref, bool) or not isinstance(ref, int | str) or not str(ref).strip():
            return self.bad(label, "name the target (its name or id).", "target")
        if isinstance(ref, str) and (len(ref) > 200 or "\x00" in ref):
            return self.bad(label, f"{_shown(ref)} is not a target name.", "target")
        target = _resolve_target(self.organisation, ref)
        if target is None:
            return self.bad(label, f"no target named {_shown(ref)} in this organisation.", "target")
        errors_before = len(self.errors)
        achieved = cond.get("achieved")
        if achieved is not None and not isinstance(achieved, bool):
            self.bad(label, f"'achieved' is true or false, not {_shown(achieved)}.", "achieved")
        Progress = apps.get_model("evaluation", "Progress")
        progress = Progress.objects.filter(target=target)
        if achieved:
            progress = progress.filter(achieved_at__isnull=False)
        if cond.get("min_value") not in (None, ""):
            try:
                progress = progress.filter(achieved__gte=_as_number(cond["min_value"]))
            except _Bad as exc:
                self.bad(label, f"min_value: {exc}", "min_value")
        cycle = cond.get("cycle")
        if cycle not in (None, ""):
            readable = isinstance(cycle, int | str) and not isinstance(cycle, bool)
            if readable and isinstance(cycle, str):
                readable = len(cycle) <= 200 and "\x00" not in cycle
            which = _cycle_q(target, cycle) if readable else None
            if which is None:
                self.bad(
                    label,
                    f"{_shown(cycle)} is not a cycle of {target.name!r} (use current, "
                    "previous, one of its cycle names, or P1, P2, ...).",
                    "cycle",
                )
            else:
                progress = progress.filter(which)
        start = end = None
        for key in ("from", "to"):
            if cond.get(key) not in (None, ""):
                try:
                    day = _as_date(cond[key])
                except _Bad as exc:
                    self.bad(label, f"'{key}': {exc}", key)
                    continue
                if key == "from":
                    start = day
                else:
                    end = day
        if start and end and end < start:
            self.bad(label, f"'to' ({end}) is before 'from' ({start}).", "to")
        days = cond.get("last_days")
        if days not in (None, ""):
            if isinstance(days, str) and days.strip().isdigit():
                days = int(days.strip())
            if isinstance(days, bool) or not isinstance(days, int):
                self.bad(label, "last_days must be a whole number of days.", "last_days")
            elif not 1 <= days <= MAX_LAST_DAYS:
                self.bad(
                    label,
                    f"last_days must be between 1 and {MAX_LAST_DAYS}, not {days}.",
                    "last_days",
                )
            else:
                start = timezone.now().astimezone(self.tz).date() - timedelta(days=days - 1)
        if len(self.errors) > errors_before:
            return Q()
        moment = "achieved_at" if achieved else "cycle_start"
        if start:
            progress = progress.filter(**{f"{moment}__gte": _day(start, self.tz)[0]})
        if end:
            progress = progress.filter(**{f"{moment}__lt": _day(end, self.tz)[1]})
        return Q(id__in=progress.values("customer_id"))


def _resolve_target(organisation, ref) -> Target | None:
    qs = Target.objects.filter(organisation=organisation).select_related("target_group")
    text = str(ref).strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:
        found = qs.filter(pk=int(text)).first()
        if found:
            return found
    return qs.filter(name=text).first()


def _cycle_ordinal(target: Target, ref) -> int | None:
    text = str(ref).strip()
    period = Period.objects.filter(target_group=target.target_group, name=text).first()
    if period:
        return period.ordinal
    match = re.fullmatch(r"[Pp](\d{1,6})", text)
    return int(match.group(1)) if match and text.isascii() else None


RELATIVE_CYCLES = ("current", "previous")


def _cycle_q(target: Target, ref) -> Q | None:
    """The progress rows of the cycle `ref` names (None: it names none of the target's).

    A cycle name or "P2" is that cycle; "current" is the cycle running now (per customer for
    cyclic windows); "previous" is the cycle that ended last: for fixed periods the period
    before the current one, for per-customer cycles each customer's last cycle that has ended.
    A period named "current" or "previous" is that period. Relative cycles move with time:
    the group's refresh re-reads them.
    """
    ordinal = _cycle_ordinal(target, ref)
    if ordinal is not None:
        return Q(cycle_ordinal=ordinal)
    word = str(ref).strip().lower()
    if word not in RELATIVE_CYCLES:
        return None
    now = timezone.now()
    if word == "current":
        return Q(cycle_start__lte=now) & (Q(cycle_end__isnull=True) | Q(cycle_end__gt=now))
    periods = Period.objects.filter(target_group_id=target.target_group_id)
    if periods.exists():
        last = periods.filter(ends_at__lte=now).order_by("-ends_at", "-ordinal").first()
        return Q(cycle_ordinal=last.ordinal) if last else Q(pk__in=[])
    Progress = apps.get_model("evaluation", "Progress")
    later = Progress.objects.filter(
        target_id=target.pk,
        customer_id=OuterRef("customer_id"),
        cycle_end__lte=now,
        cycle_ordinal__gt=OuterRef("cycle_ordinal"),
    )
    return Q(cycle_end__lte=now) & ~Exists(later)


def _build(organisation, definition) -> tuple[_FilterBuilder, Q]:
    """Read a definition: the builder (its errors and problems) and the customers' Q."""
    builder = _FilterBuilder(organisation)
    if not isinstance(definition, dict) or not isinstance(definition.get("conditions"), list):
        builder.whole('A filter is {"conditions": [...]}, with at least one condition.')
        return builder, Q()
    conditions = definition["conditions"]
    if not conditions:
        builder.whole("A filter needs at least one condition.")
    if len(conditions) > MAX_CONDITIONS:
        builder.whole(f"A filter has at most {MAX_CONDITIONS} conditions, got {len(conditions)}.")
        return builder, Q()
    q = Q()
    for i, cond in enumerate(conditions, start=1):
        label = f"Condition {i}"
        builder.index = i
        if not isinstance(cond, dict):
            builder.bad(label, "a condition is an object.")
        elif "target" in cond:
            q &= builder.target_q(cond, label)
        else:
            q &= builder.customer_q(cond, label)
    builder.index = None
    return builder, q


def filter_queryset(organisation, definition: dict):
    """The customers a filter definition selects; ValidationError naming each bad condition.

    Every value is checked here (its type, its range, identifiers in their stored form), so
    a definition that passes builds a query the database accepts.
    """
    builder, q = _build(organisation, definition)
    if builder.errors:
        raise ValidationError({"filter": builder.errors})
    return Customer.objects.filter(organisation=organisation).alias(**builder.aliases).filter(q)


def filter_errors(organisation, definition) -> list[str]:
    """The messages `filter_queryset` would refuse the definition with ([] when it is valid)."""
    return _build(organisation, definition)[0].errors


def filter_problems(organisation, definition) -> list[FilterProblem]:
    """As `filter_errors`, each with the condition and key at fault (for a screen that shows
    a message at its input)."""
    return _build(organisation, definition)[0].problems


def filter_reads_target(definition: dict, target: Target) -> bool:
    if not isinstance(definition, dict) or not isinstance(definition.get("conditions"), list):
        return False
    for cond in definition["conditions"]:
        if isinstance(cond, dict) and "target" in cond:
            ref = cond["target"]
            if str(ref).strip() in (target.name, str(target.id)):
                return True
    return False


# --- writes ------------------------------------------------------------------------------------


def _members_set(group: AudienceGroup, customer_ids) -> tuple[int, int]:
    """Make the group's members exactly `customer_ids`. Returns (added, removed)."""
    wanted = set(customer_ids)
    current = set(
        AudienceMember.objects.filter(audience_group=group).values_list("customer_id", flat=True)
    )
    add = sorted(wanted - current)
    remove = sorted(current - wanted)
    AudienceMember.objects.bulk_create(
        [AudienceMember(audience_group=group, customer_id=c) for c in add],
        ignore_conflicts=True,
        batch_size=CHUNK,
    )
    for start in range(0, len(remove), CHUNK):
        AudienceMember.objects.filter(
            audience_group=group, customer_id__in=remove[start : start + CHUNK]
        ).delete()
    group.member_count = len(wanted)
    group.refreshed_at = timezone.now()
    group.save(update_fields=["member_count", "refreshed_at"])
    return len(add), len(remove)


def _source_ids(sources) -> list:
    """Source groups as ids, in order, once each (a screen gives rows, the API ids)."""
    ids = [getattr(s, "pk", s) for s in (sources or [])]
    return list(dict.fromkeys(ids))


def _loop_path(organisation, group_id: int, source_ids) -> list[int] | None:
    """A chain of "includes" from one of `source_ids` back to the group (None: there is none),
    over the organisation's merge groups as they are now."""
    through = AudienceGroup.sources.through
    includes: dict[int, list[int]] = {}
    for parent, child in through.objects.filter(
        from_audiencegroup__organisation=organisation
    ).values_list("from_audiencegroup_id", "to_audiencegroup_id"):
        includes.setdefault(parent, []).append(child)
    for start in source_ids:
        came_from = {start: None}
        queue = [start]
        while queue:
            node = queue.pop(0)
            if node == group_id:
                path = [node]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return path[::-1]
            for child in includes.get(node, ()):
                if child not in came_from:
                    came_from[child] = node
                    queue.append(child)
    return None


def _checked(
    *, organisation, name, kind, filter=None, sources=None, audience_group=None
) -> tuple[dict[str, list[str]], list[AudienceGroup]]:
    """The reasons a group's create or edit is refused (by field), and a merge's sources."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["An audience group needs a name."]
    else:
        taken = AudienceGroup.objects.filter(organisation=organisation, name=name)
        if audience_group is not None:
            taken = taken.exclude(pk=audience_group.pk)
        if taken.exists():
            errors["name"] = [f"An audience group named {name!r} already exists."]
    if kind not in AudienceKind.values:
        errors["kind"] = [f"Unknown kind {kind!r}: use list, filter or merge."]
    source_groups: list[AudienceGroup] = []
    if kind == AudienceKind.FILTER:
        messages = filter_errors(organisation, filter or {})
        if messages:
            errors["filter"] = messages
    if kind == AudienceKind.MERGE:
        wanted = _source_ids(sources)
        found = {
            g.id: g for g in AudienceGroup.objects.filter(organisation=organisation, pk__in=wanted)
        }
        source_groups = [found[i] for i in wanted if i in found]
        own_id = audience_group.pk if audience_group is not None else None
        if own_id is not None and own_id in wanted:
            errors["sources"] = [f"{audience_group.name!r} cannot include itself."]
        elif len(wanted) < 2:
            errors["sources"] = ["A merge needs at least two existing audience groups."]
        elif len(source_groups) != len(wanted):
            missing = sorted(set(wanted) - set(found))
            errors["sources"] = [f"Unknown audience groups: {', '.join(map(str, missing))}."]
        elif own_id is not None:
            path = _loop_path(organisation, own_id, wanted)
            if path:
                names = dict(AudienceGroup.objects.filter(pk__in=path).values_list("id", "name"))
                chain = " → ".join(names[i] for i in path)
                errors["sources"] = [
                    f"{names[path[0]]!r} already includes {audience_group.name!r} ({chain}): "
                    "including it here would make a loop."
                ]
    return errors, source_groups


def audience_group_errors(
    *, organisation, name, kind, filter=None, sources=None, audience_group=None
) -> dict[str, list[str]]:
    """What `audience_group_create` (or `audience_group_update` of `audience_group`) would
    refuse, by field; {} when the group is acceptable. For a screen that shows every error at
    its field before it calls the service."""
    return _checked(
        organisation=organisation,
        name=name,
        kind=kind,
        filter=filter,
        sources=sources,
        audience_group=audience_group,
    )[0]


@transaction.atomic
def audience_group_create(
    *,
    organisation,
    name: str,
    kind: str,
    user=None,
    description: str = "",
    customer_ids: list[int] | None = None,
    filter: dict | None = None,
    sources: list[int] | None = None,
) -> AudienceGroup:
    """Create a group. List: the given customers; filter: validated and evaluated now;
    merge: two or more existing groups of the organisation (merge two, then merge a third in)."""
    errors, source_groups = _checked(
        organisation=organisation, name=name, kind=kind, filter=filter, sources=sources
    )
    name = (name or "").strip()
    if errors:
        raise ValidationError(errors)
    group = AudienceGroup(
        organisation=organisation,
        name=name,
        kind=kind,
        description=description or "",
        filter=(filter or {}) if kind == AudienceKind.FILTER else {},
        created_by=user if getattr(user, "pk", None) else None,
    )
    group.full_clean(exclude=["created_by"])
    group.save()
    if kind == AudienceKind.MERGE:
        group.sources.set(source_groups)
    if kind == AudienceKind.LIST:
        _members_set(group, customer_ids or [])
    else:
        try:
            audience_group_refresh(audience_group=group)
        except (DataError, ProgrammingError, OverflowError):
            # the checks above should make this unreachable; a 400, not a 500, if not
            logger.exception("a new audience filter could not be evaluated")
            raise ValidationError(
                {"filter": ["The database could not evaluate this filter: check its values."]}
            ) from None
    return group


def audience_group_update(
    *,
    audience_group: AudienceGroup,
    name: str,
    description: str = "",
    filter: dict | None = None,
    sources: list | None = None,
    customer_ids: list[int] | None = None,
) -> RefreshOutcome:
    """Edit a group (its kind stays): the same checks as `audience_group_create`, plus a
    merge may not include itself, directly or through the groups it includes. Then a filter
    or merge group is refreshed at once (a failure is recorded on the group and returned, as
    by "Refresh now"); a list group gains `customer_ids` ("upload more")."""
    group = audience_group
    with transaction.atomic():
        errors, source_groups = _checked(
            organisation=group.organisation,
            name=name,
            kind=group.kind,
            filter=filter,
            sources=sources,
            audience_group=group,
        )
        if errors:
            raise ValidationError(errors)
        group.name = (name or "").strip()
        group.description = description or ""
        if group.kind == AudienceKind.FILTER:
            group.filter = filter
        group.full_clean(exclude=["created_by"])
        group.save(update_fields=["name", "description", "filter"])
        if group.kind == AudienceKind.MERGE:
            group.sources.set(source_groups)
    if group.kind == AudienceKind.LIST:
        added = (
            audience_list_add(audience_group=group, customer_ids=customer_ids)
            if customer_ids
            else 0
        )
        return RefreshOutcome(group.id, AudienceRefreshStatus.OK, added=added)
    return audience_group_refresh_now(audience_group=group)


def audience_members(*, audience_group: AudienceGroup):
    """The group's members as customers of its organisation, by name then id (a page of
    them is shown on the group's screen)."""
    return Customer.objects.filter(
        organisation_id=audience_group.organisation_id,
        pk__in=AudienceMember.objects.filter(audience_group=audience_group).values("customer_id"),
    ).order_by("name", "pk")


@transaction.atomic
def audience_group_refresh(*, audience_group: AudienceGroup, _seen: set | None = None) -> dict:
    """Recompute a filter or merge group; milestones and merges that follow it follow too."""
    seen = _seen if _seen is not None else set()
    if audience_group.id in seen:
        return {"added": 0, "removed": 0}
    seen.add(audience_group.id)
    group = audience_group
    added = removed = 0
    if group.kind == AudienceKind.FILTER:
        ids = filter_queryset(group.organisation, group.filter).values_list("id", flat=True)
        added, removed = _members_set(group, ids)
    elif group.kind == AudienceKind.MERGE:
        ids = AudienceMember.objects.filter(audience_group__in=group.sources.all()).values_list(
            "customer_id", flat=True
        )
        added, removed = _members_set(group, ids)
    if added or removed or _seen is None:
        for link in TargetGroupAudience.objects.filter(audience_group=group).select_related(
            "target_group"
        ):
            audience_enrolments_sync(target_group=link.target_group, audience_group=group)
    if added or removed:
        for parent in group.merged_into.all():
            audience_group_refresh(audience_group=parent, _seen=seen)
    return {"added": added, "removed": removed}


@transaction.atomic
def audience_list_add(*, audience_group: AudienceGroup, customer_ids: list[int]) -> int:
    """Add customers to a list group ("upload more"). Returns how many were new."""
    if audience_group.kind != AudienceKind.LIST:
        raise ValidationError({"kind": ["Only list groups take uploaded customers."]})
    current = set(
        AudienceMember.objects.filter(audience_group=audience_group).values_list(
            "customer_id", flat=True
        )
    )
    added, _ = _members_set(audience_group, current | set(customer_ids))
    for link in TargetGroupAudience.objects.filter(audience_group=audience_group):
        audience_enrolments_sync(target_group=link.target_group, audience_group=audience_group)
    for parent in audience_group.merged_into.all():
        audience_group_refresh(audience_group=parent, _seen={audience_group.id})
    return added


def audience_enrolments_sync(*, target_group: TargetGroup, audience_group: AudienceGroup) -> dict:
    """Enrol the group's members; un-enrol those the group enrolled who left it.

    Enrolments made another way (API, upload) are left alone, and so is a member whom
    someone un-enrolled by hand (their row is inactive with the source "api").
    """
    if not target_group.is_active and target_group.status() == MilestoneStatus.ENDED:
        return {"enrolled": 0, "unenrolled": 0}
    members = set(
        AudienceMember.objects.filter(audience_group=audience_group).values_list(
            "customer_id", flat=True
        )
    )
    rows = {
        c: (active, source)
        for c, active, source in Enrolment.objects.filter(target_group=target_group).values_list(
            "customer_id", "is_active", "source"
        )
    }
    add = [
        c
        for c in members
        if c not in rows or (not rows[c][0] and rows[c][1] == EnrolmentSource.AUDIENCE_GROUP)
    ]
    remove = [
        c
        for c, (active, source) in rows.items()
        if active and source == EnrolmentSource.AUDIENCE_GROUP and c not in members
    ]
    newly = enrolments_add(
        target_group=target_group, customer_ids=add, source=EnrolmentSource.AUDIENCE_GROUP
    )
    gone = enrolments_deactivate(
        target_group=target_group, customer_ids=remove, source=EnrolmentSource.AUDIENCE_GROUP
    )
    return {"enrolled": len(newly), "unenrolled": gone}


@transaction.atomic
def target_group_audience_link(*, target_group: TargetGroup, audience_group_id) -> None:
    """Point an audience-group milestone at a group and enrol its members."""
    if target_group.enrolment_mode != EnrolmentMode.AUDIENCE_GROUP:
        raise ValidationError(
            {
                "enrolment": [
                    "An audience group applies only to milestones with the audience_group "
                    "enrolment mode."
                ]
            }
        )
    group = AudienceGroup.objects.filter(
        organisation_id=target_group.organisation_id, pk=audience_group_id
    ).first()
    if group is None:
        raise ValidationError({"enrolment": [f"Unknown audience group {audience_group_id!r}."]})
    TargetGroupAudience.objects.update_or_create(
        target_group=target_group,
        defaults={"audience_group": group, "organisation_id": target_group.organisation_id},
    )
    audience_enrolments_sync(target_group=target_group, audience_group=group)


# --- refreshing many groups: a group's failure stays on that group ----------------------------
#
# The beat refreshes every filter group, one task per organisation (enrolment.tasks), and
# the achievement hook the groups that read a target. A group that cannot be refreshed must
# not stop the others: its failure is written on its row (refresh_status, refresh_error,
# refresh_attempts) and the loop goes on. `invalid` (the filter no longer holds, e.g. a
# target it names was renamed or deleted) is skipped until someone edits the group or presses
# "Refresh now"; `failed` (anything else) is retried by the beat up to
# AudienceGroup.REFRESH_MAX_ATTEMPTS times in a row, then waits for "Refresh now" too. The
# last good members stay meanwhile. If even writing the failure fails, the database itself is
# unavailable: that error goes up and the next run starts again.


@dataclass
class RefreshOutcome:
    group_id: int
    status: str  # an AudienceRefreshStatus value
    reason: str = ""
    errors: list[str] | None = None
    added: int = 0
    removed: int = 0


def _record_failure(group: AudienceGroup, status: str, reason: str) -> None:
    now = timezone.now()
    AudienceGroup.objects.filter(pk=group.pk).update(
        refresh_status=status,
        refresh_error=reason,
        refresh_attempts=F("refresh_attempts") + 1,
        refresh_failed_at=now,
    )
    group.refresh_from_db(fields=["refresh_status", "refresh_error", "refresh_attempts",
                                  "refresh_failed_at"])  # fmt: skip


def _record_success(group: AudienceGroup) -> None:
    AudienceGroup.objects.filter(pk=group.pk).exclude(
        refresh_status=AudienceRefreshStatus.OK, refresh_attempts=0
    ).update(refresh_status=AudienceRefreshStatus.OK, refresh_error="", refresh_attempts=0)
    group.refresh_status, group.refresh_error, group.refresh_attempts = "ok", "", 0


def audience_group_refresh_guarded(*, audience_group: AudienceGroup) -> RefreshOutcome:
    """Refresh one group; a failure is recorded on the group and returned, never raised."""
    group = audience_group
    if group.kind == AudienceKind.FILTER:
        errors = filter_errors(group.organisation, group.filter)
        if errors:
            reason = "The filter no longer holds: " + " ".join(errors)
            _record_failure(group, AudienceRefreshStatus.INVALID, reason[:2000])
            return RefreshOutcome(group.id, AudienceRefreshStatus.INVALID, reason, errors)
    try:
        result = audience_group_refresh(audience_group=group)
    except Exception as exc:  # one group's failure, whatever it is, must not stop the others
        logger.exception("audience group %s could not be refreshed", group.pk)
        reason = f"The refresh failed ({type(exc).__name__}): {exc}"[:2000]
        _record_failure(group, AudienceRefreshStatus.FAILED, reason)
        return RefreshOutcome(group.id, AudienceRefreshStatus.FAILED, reason)
    _record_success(group)
    return RefreshOutcome(
        group.id, AudienceRefreshStatus.OK, added=result["added"], removed=result["removed"]
    )


def audience_group_refresh_now(*, audience_group: AudienceGroup) -> RefreshOutcome:
    """Refresh now (admin action, API): a retry whatever the beat's state; the count of
    failed attempts starts again, so a failure after it is retried automatically again."""
    AudienceGroup.objects.filter(pk=audience_group.pk).update(refresh_attempts=0)
    audience_group.refresh_attempts = 0
    return audience_group_refresh_guarded(audience_group=audience_group)


def audience_groups_refresh_for_target(*, target: Target) -> list[int]:
    """Re-evaluate the filter groups that read this target's results (call it when the target
    is achieved). Returns the ids of the groups refreshed."""
    refreshed = []
    groups = (
        AudienceGroup.objects.filter(
            organisation_id=target.organisation_id, kind=AudienceKind.FILTER
        )
        .filter(AudienceGroup.refresh_due_q())
        .select_related("organisation")
    )
    for group in groups:
        if filter_reads_target(group.filter, target):
            outcome = audience_group_refresh_guarded(audience_group=group)
            if outcome.status == AudienceRefreshStatus.OK:
                refreshed.append(group.id)
    return refreshed


HANDOFF_GROUPS_PER_RUN = 20


def audience_groups_refresh_for_targets(
    *, target_ids, after_group_id: int = 0, limit: int = HANDOFF_GROUPS_PER_RUN
) -> tuple[list[int], int | None]:
    """The hand-off after achievements: each filter group that reads any of these targets
    (by name or id) is refreshed once, so "customers who achieved Target 1" is up to date,
    and the milestones that follow it enrol the new achievers at once, not at the next beat.

    Bounded: at most `limit` groups, in id order after `after_group_id`; groups the beat gave
    up on (invalid, or failed too often) are skipped. Returns (ids of the groups refreshed
    ok, the last group id done when more are left, else None): the caller queues the rest.
    """
    targets = list(Target.objects.filter(pk__in=sorted(set(target_ids))))
    refs: dict[int, set[str]] = {}
    for target in targets:
        refs.setdefault(target.organisation_id, set()).update({target.name, str(target.id)})
    if not refs:
        return [], None
    groups = (
        AudienceGroup.objects.filter(
            organisation_id__in=refs, kind=AudienceKind.FILTER, pk__gt=after_group_id
        )
        .filter(AudienceGroup.refresh_due_q())
        .select_related("organisation")
        .order_by("pk")
    )
    refreshed: list[int] = []
    done, last = 0, after_group_id
    for group in list(groups):  # a few rows per organisation; refreshed one by one below
        if not _reads_any(group.filter, refs[group.organisation_id]):
            continue
        if done == limit:
            return refreshed, last
        outcome = audience_group_refresh_guarded(audience_group=group)
        done += 1
        last = group.pk
        if outcome.status == AudienceRefreshStatus.OK:
            refreshed.append(group.pk)
    return refreshed, None


def _reads_any(definition, refs: set[str]) -> bool:
    """Does a filter name any of these targets (names and ids as text)? As
    `filter_reads_target`, for many targets at once."""
    if not isinstance(definition, dict) or not isinstance(definition.get("conditions"), list):
        return False
    return any(
        isinstance(cond, dict) and "target" in cond and str(cond["target"]).strip() in refs
        for cond in definition["conditions"]
    )


def audience_refresh_organisation_ids() -> list[int]:
    """The organisations with filter groups the beat still refreshes on its own."""
    return sorted(
        set(
            AudienceGroup.objects.filter(kind=AudienceKind.FILTER)
            .filter(AudienceGroup.refresh_due_q())
            .values_list("organisation_id", flat=True)
            .order_by()
        )
    )


def audience_groups_refresh_organisation(*, organisation_id: int) -> dict[str, int]:
    """The beat's work for one organisation: each of its filter groups that is not parked
    (merges and milestones follow), the ones that failed last time after the others.
    Returns how many ended ok, invalid or failed, and how many were skipped as parked."""
    groups = AudienceGroup.objects.filter(organisation_id=organisation_id, kind=AudienceKind.FILTER)
    summary = {status: 0 for status in AudienceRefreshStatus.values}
    summary["skipped"] = groups.exclude(AudienceGroup.refresh_due_q()).count()
    due = groups.filter(AudienceGroup.refresh_due_q()).select_related("organisation")
    for group in due.order_by("refresh_attempts", "id"):
        outcome = audience_group_refresh_guarded(audience_group=group)
        summary[outcome.status] += 1
    return summary


def audience_groups_refresh_all(*, organisation_id: int | None = None) -> dict[str, int]:
    """Every organisation's filter groups, one organisation after the other, in this process
    (the beat task runs one task per organisation instead)."""
    ids = [organisation_id] if organisation_id is not None else audience_refresh_organisation_ids()
    total: dict[str, int] = {}
    for org_id in ids:
        for key, count in audience_groups_refresh_organisation(organisation_id=org_id).items():
            total[key] = total.get(key, 0) + count
    return total
