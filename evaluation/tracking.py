"""The tracking engine: fold activities into per-customer, per-cycle progress and write the
sub-target and achievement events in the same transaction.

Work is done for a batch of customers inside one transaction: the customers' rows are locked
first, in id order (so two workers on the same customer serialise, totals stay exact and
workers never deadlock), their pending activities are claimed with a conditional update (a
retried or duplicated task finds nothing to do), state is read with one query per kind,
folded in memory customer by customer, and written with one bulk statement per kind. Events carry a unique `dedupe_key`, so each
crossing is written once whatever happens.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from common import retry as retry_policy
from common.bulk import insert_rows, pg_array
from enrolment.models import Customer, CustomerTargetValue
from enrolment.services import auto_enrol_on_activities
from milestones.cycles import cyclic_cycle_at, till_cycle_at
from milestones.models import CycleType, Organisation, UnifiedMode

from . import config_cache, events, ranks, sql_fold
from .kpis import (
    DAILY_MAX_KPIS,
    SALES_KPIS,
    Contribution,
    check_progress,
    contribution,
    is_day_based,
)
from .models import (
    Activity,
    ActivityStatus,
    ActivityType,
    CycleAnchor,
    EvaluationRun,
    GroupAchievement,
    Progress,
    ProgressDay,
    RunStatus,
    TargetEvent,
    TargetEventType,
)
from .models import (
    Contribution as ContributionRow,
)
from .signals import target_events_written

log = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass
class TrackResult:
    activities: int = 0
    events: list = field(default_factory=list)  # ids of TargetEvents written
    achieved_targets: set = field(default_factory=set)  # target ids achieved in this run


BATCH_CUSTOMERS = 500


def activities_track(
    *,
    activity_ids: list[int],
    organisation_id: int | None = None,
    reprocess: bool = False,
    only_group_id: int | None = None,
    now: datetime | None = None,
) -> TrackResult:
    """Track the given activities (those still pending; or, when reprocessing, any).

    `now` decides which cycles are still open (end + offset days); it defaults to the clock.

    `organisation_id`, when the caller knows it, scopes the first read too, so every
    statement names the organisation (docs/scaling.md, "Past one primary"): activities of
    another organisation among the ids are then left alone. Without it, that first read (by
    primary key only) finds the organisations; it is the one statement a database
    distributed by organisation could not send to one node.

    No poison pills: a batch that fails is tracked again customer by customer, and a customer
    that fails activity by activity; the activity that fails alone is marked failed with its
    error (`activity_failed`) and the others are tracked. A transient database error
    (`OperationalError`) is not isolated: it fails the task, which Celery retries.
    """
    result = TrackResult()
    scope = Activity.objects.filter(id__in=activity_ids)
    if organisation_id is not None:
        scope = scope.filter(organisation_id=organisation_id)
    rows = scope.values_list("organisation_id", "customer_id").distinct()
    by_org: dict[int, set[int]] = defaultdict(set)
    for org_id, customer_id in rows:
        by_org[org_id].add(customer_id)
    for org_id, customer_ids in by_org.items():
        ordered = sorted(customer_ids)
        for start in range(0, len(ordered), BATCH_CUSTOMERS):
            _track_isolated(
                org_id,
                ordered[start : start + BATCH_CUSTOMERS],
                activity_ids,
                result,
                reprocess=reprocess,
                only_group_id=only_group_id,
                now=now,
            )
    return result


def _track_isolated(org_id, customer_ids, activity_ids, result: TrackResult, **options) -> None:
    """`_track_batch`, narrowed down to the failing customer, then activity, on an error."""
    try:
        _track_merged(org_id, customer_ids, activity_ids, result, options)
        return
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - isolate whatever it is; logged and recorded
        if len(customer_ids) > 1:
            log.warning(
                "tracking batch of %d customers failed (%s); isolating", len(customer_ids), exc
            )
            for cid in customer_ids:
                _track_isolated(org_id, [cid], activity_ids, result, **options)
            return
    # One customer: its activities one at a time, in time order.
    (cid,) = customer_ids
    wanted = set(activity_ids)
    qs = Activity.objects.filter(organisation_id=org_id, customer_id=cid, id__in=wanted)
    if not options.get("reprocess"):
        qs = qs.filter(status=ActivityStatus.PENDING)
    ids = list(qs.order_by("occurred_at", "id").values_list("id", flat=True))
    if options.get("reprocess") and options.get("only_group_id") is not None:
        with transaction.atomic():
            locking = Customer.objects.select_for_update(no_key=True)
            list(locking.filter(organisation_id=org_id, pk=cid).values_list("pk"))
            reset_group_state(
                customer_ids=[cid], group_id=options["only_group_id"], organisation_id=org_id
            )
        options = {**options, "reset": False}
    for aid in ids:
        try:
            _track_merged(org_id, [cid], [aid], result, options)
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - this is the poison: mark it, go on
            log.warning("activity %s failed tracking: %s", aid, exc)
            activity_failed(
                activity_id=aid,
                error=exc,
                tracked=options.get("reprocess", False),
                organisation_id=org_id,
            )


MAX_ATTEMPTS = 3  # automatic attempts at a failed activity; then a person retries it


def activities_retry(*, organisation_id: int, activity_ids) -> list[int]:
    """Put failed activities (of this organisation) back to pending, their error cleared;
    returns the ids to queue. A person's retry also restarts the automatic attempts."""
    qs = Activity.objects.filter(
        organisation_id=organisation_id, id__in=list(activity_ids), status=ActivityStatus.FAILED
    )
    ids = list(qs.values_list("id", flat=True))
    Activity.objects.filter(
        organisation_id=organisation_id, id__in=ids, status=ActivityStatus.FAILED
    ).update(status=ActivityStatus.PENDING, error="", attempts=0)
    return ids


