"""Activities by month: the partitions pg_partman keeps ahead, and retention.

On PostgreSQL `evaluation_activity` is partitioned by RANGE on `occurred_at`, one partition
per calendar month in UTC (`evaluation_activity_p2026_01`, ...) plus a DEFAULT partition for
whatever falls outside them (an activity backdated before the first month); migration
`evaluation/0009_activity_partitions` converted the table. pg_partman creates the months
ahead: `partitions_maintain()` (beat, daily) runs `partman.run_maintenance()`, which keeps
three months made in advance. SQLite keeps one table: maintenance does nothing there.

Retention (`manage.py prune_activities`) works in whole UTC months. A month may go when no
milestone still needs it: a milestone needs the months its start..end (in its organisation's
time zone) overlaps while it is not ended, and always while it is active, because an active
milestone may be re-processed from its stored activities (`evaluation/reprocess.py`, the API's
ReprocessView refuses only inactive ones). If any month asked for is needed, nothing is
dropped. Otherwise each month, in its own transaction: its contributions are deleted (their
foreign key has no database constraint: activities are partitioned), then its partition is
detached and dropped, or, for rows in the DEFAULT partition and on SQLite, its rows are
deleted. With an export directory, the month's rows are written to a CSV file first, in the
same transaction, with the month locked against new rows so the file holds exactly what is
dropped.

The idempotency keys (`ActivityKey`) of dropped activities are kept: a replay of an old id is
still a duplicate, never a new activity counted again.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from milestones.cycles import date_range_instants
from milestones.models import MilestoneStatus, TargetGroup

from .models import Activity, Contribution

PARENT = Activity._meta.db_table
PARTMAN_PARENT = f"public.{PARENT}"
EXPORT_COLUMNS = [f.column for f in Activity._meta.concrete_fields]
# DETACH PARTITION locks the whole table: wait at most this long for ingest to let go.
LOCK_TIMEOUT = "5s"


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    """00:00 UTC of the first day of the moment's month (UTC), `months_back` months earlier."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def months_between(earlier: datetime, later: datetime) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def is_partitioned() -> bool:
    if not _postgres():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [PARENT]
        )
        return cursor.fetchone() is not None


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: the DEFAULT partition
    end: datetime | None


def partitions() -> list[Partition]:
    """The monthly partitions in time order, then the DEFAULT one ([] unless partitioned)."""
    if not is_partitioned():
        return []
    children = (
        "FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
        "WHERE h.inhparent = %s::regclass AND pg_get_expr(c.relpartbound, c.oid) "
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.relname, i.child_start_time, i.child_end_time "
            f"FROM (SELECT c.relname {children} <> 'DEFAULT') m "
            "CROSS JOIN LATERAL partman.show_partition_info("
            "  'public.' || m.relname, p_parent_table := %s) i "
            "ORDER BY i.child_start_time",
            [PARENT, PARTMAN_PARENT],
        )
        monthly = [Partition(name, start, end) for name, start, end in cursor.fetchall()]
        cursor.execute(f"SELECT c.relname {children} = 'DEFAULT'", [PARENT])
        default = [Partition(name, None, None) for (name,) in cursor.fetchall()]
    return monthly + default


def partitions_maintain() -> list[str]:
    """pg_partman's maintenance for the activities: the months ahead it creates (their
    names). Nothing on SQLite."""
    if not is_partitioned():
        return []
    before = {p.name for p in partitions()}
    with transaction.atomic(), connection.cursor() as cursor:
        # partman computes month boundaries in the session's time zone: UTC, like the table's
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("SELECT partman.run_maintenance(%s)", [PARTMAN_PARENT])
    return sorted({p.name for p in partitions()} - before)


# --- retention ------------------------------------------------------------------------------


@dataclass
class MonthToPrune:
    start: datetime
    end: datetime
    rows: int
    partition: str | None  # dropped whole; None: the month's rows are deleted
    needed_by: list[TargetGroup] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"


@dataclass
class PrunePlan:
    older_than: int
    current_month: datetime
    cutoff: datetime  # months ending on or before this go
    months: list[MonthToPrune]

    @property
    def refused(self) -> list[MonthToPrune]:
        return [m for m in self.months if m.needed_by]

    @property
    def smallest_allowed(self) -> int | None:
        """The smallest --older-than that drops none of the needed months."""
        if not self.refused:
            return None
        return months_between(self.refused[0].start, self.current_month)


def _needing_milestones(today_utc: date) -> list[tuple[TargetGroup, datetime, datetime]]:
    """Milestones that still need their activities, with their [start, end) instants: every
    active one (it may be re-processed) and every one not ended yet."""
    groups = (
        TargetGroup.objects.select_related("organisation")
        # a day of slack around UTC's date; the exact status is checked below in the
        # organisation's time zone
        .filter(Q(is_active=True) | Q(end__gte=today_utc - timedelta(days=1)))
        .order_by("organisation__name", "name", "id")
    )
    needing = []
    for group in groups:
        if group.is_active or group.status() != MilestoneStatus.ENDED:
            start, end = date_range_instants(group.start, group.end, group.organisation.tzinfo)
            needing.append((group, start, end))
    return needing


