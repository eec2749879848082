"""The organisation's trackable configuration, loaded once and cached per process.

A tracking batch asks for `tracked_targets(org)`: one cheap query compares the
configuration's version (latest change and count of the org's target groups) with the
cached one; only a change reloads targets, periods and compiled rules.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from django.db.models import Count, Max

from milestones.cycles import day_start
from milestones.models import Entity, Store, Target, TargetGroup
from rules import Rule, RuleError, compile_rule

from .models import ActivityType


@dataclass
class GroupConfig:
    group: TargetGroup
    periods: list  # Period rows sorted by starts_at
    starts: list = field(default_factory=list)  # their starts_at, for bisect
    cycle_start_at: datetime | None = None  # per-customer cycles: 00:00 of cycle_start
    end_at: datetime | None = None  # the instant the milestone's last day ends
    targets: list = field(default_factory=list)

    def period_name(self, ordinal: int) -> str:
        """A fixed period's name, or '<group> C<n>' for per-customer cycles."""
        for period in self.periods:
            if period.ordinal == ordinal:
                return period.name
        return f"{self.group.name} C{ordinal}"

    def period_for(self, at: datetime):
        i = bisect.bisect_right(self.starts, at) - 1
        if i >= 0 and at < self.periods[i].ends_at:
            return self.periods[i]
        return None


@dataclass
class TargetConfig:
    target: Target
    group: GroupConfig
    rule: Rule | None
    subs: list = field(default_factory=list)  # the target's sub-targets
    _thresholds: dict = field(default_factory=dict, repr=False)

    @cached_property
    def signature(self) -> tuple:
        """Everything `kpis.contribution` reads of the target: targets with the same signature
        get the same contribution from an activity, so it is worked out once per activity."""
        t = self.target
        return (
            t.kpi, t.entity, self.rule.source if self.rule else None, t.event_name, t.attribute,
            t.extended_field, t.extended_field_value, t.points_type,
            tuple(t.scope_stores or ()), tuple(t.scope_zones or ()), tuple(t.scope_concepts or ()),
        )  # fmt: skip

    @cached_property
    def additive_in_fixed_periods(self) -> bool:
        """Can this target be folded set-based (`sql_fold`), whatever the activity: an
        additive KPI in fixed periods, not fed by other milestones."""
        from .kpis import is_day_based

        return (
            self.group.group.has_fixed_periods
            and not is_day_based(self.target.kpi)
            and not self.target.source_target_group_id
        )

    def thresholds(self, defined) -> list:
        """[(sub-target, the value that reaches it)] for a target value: computed once per
        value (most customers share the default)."""
        cached = self._thresholds.get(defined)
        if cached is None:
            if len(self._thresholds) > 10_000:  # per-customer values: keep the cache bounded
                self._thresholds.clear()
            cached = self._thresholds[defined] = [(s, s.threshold(defined)) for s in self.subs]
        return cached


@dataclass
class OrgConfig:
    version: tuple
    groups: dict  # id -> GroupConfig
    targets_by_entity: dict  # entity -> [TargetConfig]
    stores: dict  # code -> (zone, concept)
    by_source_group: dict  # source target group id -> [TargetConfig] (milestones achieved)


_cache: dict[int, OrgConfig] = {}
_lock = threading.Lock()

ENTITIES_FOR_ACTIVITY = {
    ActivityType.TRANSACTION: (Entity.TRANSACTION, Entity.LINE_ITEM),
    ActivityType.RETURN: (Entity.TRANSACTION, Entity.LINE_ITEM, Entity.CUSTOMER_EVENT),
    ActivityType.EVENT: (Entity.EVENT,),
    ActivityType.CUSTOMER_EVENT: (Entity.CUSTOMER_EVENT,),
    ActivityType.POINTS: (Entity.POINTS,),
}


def _version(org) -> tuple:
    agg = TargetGroup.objects.filter(organisation=org).aggregate(v=Max("updated_at"), n=Count("id"))
    stores = Store.objects.filter(organisation=org).aggregate(n=Count("id"), m=Max("id"))
    return (agg["v"], agg["n"], stores["n"], stores["m"])


def org_config(org) -> OrgConfig:
    version = _version(org)
    cached = _cache.get(org.id)
    if cached is not None and cached.version == version:
        return cached
    with _lock:
        config = _load(org, version)
        _cache[org.id] = config
        return config


def invalidate(org_id: int | None = None) -> None:
    if org_id is None:
        _cache.clear()
    else:
        _cache.pop(org_id, None)


def _load(org, version) -> OrgConfig:
    tz = org.tzinfo
    groups = {}
    for group in TargetGroup.objects.filter(organisation=org, is_active=True).prefetch_related(
        "periods"
    ):
        group.organisation = org
        periods = sorted(group.periods.all(), key=lambda p: p.starts_at)
        cfg = GroupConfig(group=group, periods=periods, starts=[p.starts_at for p in periods])
        if group.cycle_start:
            cfg.cycle_start_at = day_start(group.cycle_start, tz)
        cfg.end_at = day_start(group.end + timedelta(days=1), tz)
        groups[group.id] = cfg
    by_entity: dict[str, list] = {}
    by_source: dict[int, list] = {}
    targets = (
        Target.objects.filter(target_group_id__in=groups)
        .prefetch_related("sub_targets")
        .order_by("target_group_id", "ordinal", "id")
    )
    for target in targets:
        gcfg = groups[target.target_group_id]
        target.target_group = gcfg.group
        try:
            rule = (
                compile_rule(target.rule, purpose="target", entity=target.entity)
                if target.rule.strip()
                else None
            )
        except RuleError:
            rule = None  # validated at save; an old rule that no longer compiles matches nothing
            continue
        tcfg = TargetConfig(
            target=target, group=gcfg, rule=rule, subs=list(target.sub_targets.all())
        )
        gcfg.targets.append(tcfg)
        by_entity.setdefault(target.entity, []).append(tcfg)
        if target.source_target_group_id:
            by_source.setdefault(target.source_target_group_id, []).append(tcfg)
    stores = {s.code: (s.zone, s.concept) for s in Store.objects.filter(organisation=org)}
    return OrgConfig(
        version=version,
        groups=groups,
        targets_by_entity=by_entity,
        stores=stores,
        by_source_group=by_source,
    )