def activities_due(*, older_than, per_organisation: int) -> list[int]:
    """What the sweep queues, per organisation (one tenant's backlog never delays another's):
    activities left pending (a lost message, a broker outage, a killed worker), and failed ones
    due for an automatic retry (1 minute after the first failure, then 4), which go back to
    pending here. Failed activities past MAX_ATTEMPTS wait for a person."""
    now = timezone.now()
    retry = Activity.objects.filter(
        retry_policy.due(
            attempts="attempts", failed_at="processed_at", max_attempts=MAX_ATTEMPTS, now=now
        ),
        status=ActivityStatus.FAILED,
    )
    retry.update(status=ActivityStatus.PENDING)
    pending = Activity.objects.filter(
        status=ActivityStatus.PENDING, received_at__lt=now - older_than
    )
    return retry_policy.oldest_per_organisation(pending, per_organisation)


def _track_merged(org_id, customer_ids, activity_ids, result: TrackResult, options) -> None:
    """A batch that rolls back leaves `result` as it was."""
    part = TrackResult()
    _track_batch(org_id, customer_ids, activity_ids, part, **options)
    result.activities += part.activities
    result.events.extend(part.events)
    result.achieved_targets |= part.achieved_targets


def activity_failed(
    *,
    activity_id: int,
    error: Exception | str,
    tracked: bool = False,
    organisation_id: int | None = None,
) -> None:
    """Record a failed activity: its error, one more attempt. The sweep retries it after a
    backoff until MAX_ATTEMPTS; then it waits for a person (the admin's retry action).
    `tracked`: reprocessing found it failing (it was done; it no longer counts)."""
    text = str(error) or type(error).__name__
    qs = Activity.objects.filter(pk=activity_id)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    if not tracked:  # a racing worker may have tracked it meanwhile: then it stays done
        qs = qs.exclude(status=ActivityStatus.DONE)
    qs.update(
        status=ActivityStatus.FAILED,
        error=text[:2000],
        attempts=F("attempts") + 1,
        processed_at=timezone.now(),
    )


def reset_group_state(*, customer_ids, group_id: int, organisation_id: int | None = None) -> None:
    """Forget these customers' progress, cycle anchors and group achievements for one
    milestone (reprocessing rebuilds them); call with the customers locked."""
    scope = {"organisation_id": organisation_id} if organisation_id is not None else {}
    Progress.objects.filter(
        **scope, customer_id__in=customer_ids, target__target_group_id=group_id
    ).delete()
    CycleAnchor.objects.filter(
        **scope, customer_id__in=customer_ids, target_group_id=group_id
    ).delete()
    GroupAchievement.objects.filter(
        **scope, customer_id__in=customer_ids, target_group_id=group_id
    ).delete()