def _row_months(table: str, cutoff: datetime) -> dict[datetime, int]:
    """{month start: rows} of the rows of `table` before the cutoff."""
    if table == PARENT:
        qs = (
            Activity.objects.filter(occurred_at__lt=cutoff)
            .annotate(month=TruncMonth("occurred_at", tzinfo=UTC))
            .values("month")
            .annotate(rows=Count("id"))
        )
        return {month_start(r["month"]): r["rows"] for r in qs}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC'), count(*) FROM {table} "
            "WHERE occurred_at < %s GROUP BY 1",
            [cutoff],
        )
        return {month.replace(tzinfo=UTC): rows for month, rows in cursor.fetchall()}


def prune_plan(*, older_than: int, now: datetime | None = None) -> PrunePlan:
    """The months older than `older_than` whole months (the current month not counted):
    with older_than=3 in December, August and before. Each with its row count and the
    milestones that still need it."""
    if older_than < 1:
        raise ValueError("older_than is a number of months, at least 1.")
    now = now or timezone.now()
    cutoff = month_start(now, older_than)
    months: dict[datetime, MonthToPrune] = {}
    if is_partitioned():
        for part in partitions():
            if part.start is None:
                for start, rows in _row_months(part.name, cutoff).items():
                    months[start] = MonthToPrune(start, month_start(start, -1), rows, None)
            elif part.end <= cutoff:
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT count(*) FROM {part.name}")
                    (rows,) = cursor.fetchone()
                months[part.start] = MonthToPrune(part.start, part.end, rows, part.name)
    else:
        for start, rows in _row_months(PARENT, cutoff).items():
            months[start] = MonthToPrune(start, month_start(start, -1), rows, None)
    plan = PrunePlan(older_than, month_start(now), cutoff, [months[k] for k in sorted(months)])
    if plan.months:
        today_utc = now.astimezone(UTC).date()
        for group, start, end in _needing_milestones(today_utc):
            for month in plan.months:
                if start < month.end and end > month.start:
                    month.needed_by.append(group)
    return plan


def _export(month: MonthToPrune, path: Path) -> None:
    """The month's rows, ordered by id, as CSV with a header (PostgreSQL's COPY format there)."""
    columns = ", ".join(EXPORT_COLUMNS)
    source = month.partition or PARENT
    where = "WHERE occurred_at >= %s AND occurred_at < %s"
    with connection.cursor() as cursor:
        if _postgres():
            query = (
                f"COPY (SELECT {columns} FROM {source} {where} ORDER BY id) "
                "TO STDOUT WITH (FORMAT csv, HEADER)"
            )
            with (
                open(path, "wb") as out,
                cursor.cursor.copy(query, [month.start, month.end]) as copy,
            ):
                for data in copy:
                    out.write(data)
            return
        cursor.execute(
            f"SELECT {columns} FROM {source} {where} ORDER BY id", [month.start, month.end]
        )
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(EXPORT_COLUMNS)
            while rows := cursor.fetchmany(2000):
                writer.writerows(rows)


def export_path(directory: Path, month: MonthToPrune) -> Path:
    return directory / f"activities-{month.label}.csv"


def month_prune(month: MonthToPrune, *, export_dir: Path | None = None) -> Path | None:
    """Drop one month (see the module's docstring); returns the export file, if any."""
    path = export_path(export_dir, month) if export_dir else None
    partial = path.with_name(path.name + ".partial") if path else None
    contributions = Contribution._meta.db_table
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if _postgres():
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                # no new rows into the month while it is exported and dropped
                table = month.partition or next(p.name for p in partitions() if p.start is None)
                cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
            if partial:
                _export(month, partial)
            if month.partition:
                cursor.execute(
                    f"DELETE FROM {contributions} WHERE activity_id IN "
                    f"(SELECT id FROM {month.partition})"
                )
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {month.partition}")
                cursor.execute(f"DROP TABLE {month.partition}")
            else:
                window = [month.start, month.end]
                cursor.execute(
                    f"DELETE FROM {contributions} WHERE activity_id IN (SELECT id FROM {PARENT} "
                    "WHERE occurred_at >= %s AND occurred_at < %s)",
                    window,
                )
                cursor.execute(
                    f"DELETE FROM {PARENT} WHERE occurred_at >= %s AND occurred_at < %s", window
                )
    except BaseException:
        if partial and partial.exists():
            partial.unlink()
        raise
    if partial:
        os.replace(partial, path)
    return path


def prune_execute(plan: PrunePlan, *, export_dir: Path | None = None, report=None) -> list:
    """Drop the plan's months, oldest first; refuses (ValueError) when one is needed."""
    if plan.refused:
        raise ValueError("Some months are still needed by a milestone: nothing was dropped.")
    done = []
    for month in plan.months:
        path = month_prune(month, export_dir=export_dir)
        done.append((month, path))
        if report:
            report(month, path)
    return done
