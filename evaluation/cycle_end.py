"""Cycle-end evaluation: one `period_elapsed` event per enrolled customer, achieved or not.

Fixed periods are planned as one EvaluationRun per period (a unique row, so two planners can
never start overlapping runs of the same cycle) and worked in chunks of customers by id
range; each chunk is a single `INSERT ... SELECT ... ON CONFLICT DO NOTHING` per target, so
running twice, or resuming a killed run, writes exactly one event per customer and cycle.
Per-customer cycles (cyclic windows, till achievement) are evaluated at their own ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from enrolment.models import CustomerTargetValue, Enrolment
from milestones.cycles import cyclic_window, day_start
from milestones.models import CycleType, Period, TargetGroup

from . import events as events_
from .models import CycleAnchor, EvaluationRun, Progress, RunStatus, TargetEvent, TargetEventType
from .signals import target_events_written

CHUNK_SPAN = 10_000  # customer ids per chunk
REQUEUE_AFTER = timedelta(minutes=10)


@dataclass
class EvaluationSummary:
    runs: int = 0
    chunks: int = 0
    events: int = 0
    event_ids: list = field(default_factory=list)


def due_periods(*, as_of: datetime):
    """Fixed periods of active milestones whose end plus offset days has passed, not yet evaluated."""
    candidates = (
        Period.objects.filter(ends_at__lte=as_of, target_group__is_active=True)
        .exclude(evaluation_run__status=RunStatus.DONE)
        .select_related("target_group__organisation")
    )
    return [
        p
        for p in candidates
        if p.ends_at + timedelta(days=p.target_group.effective_offset_days) <= as_of
    ]


def evaluation_plan(*, as_of: datetime) -> list[EvaluationRun]:
    """Create (once) the run of every due period; return the runs not finished yet."""
    runs = []
    for period in due_periods(as_of=as_of):
        group = period.target_group
        enrolled = Enrolment.objects.filter(
            organisation_id=group.organisation_id, target_group=group, is_active=True
        )
        span = enrolled.aggregate(lo=Min("customer_id"), hi=Max("customer_id"))
        chunks = []
        if span["lo"] is not None:
            lo = span["lo"]
            while lo <= span["hi"]:
                chunks.append([lo, min(lo + CHUNK_SPAN - 1, span["hi"])])
                lo += CHUNK_SPAN
        total = enrolled.count()
        run, _ = EvaluationRun.objects.get_or_create(
            period=period,
            defaults={
                "organisation_id": group.organisation_id,
                "target_group": group,
                "chunks": chunks,
                "total": total,
            },
        )
        if run.status != RunStatus.DONE:
            if not run.chunks:
                _finish_if_complete(run.id)
                run.refresh_from_db()
            if run.status != RunStatus.DONE:
                runs.append(run)
    return runs


def _triggers_cte() -> str:
    """Names of the sub-targets each customer of the chunk reached in the cycle, aggregated once."""
    agg = (
        "jsonb_agg(st.name ORDER BY st.value)"
        if connection.vendor == "postgresql"
        else "json_group_array(st.name)"
    )
    order = "" if connection.vendor == "postgresql" else " ORDER BY st.value"
    return (
        f"WITH trig AS (SELECT customer_id, {agg} AS names FROM (SELECT se.customer_id, st.name, st.value "
        "FROM evaluation_targetevent se JOIN milestones_subtarget st ON st.id = se.sub_target_id "
        "WHERE se.organisation_id = %s AND se.target_id = %s AND se.cycle_ordinal = %s "
        f"AND se.type = '{TargetEventType.SUB_TARGET_ACHIEVED.value}' "
        f"AND se.customer_id BETWEEN %s AND %s{order}) st GROUP BY customer_id) "
    )


def evaluation_run_chunk(
    *, run_id: int, lo: int, hi: int, now: datetime | None = None
) -> list[int]:
    """Write the period_elapsed events of customers lo..hi of a run; idempotent."""
    now = now or timezone.now()
    run = (
        EvaluationRun.objects.select_related("period", "target_group__organisation")
        .filter(pk=run_id)
        .first()
    )
    if run is None or [lo, hi] in run.chunks_done:
        return []
    period, group = run.period, run.target_group
    occurred = period.ends_at + timedelta(days=group.effective_offset_days)
    adapt = connection.ops.adapt_datetimefield_value
    ids: list[int] = []
    with transaction.atomic():
        if run.status == RunStatus.PENDING:
            EvaluationRun.objects.filter(pk=run.pk, status=RunStatus.PENDING).update(
                status=RunStatus.RUNNING
            )
        for target in group.targets.all():
            default = target.value_for_cycle(period.ordinal)
            empty = "'[]'::jsonb" if connection.vendor == "postgresql" else "'[]'"
            sql = f"""
                INSERT INTO evaluation_targetevent (organisation_id, type, dedupe_key, customer_id, target_group_id,
                    target_id, sub_target_id, cycle_ordinal, period_name, achieved, defined, milestone_triggers,
                    milestone_value_defined, is_target_achieved_event, occurred_at, created_at, consumed_at)
                {_triggers_cte()}
                SELECT %s, '{TargetEventType.PERIOD_ELAPSED.value}', %s || CAST(e.customer_id AS TEXT) || %s, e.customer_id, %s,
                    %s, NULL, %s, %s, COALESCE(p.achieved, 0), COALESCE(p.target_value, v.value, %s),
                    COALESCE(trig.names, {empty}), NULL, FALSE, %s, %s, NULL
                FROM enrolment_enrolment e
                LEFT JOIN evaluation_progress p
                    ON p.customer_id = e.customer_id AND p.organisation_id = e.organisation_id
                    AND p.target_id = %s AND p.cycle_ordinal = %s
                LEFT JOIN enrolment_customertargetvalue v
                    ON v.customer_id = e.customer_id AND v.organisation_id = e.organisation_id
                    AND v.target_id = %s AND v.cycle_ordinal = %s
                LEFT JOIN trig ON trig.customer_id = e.customer_id
                WHERE e.organisation_id = %s AND e.target_group_id = %s AND e.is_active
                    AND e.customer_id BETWEEN %s AND %s
                ON CONFLICT (organisation_id, dedupe_key) DO NOTHING
                RETURNING id
            """
            params = [
                group.organisation_id, target.id, period.ordinal, lo, hi,
                group.organisation_id, f"period_elapsed:{target.id}:", f":{period.ordinal}", group.id,
                target.id, period.ordinal, period.name, str(default),
                adapt(occurred), adapt(now),
                target.id, period.ordinal, target.id, period.ordinal,
                group.organisation_id, group.id, lo, hi,
            ]  # fmt: skip
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                ids.extend(row[0] for row in cursor.fetchall())
        if ids:  # in this transaction: the webhooks outbox commits with the events
            target_events_written.send(
                sender=TargetEvent, organisation_id=group.organisation_id, event_ids=ids
            )
        customers = Enrolment.objects.filter(
            organisation_id=group.organisation_id,
            target_group=group,
            is_active=True,
            customer__id__range=(lo, hi),
        ).count()
        locked = EvaluationRun.objects.select_for_update().get(pk=run.pk)
        if [lo, hi] not in locked.chunks_done:
            locked.chunks_done = [*locked.chunks_done, [lo, hi]]
            locked.processed += customers
            locked.events_written += len(ids)
            locked.save(update_fields=["chunks_done", "processed", "events_written"])
    _finish_if_complete(run.id)
    return ids


def _finish_if_complete(run_id: int) -> None:
    with transaction.atomic():
        run = EvaluationRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.DONE and all(c in run.chunks_done for c in run.chunks):
            run.status = RunStatus.DONE
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])


def evaluate_per_customer_cycles(*, as_of: datetime) -> list[int]:
    """Cyclic windows and till-achievement cycles end per customer: evaluate those due.

    Per milestone, a fixed number of queries: what is enrolled, progressed, valued, already
    evaluated and which sub-targets were reached are each read once; only the missing events
    are built and written.
    """
    written: list[int] = []
    groups = TargetGroup.objects.filter(
        is_active=True, cycle_type__in=[CycleType.CYCLIC, CycleType.TILL_ACHIEVEMENT]
    ).select_related("organisation")
    for group in groups:
        offset = timedelta(days=group.effective_offset_days)
        targets = list(group.targets.all())
        org_id = group.organisation_id  # named in every read: docs/scaling.md, "Past one primary"
        enrolled = set(
            Enrolment.objects.filter(
                organisation_id=org_id, target_group=group, is_active=True
            ).values_list("customer_id", flat=True)
        )
        progress = {
            (p.target_id, p.customer_id, p.cycle_ordinal): p
            for p in Progress.objects.filter(organisation_id=org_id, target__in=targets)
        }
        due = []  # (customer_id, ordinal, end, only this target or None)
        if group.cycle_type == CycleType.CYCLIC:
            anchors = CycleAnchor.objects.filter(organisation_id=org_id, target_group=group)
            for customer_id, anchor in anchors.values_list("customer_id", "anchor_at"):
                for k in range(1, (group.cycle_count or 0) + 1):
                    end = cyclic_window(anchor, group.cycle_frequency, group.cycle_days, k)[1]
                    if end + offset <= as_of:
                        due.append((customer_id, k, end, None))
        else:
            group_end = day_start(group.end + timedelta(days=1), group.organisation.tzinfo)
            for (target_id, customer_id, ordinal), p in progress.items():
                end = p.cycle_end or group_end
                if end + offset <= as_of:
                    due.append((customer_id, ordinal, end, target_id))
        events = TargetEvent.objects.filter(organisation_id=org_id, target__in=targets)
        done = set(
            events.filter(type=TargetEventType.PERIOD_ELAPSED).values_list(
                "target_id", "customer_id", "cycle_ordinal"
            )
        )
        todo = [
            (target, customer_id, ordinal, end)
            for customer_id, ordinal, end, only_target in due
            if customer_id in enrolled
            for target in targets
            if (only_target is None or target.id == only_target)
            and (target.id, customer_id, ordinal) not in done
        ]
        if not todo:
            continue
        custom = {
            (v.target_id, v.customer_id, v.cycle_ordinal): v.value
            for v in CustomerTargetValue.objects.filter(organisation_id=org_id, target__in=targets)
        }
        reached: dict[tuple[int, int, int], list[str]] = {}
        for key in (
            events.filter(type=TargetEventType.SUB_TARGET_ACHIEVED)
            .order_by("sub_target__value")
            .values_list("target_id", "customer_id", "cycle_ordinal", "sub_target__name")
        ):
            reached.setdefault(key[:3], []).append(key[3])
        fresh = []
        for target, customer_id, ordinal, end in todo:
            key = (target.id, customer_id, ordinal)
            p = progress.get(key)
            fresh.append(events_.period_elapsed(
                org_id=group.organisation_id, customer_id=customer_id, group=group,
                target=target, ordinal=ordinal, period_name=f"{group.name} C{ordinal}",
                achieved=p.achieved if p else Decimal(0),
                defined=p.target_value if p else custom.get(key, target.value_for_cycle(ordinal)),
                triggers=reached.get(key, []), at=end + offset,
            ))  # fmt: skip
        # Only the rows this planner inserted count as its own, even when two race.
        written += events_.write_once(organisation_id=group.organisation_id, fresh=fresh)
    return written


def evaluate_cycles(*, as_of: datetime | None = None, inline: bool = True) -> EvaluationSummary:
    """Plan every due cycle and evaluate it (inline, or by queueing chunk tasks)."""
    as_of = as_of or timezone.now()
    summary = EvaluationSummary()
    runs = evaluation_plan(as_of=as_of)
    summary.runs = len(runs)
    for run in runs:
        pending = [c for c in run.chunks if c not in run.chunks_done]
        summary.chunks += len(pending)
        if inline:
            for lo, hi in pending:
                ids = evaluation_run_chunk(run_id=run.id, lo=lo, hi=hi)
                summary.events += len(ids)
                summary.event_ids.extend(ids)
        else:
            # Lease: only one planner queues a run's chunks within REQUEUE_AFTER.
            now = timezone.now()
            lease = Q(queued_at__isnull=True) | Q(queued_at__lt=now - REQUEUE_AFTER)
            if EvaluationRun.objects.filter(lease, pk=run.pk).update(queued_at=now):
                from .tasks import evaluate_chunk

                for lo, hi in pending:
                    evaluate_chunk.delay(run.id, lo, hi)
    ids = evaluate_per_customer_cycles(as_of=as_of)
    summary.events += len(ids)
    summary.event_ids.extend(ids)
    return summary