def _customer_profile(customer: Customer) -> dict:
    return {
        "mobile": customer.mobile or "",
        "email": customer.email or "",
        "externalId": customer.external_id or "",
        "name": customer.name,
        "attributes": customer.attributes or {},
    }


@transaction.atomic
def _track_batch(
    org_id,
    customer_ids,
    activity_ids,
    result: TrackResult,
    *,
    reprocess=False,
    only_group_id=None,
    now=None,
    reset=True,
) -> None:
    """One transaction for a batch of customers, locked in id order (no deadlocks between
    workers); a fixed number of statements whatever the batch size."""
    customers = {
        c.id: c
        for c in Customer.objects.select_for_update(no_key=True)
        .filter(organisation_id=org_id, pk__in=customer_ids)
        .order_by("pk")
    }
    if not customers:
        return
    org = Organisation.objects.get(pk=org_id)
    now = now or timezone.now()
    locked = list(customers)
    qs = Activity.objects.filter(
        organisation_id=org_id, id__in=activity_ids, customer_id__in=locked
    )
    if reprocess and only_group_id is not None and reset:
        # Rebuild these customers' state for the milestone from scratch, under the lock.
        reset_group_state(customer_ids=locked, group_id=only_group_id, organisation_id=org_id)
    if reprocess:
        activities = list(qs.order_by("occurred_at", "id"))
    else:
        # Claim: only activities still pending; a duplicate delivery finds none.
        activities = list(qs.filter(status=ActivityStatus.PENDING).order_by("occurred_at", "id"))
        if not activities:
            return
        Activity.objects.filter(
            organisation_id=org_id,
            id__in=[a.id for a in activities],
            status=ActivityStatus.PENDING,
        ).update(status=ActivityStatus.DONE, processed_at=now)
    result.activities += len(activities)
    config = config_cache.org_config(org)
    tz = org.tzinfo

    # 1. What counts for which target (independent of cycles and enrolment).
    matches: dict[int, list] = defaultdict(
        list
    )  # customer id -> [(activity, TargetConfig, Contribution)]
    profiles: dict[int, dict] = {}
    for activity in activities:
        customer = customers[activity.customer_id]
        profile = profiles.get(customer.id)
        if profile is None:
            profile = profiles[customer.id] = _customer_profile(customer)
        memo: dict = {}  # rule verdicts shared by this activity's targets
        same: dict = {}  # contribution per target signature (milestones often share one)
        for entity in config_cache.ENTITIES_FOR_ACTIVITY.get(activity.type, ()):
            for tcfg in config.targets_by_entity.get(entity, ()):
                if only_group_id is not None and tcfg.group.group.id != only_group_id:
                    continue
                if activity.occurred_at >= tcfg.group.end_at:
                    continue
                signature = tcfg.signature
                if signature in same:
                    c = same[signature]
                else:
                    c = same[signature] = contribution(tcfg.target, tcfg.rule, activity, tz=tz, store=config.stores.get(activity.store_code),
                                                       customer_profile=profile, allow_returns=org.allow_return_on_target, memo=memo)  # fmt: skip
                if c is not None:
                    matches[customer.id].append((activity, tcfg, c))
    if not matches:
        return

    # 2. Enrolment: enrolled customers, plus 'all customers' milestones on first activity.
    wanted = {
        cid: list({t.group.group.id: t.group.group for _, t, _ in ms}.values())
        for cid, ms in matches.items()
    }
    enrolled = auto_enrol_on_activities(
        wanted=wanted,
        loyalty={cid: customers[cid].is_loyalty_member for cid in wanted},
        organisation_id=org.id,
    )
    for cid in list(matches):
        matches[cid] = [m for m in matches[cid] if m[1].group.group.id in enrolled.get(cid, ())]
        if not matches[cid]:
            del matches[cid]
    if not matches:
        return

    # 3. Additive KPIs in fixed periods: one upsert for all of them (sql_fold).
    folded = None
    if sql_fold.enabled(reprocess=reprocess):
        fast = sql_fold.split(matches)
        if fast:
            closed_periods, closed = _closed(fast, org.id)
            folded = sql_fold.fold(org=org, fast=fast, closed=closed, closed_periods=closed_periods)

    # 4. The rest row by row, in time order, customer by customer; then group achievements
    # (of either fold's targets) and everything written at once.
    states: dict[int, _CustomerState] = {}
    if matches:
        preload = _Preload(matches, org.id)
        for cid, ms in matches.items():
            state = states[cid] = _CustomerState(customers[cid], org, config, reprocess=reprocess)
            state.load(preload, ms)
            for activity, tcfg, c in ms:
                state.apply(activity, tcfg, c)
    if folded is not None:
        for cid, reached in folded.newly_achieved.items():
            state = states.get(cid)
            if state is None:
                state = states[cid] = _CustomerState(customers[cid], org, config)
                state.closed, state.closed_periods = set(closed.get(cid, ())), closed_periods
            state.newly_achieved.extend(reached)
    for state in states.values():
        state.group_achievements()
    _flush(list(states.values()), org, result, reprocess=reprocess, folded=folded)


