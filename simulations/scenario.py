"""The simulated milestone and promotions, made by the real services and then forgotten.

`scenario_build` opens a transaction that is always rolled back, and inside it:

1. for an existing milestone, applies the `changes` with `target_group_update` (the PATCH's
   rules and messages), reads the result in the create shape (`target_group_as_data`),
   notes its enrolments and per-customer values, and moves its names aside (names are
   unique in an organisation);
2. for an unsaved one, checks it with `validate_create` (the create's rules and messages);
3. lays the cycles over the window (`lay_over_window`) and creates the milestone with
   `target_group_create`, so its periods, values, thresholds and (audience) enrolments are
   exactly what a real backdated milestone would get;
4. creates the draft promotions with `promotion_create` (same checks as the API), loads the
   listed ones, and reads the organisation's tracking configuration
   (`evaluation.config_cache.org_config`): the simulated milestone's targets with their
   compiled rules, as tracking folds them.

Everything is then rolled back: the rows read stay in memory (a `Scenario`), nothing was
committed, and every `on_commit` callback registered meanwhile (notifications, queued
tasks, emails) is discarded with the transaction. The transaction is short: the heavy part,
replaying the activities, runs afterwards without one (`simulations.engine`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from common.api import validation_error_to_dict
from enrolment.models import CustomerTargetValue, Enrolment
from evaluation import config_cache
from evaluation.config_cache import GroupConfig, TargetConfig
from milestones.catalogue import MAX_CYCLES
from milestones.cycles import fixed_windows, windows_that_fit
from milestones.models import (
    CycleType,
    EnrolmentMode,
    Kpi,
    Organisation,
    Period,
    Target,
    TargetGroup,
    User,
)
from milestones.services.target_groups import (
    apply_template,
    target_group_as_data,
    target_group_create,
    target_group_update,
)
from milestones.services.target_groups.validation import validate_create
from promotions.caps import spend_of
from promotions.models import (
    Coupon,
    Promotion,
    PromotionAction,
    PromotionActivity,
)
from promotions.selectors import NameIndex
from promotions.services import promotion_create
from rules import Rule, RuleError

from .inputs import SimulationRefused, SimulationRequest, Window

# Fields of a milestone's errors that are about its dates and cycles: after the cycles are
# laid over the window, their refusals are the window's.
WINDOW_FIELDS = ("start", "end", "cycle")


@dataclass
class PromotionPlan:
    """A promotion as the simulation runs it: laid over the window, with what it had
    already given before (caps count it)."""

    promotion: Promotion
    rule: Rule
    actions: list[PromotionAction]
    spent_points: Decimal = Decimal(0)
    spent_coupons: int = 0
    draft: bool = False


@dataclass
class Scenario:
    organisation: Organisation
    window: Window
    group: TargetGroup  # the simulated milestone (rows rolled back; kept in memory)
    gcfg: GroupConfig  # as tracking's configuration cache loads it
    targets: list[Target]  # every target, in order (cycle ends write an event for each)
    stores: dict  # store code -> (zone, concept)
    as_of: datetime  # cycles whose end plus offset days is past this are evaluated
    known: dict[int, bool] = field(default_factory=dict)  # enrolments before tracking
    created_enrolled: list[int] = field(default_factory=list)  # enrolled on creation
    custom_values: dict = field(default_factory=dict)  # customer -> {(target, cycle): value}
    promotions: list[PromotionPlan] = field(default_factory=list)
    free_coupons: dict[int, int] = field(default_factory=dict)  # series id -> free codes
    names: frozenset = frozenset()  # names that mean the simulated milestone or its targets
    index: NameIndex = field(default_factory=NameIndex)  # the other names conditions read
    notes: list[str] = field(default_factory=list)

    @property
    def by_entity(self) -> dict[str, list[TargetConfig]]:
        out: dict[str, list[TargetConfig]] = {}
        for tcfg in self.gcfg.targets:
            out.setdefault(tcfg.target.entity, []).append(tcfg)
        return out

    @property
    def listens_to_enrolments(self) -> bool:
        return any(p.promotion.activity == PromotionActivity.ENROLLED for p in self.promotions)


class _RolledBack(Exception):
    pass


def scenario_build(
    *, organisation: Organisation, request: SimulationRequest, user: User | None = None
) -> Scenario:
    """Build the scenario (see the module's docstring); raises SimulationRefused with the
    services' own messages when the configuration or a promotion is refused."""
    built: list[Scenario] = []
    try:
        with transaction.atomic():
            built.append(_build(organisation, request, user))
            raise _RolledBack
    except _RolledBack:
        pass
    finally:
        # the configuration cache was loaded with the simulated milestone in it
        config_cache.invalidate(organisation.id)
    return built[0]


def _refused(key: str, exc: ValidationError, window_fields=()) -> SimulationRefused:
    """A service's refusal, under the request's part it is about: the window's for the
    dates and cycles the window laid, else `key`'s."""
    errors = validation_error_to_dict(exc)
    about_window = {k: v for k, v in errors.items() if k in window_fields}
    rest = {k: v for k, v in errors.items() if k not in window_fields}
    out: dict = {}
    if rest:
        out[key] = rest
    if about_window:
        out["window"] = [m for messages in about_window.values() for m in messages]
    return SimulationRefused(out)


def _build(org: Organisation, request: SimulationRequest, user) -> Scenario:
    window = request.window
    known: dict[int, bool] = {}
    values_by_name: dict[str, list[tuple[int, int, Decimal]]] = {}
    source_key = "target_group"
    if request.target_group_id is not None:
        source_key = "changes"
        group = TargetGroup.objects.filter(organisation=org, pk=request.target_group_id).first()
        if group is None:
            raise SimulationRefused(
                {"target_group_id": [f"Unknown milestone {request.target_group_id}."]}
            )
        if request.changes:
            try:
                target_group_update(
                    target_group=group, data=request.changes, user=user, via_api=True
                )
            except ValidationError as exc:
                raise _refused("changes", exc) from None
        group = TargetGroup.objects.select_related("organisation", "till").get(pk=group.pk)
        data = target_group_as_data(group)
        known = dict(
            Enrolment.objects.filter(target_group=group).values_list("customer_id", "is_active")
        )
        for name, customer_id, ordinal, value in CustomerTargetValue.objects.filter(
            target__target_group=group
        ).values_list("target__name", "customer_id", "cycle_ordinal", "value"):
            values_by_name.setdefault(name, []).append((customer_id, ordinal, value))
        _move_names_aside(group)
    else:
        data = dict(request.target_group)
        try:
            if data.get("template"):
                data = apply_template(organisation=org, template_id=data.pop("template"), data=data)
            validate_create(org, data, via_api=True)
        except ValidationError as exc:
            raise _refused("target_group", exc) from None

    laid, notes = lay_over_window(data, window)
    try:
        sim, _warnings = target_group_create(organisation=org, data=laid, user=None, via_api=True)
    except ValidationError as exc:
        raise _refused(source_key, exc, WINDOW_FIELDS) from None

    targets = list(sim.targets.prefetch_related("sub_targets").order_by("ordinal", "id"))
    if any(t.kpi == Kpi.MILESTONES_ACHIEVED for t in targets):
        raise SimulationRefused(
            {
                source_key: [
                    "A 'milestones achieved' target counts what other milestones' customers "
                    "reach, which a simulation does not replay: simulate a milestone without "
                    "one."
                ]
            }
        )
    created = list(
        Enrolment.objects.filter(target_group=sim).values_list("customer_id", "is_active")
    )
    if request.target_group_id is None:
        known = dict(created)
    custom: dict[int, dict] = {}
    by_name = {t.name: t for t in targets}
    for name, rows in values_by_name.items():
        target = by_name.get(name)
        if target is None:
            continue
        for customer_id, ordinal, value in rows:
            custom.setdefault(customer_id, {})[(target.id, ordinal)] = value
    if sim.enrolment_mode == EnrolmentMode.CUSTOM_LIST and not any(known.values()):
        notes.append(
            "Nobody is enrolled: a custom-list milestone enrols the customers of its uploaded "
            "list. Simulate the saved milestone once its list is uploaded."
        )

    config = config_cache.org_config(org)
    gcfg = config.groups[sim.id]
    names = frozenset({sim.name, *(t.name for t in targets)})
    plans = _promotions(org, request, window, names)
    other_names = set()
    for plan in plans:
        other_names |= set(plan.rule.target_names) - names
    series_ids = {a.series_id for p in plans for a in p.actions if a.series_id}
    free = {
        sid: Coupon.objects.filter(series_id=sid, issued_at__isnull=True).count()
        for sid in series_ids
    }
    return Scenario(
        organisation=org,
        window=window,
        group=gcfg.group,
        gcfg=gcfg,
        targets=targets,
        stores=config.stores,
        as_of=timezone.now(),
        known=known,
        created_enrolled=[c for c, active in created if active]
        if request.target_group_id is None
        else [],
        custom_values=custom,
        promotions=plans,
        free_coupons=free,
        names=names,
        index=NameIndex.load(org.id, other_names),
        notes=notes,
    )


def _move_names_aside(group: TargetGroup) -> None:
    """Names of milestones, targets and periods are unique in the organisation: the
    existing milestone's step aside (inside the rolled-back transaction) so the simulated
    copy carries them, as promotion conditions and period values name them."""
    aside = Value("~simulation ")
    TargetGroup.objects.filter(pk=group.pk).update(
        name=Concat(aside, Cast("pk", output_field=CharField()))
    )
    Target.objects.filter(target_group=group).update(
        name=Concat(aside, Cast("pk", output_field=CharField()))
    )
    Period.objects.filter(target_group=group).update(
        name=Concat(aside, Cast("pk", output_field=CharField()))
    )


def _promotions(org, request: SimulationRequest, window: Window, names) -> list[PromotionPlan]:
    """The listed promotions and the drafts, laid over the window (live over all of it)."""
    errors: dict = {}
    plans: list[PromotionPlan] = []
    if request.promotions:
        found = {
            p.pk: p
            for p in Promotion.objects.filter(
                organisation=org, pk__in=request.promotions
            ).prefetch_related("actions__series")
        }
        problems = []
        spend = spend_of(list(found))
        for pid in request.promotions:
            promotion = found.get(pid)
            if promotion is None:
                problems.append(f"Unknown promotion {pid}.")
                continue
            try:
                rule = promotion.rule()
            except RuleError as exc:
                problems.append(
                    f"Promotion {promotion.name!r}: its condition does not compile ({exc})."
                )
                continue
            if rule.target_names and not set(rule.target_names) & names:
                problems.append(
                    f"Promotion {promotion.name!r} names none of this milestone's targets: it "
                    "would pay nothing here."
                )
                continue
            plans.append(
                PromotionPlan(
                    promotion=_over_window(promotion, window),
                    rule=rule,
                    actions=list(promotion.actions.all()),
                    spent_points=spend[pid].points,
                    spent_coupons=spend[pid].coupons,
                )
            )
        if problems:
            errors["promotions"] = problems
    drafts_refused = []
    for data in request.draft_promotions:
        try:
            with transaction.atomic():
                promotion = promotion_create(
                    organisation=org,
                    data={**data, "start": window.start, "end": window.end, "is_active": True},
                )
        except ValidationError as exc:
            drafts_refused.append(validation_error_to_dict(exc))
            continue
        drafts_refused.append({})
        actions = list(promotion.actions.select_related("series").order_by("position"))
        plans.append(
            PromotionPlan(promotion=promotion, rule=promotion.rule(), actions=actions, draft=True)
        )
    if any(drafts_refused):
        errors["draft_promotions"] = drafts_refused
    if errors:
        raise SimulationRefused(errors)
    return plans


def _over_window(promotion: Promotion, window: Window) -> Promotion:
    """The promotion live over the window (in memory only: never saved)."""
    promotion.start, promotion.end, promotion.is_active = window.start, window.end, True
    return promotion


# --- laying the cycles over the window ----------------------------------------------------------

_NUMBERED = re.compile(r"(?:.* )?[PpCc]?(\d+)")


def lay_over_window(data: dict, window: Window) -> tuple[dict, list[str]]:
    """The milestone's create shape with its dates and cycles over `window`: it starts on the
    window's first day; fixed calendar cycles are as many whole ones as fit (the milestone
    ends with the last); custom periods keep their lengths and gaps, moved to start with the
    window (those that would end after it are left out); cyclic and till-achievement cycles
    start with the window. Values of cycles the window does not hold are left out. Returns
    the data and notes for the person reading the result."""
    out = copy.deepcopy(data)
    notes: list[str] = []
    cycle = dict(out.get("cycle") or {})
    kind = cycle.get("type") or CycleType.FIXED_CALENDAR
    start, end = window.start, window.end
    count = cycle.get("count")
    kept_names: set[str] = set()
    dropped_names: set[str] = set()
    if kind == CycleType.CUSTOM_PERIODS:
        periods = [dict(p) for p in cycle.get("periods") or []]
        starts = [p["start"] for p in periods if p.get("start")]
        if starts:
            delta = start - min(starts)
            moved = [
                {**p, "start": p["start"] + delta, "end": p["end"] + delta}
                for p in periods
                if p.get("start") and p.get("end")
            ]
            kept = [p for p in moved if p["end"] <= window.end]
            if not kept:
                raise SimulationRefused(
                    {
                        "window": [
                            f"No period fits in the window {window.start} to {window.end}: "
                            "choose a longer window."
                        ]
                    }
                )
            if len(kept) < len(moved):
                notes.append(
                    f"{len(kept)} of the {len(moved)} periods fit in the window; the others "
                    "are left out."
                )
            cycle["periods"] = kept
            count = len(kept)
            kept_names = {p["name"] for p in kept if p.get("name")}
            dropped_names = {p["name"] for p in moved if p.get("name")} - kept_names
            end = max(p["end"] for p in kept)
    elif kind == CycleType.FIXED_CALENDAR:
        frequency, days = cycle.get("frequency") or "", cycle.get("days")
        try:
            count = windows_that_fit(start, window.end, frequency, days, MAX_CYCLES)
        except ValueError:
            count = None  # an unknown frequency: the create's check says so
        if count == 0:
            raise SimulationRefused(
                {
                    "window": [
                        f"Not one whole {str(frequency).replace('_', '-')} cycle fits in the "
                        f"window {window.start} to {window.end}: choose a longer window."
                    ]
                }
            )
        if count:
            end = fixed_windows(start, frequency, days, count)[-1][1]
            if end < window.end:
                notes.append(
                    f"The window holds {count} whole cycle{'s' if count != 1 else ''}, from "
                    f"{start} to {end}; the days after {end} are not replayed."
                )
        cycle["start"], cycle["count"] = start, None
    else:
        cycle["start"] = start
    out["cycle"] = cycle
    out["start"], out["end"] = start, end
    out["is_active"] = True
    out.pop("template", None)
    for target in out.get("targets") or []:
        values = target.get("period_values")
        if isinstance(values, dict) and count:
            target["period_values"] = {
                k: v
                for k, v in values.items()
                if str(k).strip() not in dropped_names and _cycle_kept(k, count, kept_names)
            }
    return out, notes


def _cycle_kept(key, count: int, kept_names: set[str]) -> bool:
    """Whether a period_values key names one of the first `count` cycles (or a kept period);
    a key it cannot read stays, for the create's check to name."""
    key = str(key).strip()
    if key in kept_names:
        return True
    match = _NUMBERED.fullmatch(key)
    if match is None:
        return True
    return int(match.group(1)) <= count