def _closed(matches: dict[int, list], org_id: int) -> tuple[set, dict[int, set]]:
    """Cycles that take no more activities: (milestone, cycle) whose cycle-end run is done, and
    per customer the (target, cycle) whose end was already evaluated for them."""
    customer_ids = list(matches)
    target_ids = {t.target.id for ms in matches.values() for _, t, _ in ms}
    group_ids = {t.group.group.id for ms in matches.values() for _, t, _ in ms}
    periods = set(
        EvaluationRun.objects.filter(
            target_group_id__in=group_ids, status=RunStatus.DONE
        ).values_list("target_group_id", "period__ordinal")
    )
    closed: dict[int, set] = defaultdict(set)
    for cid, tid, ordinal in TargetEvent.objects.filter(
        organisation_id=org_id,
        customer_id__in=customer_ids,
        target_id__in=target_ids,
        type=TargetEventType.PERIOD_ELAPSED,
    ).values_list("customer_id", "target_id", "cycle_ordinal"):
        closed[cid].add((tid, ordinal))
    return periods, closed


class _Preload:
    """Everything the batch's customers need, read with one query per kind."""

    def __init__(self, matches: dict[int, list], org_id: int):
        customer_ids = list(matches)
        target_ids = {t.target.id for ms in matches.values() for _, t, _ in ms}
        group_ids = {t.group.group.id for ms in matches.values() for _, t, _ in ms}
        self.progress: dict[int, dict] = defaultdict(dict)
        rows = list(
            Progress.objects.filter(
                organisation_id=org_id, customer_id__in=customer_ids, target_id__in=target_ids
            )
        )
        for row in rows:
            self.progress[row.customer_id][(row.target_id, row.cycle_ordinal)] = row
        self.days: dict[int, dict] = defaultdict(dict)
        # only day-based KPIs keep per-day values: other targets' rows have none to read
        day_targets = {
            t.target.id for ms in matches.values() for _, t, _ in ms if is_day_based(t.target.kpi)
        }
        day_rows = [row.pk for row in rows if row.target_id in day_targets]
        if day_rows:
            for progress_id, day, value in ProgressDay.objects.filter(
                progress_id__in=day_rows
            ).values_list("progress_id", "day", "value"):
                self.days[progress_id][day] = value
        self.anchors: dict[int, dict] = defaultdict(dict)
        for cid, gid, at in CycleAnchor.objects.filter(
            organisation_id=org_id, customer_id__in=customer_ids, target_group_id__in=group_ids
        ).values_list("customer_id", "target_group_id", "anchor_at"):
            self.anchors[cid][gid] = at
        self.custom: dict[int, dict] = defaultdict(dict)
        for cid, tid, ordinal, value in CustomerTargetValue.objects.filter(
            organisation_id=org_id, customer_id__in=customer_ids, target_id__in=target_ids
        ).values_list("customer_id", "target_id", "cycle_ordinal", "value"):
            self.custom[cid][(tid, ordinal)] = value
        self.closed_periods, self.closed = _closed(matches, org_id)


class _CustomerState:
    """Progress of one customer for the targets in play, changed in memory, then written."""

    def __init__(self, customer, org, config, *, reprocess=False):
        self.customer, self.org, self.config, self.reprocess = customer, org, config, reprocess
        self.progress: dict[tuple[int, int], Progress] = {}  # (target_id, ordinal) -> row
        self.days: dict[int, dict] = {}  # progress id -> {day: value}
        self.new_days: dict[tuple[int, int], dict] = defaultdict(dict)
        self.contributions: list[tuple[Activity, tuple[int, int], Decimal]] = []
        self.events: list[TargetEvent] = []
        self.anchors: dict[int, datetime] = {}
        self.new_anchors: dict[int, datetime] = {}
        self.custom_values: dict[tuple[int, int], Decimal] = {}
        self.closed: set[tuple[int, int]] = set()
        self.closed_periods: set[tuple[int, int]] = set()
        self.dirty: set[tuple[int, int]] = set()
        self.touched_groups: set[int] = set()
        self.loaded_targets: set[int] = set()
        # (group id, cycle, when) with a target just reached
        self.newly_achieved: list[tuple[int, int, datetime]] = []
        self.reached_targets: set[int] = set()  # target ids reached here (for audiences)

    def load(self, preload: _Preload, matches) -> None:
        cid = self.customer.id
        self.loaded_targets |= {t.target.id for _, t, _ in matches}
        self.progress = dict(preload.progress.get(cid, {}))
        for row in self.progress.values():
            if row.pk in preload.days:
                self.days[row.pk] = dict(preload.days[row.pk])
        self.anchors = dict(preload.anchors.get(cid, {}))
        self.custom_values = dict(preload.custom.get(cid, {}))
        self.closed = set(preload.closed.get(cid, ()))
        self.closed_periods = preload.closed_periods

    # --- cycles -----------------------------------------------------------------------------
    def _cycle(self, tcfg, at: datetime):
        """(ordinal, start, end, period) of the cycle `at` falls in, or None."""
        gcfg = tcfg.group
        group = gcfg.group
        if group.has_fixed_periods:
            period = gcfg.period_for(at)
            if period is None:
                return None
            return period.ordinal, period.starts_at, period.ends_at, period
        if at < gcfg.cycle_start_at:
            return None
        if group.cycle_type == CycleType.CYCLIC:
            anchor = self.anchors.get(group.id)
            if anchor is None:
                anchor = at  # the first tracked activity on or after the cycle start
                self.anchors[group.id] = anchor
                self.new_anchors[group.id] = anchor
            return cyclic_cycle_at(
                anchor, group.cycle_frequency, group.cycle_days, group.cycle_count, at
            )
        # till achievement: the open cycle, or the next one when the last was achieved
        target_id = tcfg.target.id
        rows = sorted((o, r) for (t, o), r in self.progress.items() if t == target_id)
        last = (rows[-1][0], rows[-1][1].cycle_start, rows[-1][1].achieved_at) if rows else None
        return till_cycle_at(last, group.cycle_count, at)

    def _is_open(self, tcfg, ordinal, end) -> bool:
        """A cycle takes activities dated inside it until its cycle-end evaluation has run
        (that is at its end plus the offset days, so late arrivals inside the offset window
        count); reprocessing rebuilds every cycle, and events already sent are never resent."""
        if self.reprocess:
            return True
        if (tcfg.target.id, ordinal) in self.closed:
            return False
        return (tcfg.group.group.id, ordinal) not in self.closed_periods

    def _row(self, tcfg, ordinal, start, end, period) -> Progress:
        key = (tcfg.target.id, ordinal)
        row = self.progress.get(key)
        if row is None:
            value = self.custom_values.get(key)
            row = Progress(
                organisation_id=self.org.id,
                target=tcfg.target,
                customer=self.customer,
                cycle_ordinal=ordinal,
                period=period,
                cycle_start=start,
                cycle_end=end,
                target_value=value if value is not None else tcfg.target.value_for_cycle(ordinal),
                achieved=ZERO,
            )
            self.progress[key] = row
        return row

    # --- folding ----------------------------------------------------------------------------
    def apply(self, activity, tcfg, c: Contribution, at: datetime | None = None) -> None:
        """Fold one contribution (from an activity, or derived: `activity` None and `at`)."""
        target = tcfg.target
        at = activity.occurred_at if activity is not None else at
        if (
            activity is not None
            and activity.type == ActivityType.RETURN
            and target.kpi in SALES_KPIS
        ):
            row = self._original_bill_row(activity, tcfg)
            if row is None:
                return
        else:
            cycle = self._cycle(tcfg, at)
            if cycle is None or not self._is_open(tcfg, cycle[0], cycle[2]):
                return
            row = self._row(tcfg, *cycle)
        key = (target.id, row.cycle_ordinal)
        old = row.achieved
        if is_day_based(target.kpi):
            days = self.days.setdefault(id(row) if row.pk is None else row.pk, {})
            current = days.get(c.day)
            if target.kpi in DAILY_MAX_KPIS:
                value = c.day_value if current is None else max(current, c.day_value)
            else:
                value = Decimal(1)
            if current == value:
                return
            days[c.day] = value
            self.new_days[key][c.day] = value
            new = sum(days.values(), ZERO) if target.kpi in DAILY_MAX_KPIS else Decimal(len(days))
        else:
            new = old + c.amount
            check_progress(activity, new)
        row.achieved = new
        row.reached_at = at if row.reached_at is None else max(row.reached_at, at)
        self.dirty.add(key)
        self.touched_groups.add(tcfg.group.group.id)
        if activity is not None and activity.bill_number and target.kpi in SALES_KPIS:
            # Kept where a return may need to find the cycle that counted its bill.
            self.contributions.append((activity, key, new - old))
        self._crossings(tcfg, row, old, new, at)

    def _original_bill_row(self, activity, tcfg):
        """The row of the cycle that counted the return's bill: the earliest transaction with
        that bill number, among those tracked before (contribution rows) and those folded
        earlier in this batch (not written yet)."""
        if not activity.bill_number:
            return None
        target_id = tcfg.target.id
        original = (
            ContributionRow.objects.filter(
                progress__organisation_id=self.org.id,
                progress__customer=self.customer,
                progress__target=tcfg.target,
                activity__organisation_id=self.org.id,
                activity__bill_number=activity.bill_number,
                activity__type=ActivityType.TRANSACTION,
            )
            .select_related("progress", "activity")
            .order_by("activity__occurred_at")
            .first()
        )
        in_batch = next(
            (
                (a.occurred_at, key)
                for a, key, _ in self.contributions  # in time order: the first is the earliest
                if key[0] == target_id
                and a.type == ActivityType.TRANSACTION
                and a.bill_number == activity.bill_number
            ),
            None,
        )
        if in_batch is not None and (
            original is None or in_batch[0] < original.activity.occurred_at
        ):
            key = in_batch[1]
            return None if key in self.closed else self.progress[key]
        if original is None:
            return None
        key = (target_id, original.progress.cycle_ordinal)
        if key in self.closed:
            return None
        return self.progress.setdefault(key, original.progress)

    def _crossings(self, tcfg, row, old, new, at) -> None:
        group = tcfg.group.group
        written, reached = events.crossings(
            org=self.org, customer_id=self.customer.id, tcfg=tcfg, ordinal=row.cycle_ordinal,
            defined=row.target_value, old=old, new=new, at=at, achieved_at=row.achieved_at,
        )  # fmt: skip
        self.events += written
        if reached:
            row.achieved_at = at
            self.newly_achieved.append((group.id, row.cycle_ordinal, at))
            self.reached_targets.add(tcfg.target.id)
            if group.cycle_type == CycleType.TILL_ACHIEVEMENT:
                row.cycle_end = at

    # --- writing ----------------------------------------------------------------------------
    def group_achievements(self) -> None:
        """Whole target groups reached in a cycle: every target (single tracking) or ALL/ANY of
        them (unified). Each is recorded once; unified groups send their own achievement event,
        and 'milestones achieved' targets fed by the group count one more — which may in turn
        complete their own group (third-level tracking), so this runs until nothing changes.
        Reached targets are taken in time order: the two folds each hand theirs over in time
        order, and the groups they complete feed 'milestones achieved' targets in that order."""
        seen = set()
        self.newly_achieved.sort(key=lambda reached: reached[2])
        while self.newly_achieved:
            gid, ordinal, _ = self.newly_achieved.pop(0)
            if (gid, ordinal) in seen or gid not in self.config.groups:
                continue
            seen.add((gid, ordinal))
            gcfg = self.config.groups[gid]
            group = gcfg.group
            target_ids = [t.target.id for t in gcfg.targets]
            missing = [t for t in target_ids if (t, ordinal) not in self.progress]
            if missing:
                for row in Progress.objects.filter(
                    organisation_id=self.org.id,
                    customer=self.customer,
                    target_id__in=missing,
                    cycle_ordinal=ordinal,
                ):
                    self.progress[(row.target_id, ordinal)] = row
            rows = [self.progress.get((t, ordinal)) for t in target_ids]
            reached = [r is not None and r.achieved_at is not None for r in rows]
            ok = any(reached) if group.unified_mode == UnifiedMode.ANY else all(reached)
            if not ok:
                continue
            when = max(r.achieved_at for r in rows if r is not None and r.achieved_at is not None)
            if GroupAchievement.objects.filter(
                organisation_id=self.org.id,
                target_group=group,
                customer=self.customer,
                cycle_ordinal=ordinal,
            ).exists():
                continue
            GroupAchievement.objects.create(
                organisation_id=self.org.id,
                target_group=group,
                customer=self.customer,
                cycle_ordinal=ordinal,
                achieved_at=when,
            )
            if group.unified_mode != UnifiedMode.NONE and self.org.award_when_target_achieved:
                self.events.append(events.unified_achieved(
                    org_id=self.org.id, customer_id=self.customer.id, group=group,
                    ordinal=ordinal, reached=sum(reached), at=when,
                    defined=len(target_ids) if group.unified_mode == UnifiedMode.ALL else 1,
                    period_name=gcfg.period_name(ordinal),
                ))  # fmt: skip
            self._feed_milestones_achieved(gid, when)

    def _feed_milestones_achieved(self, source_gid: int, when: datetime) -> None:
        consumers = self.config.by_source_group.get(source_gid, [])
        if not consumers:
            return
        groups = {t.group.group.id: t.group.group for t in consumers}
        enrolled = auto_enrol_on_activities(
            wanted={self.customer.id: list(groups.values())},
            loyalty={self.customer.id: self.customer.is_loyalty_member},
            organisation_id=self.org.id,
        )[self.customer.id]
        for tcfg in consumers:
            if tcfg.group.group.id not in enrolled or when >= tcfg.group.end_at:
                continue
            self._ensure_loaded(tcfg)
            self.apply(None, tcfg, Contribution(Decimal(1)), at=when)

    def _ensure_loaded(self, tcfg) -> None:
        tid = tcfg.target.id
        if tid in self.loaded_targets:
            return
        self.loaded_targets.add(tid)
        org_id = self.org.id
        for row in Progress.objects.filter(
            organisation_id=org_id, customer=self.customer, target_id=tid
        ):
            self.progress.setdefault((tid, row.cycle_ordinal), row)
        closed = TargetEvent.objects.filter(
            organisation_id=org_id,
            customer=self.customer,
            target_id=tid,
            type=TargetEventType.PERIOD_ELAPSED,
        )
        self.closed |= set(closed.values_list("target_id", "cycle_ordinal"))
        gid = tcfg.group.group.id
        done = EvaluationRun.objects.filter(target_group_id=gid, status=RunStatus.DONE)
        self.closed_periods = self.closed_periods | {
            (gid, o) for o in done.values_list("period__ordinal", flat=True)
        }


def _flush(
    states: list[_CustomerState],
    org,
    result: TrackResult,
    *,
    reprocess: bool,
    folded: sql_fold.Folded | None = None,
) -> None:
    """Write every customer's changes with one statement per kind (with the events,
    contributions and rank changes of the set-based fold, whose progress is written)."""
    folded = folded or sql_fold.Folded()
    anchors = [
        CycleAnchor(organisation_id=org.id, target_group_id=g, customer=st.customer, anchor_at=a)
        for st in states
        for g, a in st.new_anchors.items()
    ]
    if anchors:
        insert_rows(CycleAnchor, anchors, ignore_conflicts=True)
    new_rows, old_rows = [], []
    for st in states:
        for key in st.dirty:
            row = st.progress[key]
            (new_rows if row.pk is None else old_rows).append((st, row))
    temp_days = {id(r): st.days.pop(id(r), None) for st, r in new_rows}
    if new_rows:
        insert_rows(Progress, [r for _, r in new_rows], set_pks=True)
        for st, r in new_rows:
            if temp_days[id(r)] is not None:
                st.days[r.pk] = temp_days[id(r)]
    if old_rows:
        _update_progress([r for _, r in old_rows], org.id)
    days = [
        ProgressDay(progress=st.progress[k], day=day, value=v)
        for st in states
        for k, ds in st.new_days.items()
        for day, v in ds.items()
    ]
    if days:
        insert_rows(ProgressDay, days, unique_fields=["progress", "day"], update_fields=["value"])
    merged: dict[tuple[int, int], Decimal] = folded.contributions
    for st in states:
        for activity, key, amount in st.contributions:
            merged[(activity.id, st.progress[key].pk)] += amount
    if merged:
        if reprocess:
            ContributionRow.objects.filter(
                activity_id__in={a for a, _ in merged}, progress_id__in={p for _, p in merged}
            ).delete()
        insert_rows(
            ContributionRow,
            [
                ContributionRow(activity_id=a, progress_id=p, amount=amt)
                for (a, p), amt in merged.items()
            ],
            ignore_conflicts=True,
        )
    changed = folded.changed + [
        (r.target_id, r.cycle_ordinal, r.customer_id, r.achieved) for _, r in new_rows + old_rows
    ]
    if changed:
        transaction.on_commit(lambda: ranks.record(changed))
    events = folded.events + [e for st in states for e in st.events]
    if events:
        # Events are only written under their customer's lock, so "not there before" is exact.
        keys = {e.dedupe_key for e in events}
        existing = TargetEvent.objects.filter(organisation_id=org.id, dedupe_key__in=keys)
        before = set(existing.values_list("dedupe_key", flat=True))
        insert_rows(
            TargetEvent, [e for e in events if e.dedupe_key not in before], ignore_conflicts=True
        )
        written = list(existing.exclude(dedupe_key__in=before).values_list("id", flat=True))
        result.events.extend(written)
        if written:  # in this transaction: the webhooks outbox commits with the events
            target_events_written.send(
                sender=TargetEvent, organisation_id=org.id, event_ids=written
            )
    # reached whatever the award switch (which only decides whether an event is written)
    result.achieved_targets |= folded.reached_targets
    for state in states:
        result.achieved_targets |= state.reached_targets


def _update_progress(rows: list[Progress], org_id: int) -> None:
    """One `UPDATE ... FROM unnest(arrays)` on PostgreSQL (each column one array parameter);
    elsewhere one `UPDATE ... FROM (VALUES ...)` per thousand rows. Django's bulk_update
    builds a CASE per row and field, which costs more than the database work. The rows are
    the organisation's (`org_id`, named for a database distributed by organisation)."""
    adapt = connection.ops.adapt_datetimefield_value
    table = Progress._meta.db_table
    sets = (
        f"UPDATE {table} SET achieved = v.achieved, achieved_at = v.achieved_at, "
        f"cycle_end = v.cycle_end, reached_at = v.reached_at, updated_at = %s"
    )
    now = adapt(timezone.now())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"{sets} FROM unnest(%s::bigint[], %s::numeric[], %s::timestamptz[], "
                "%s::timestamptz[], %s::timestamptz[]) AS v(id, achieved, achieved_at, cycle_end, "
                f"reached_at) WHERE {table}.id = v.id AND {table}.organisation_id = %s",
                [
                    now,
                    pg_array([r.pk for r in rows]),
                    pg_array([r.achieved for r in rows]),
                    pg_array([r.achieved_at for r in rows]),
                    pg_array([r.cycle_end for r in rows]),
                    pg_array([r.reached_at for r in rows]),
                    org_id,
                ],
            )
        return
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        values = ", ".join("(%s, %s, %s, %s, %s)" for _ in chunk)
        params = []
        for r in chunk:
            params += [
                r.pk,
                str(r.achieved),
                adapt(r.achieved_at),
                adapt(r.cycle_end),
                adapt(r.reached_at),
            ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, achieved, achieved_at, cycle_end, reached_at) AS (VALUES {values}) "
                f"{sets} FROM v WHERE {table}.id = v.id AND {table}.organisation_id = %s",
                [*params, now, org_id],
            )
