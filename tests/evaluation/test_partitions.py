"""Activities partitioned by month (PostgreSQL), the idempotency key table, and
`prune_activities` (partitions on PostgreSQL, rows on SQLite)."""

import csv
import threading
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from evaluation.ingest import activities_ingest
from evaluation.models import Activity, ActivityKey, Contribution
from evaluation.partitions import is_partitioned, month_start, partitions
from evaluation.tasks import maintain_activity_partitions
from milestones_site.schedules import PERIODIC_TASKS
from tests.factories import ActivityFactory, ProgressFactory, TargetGroupFactory

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are a PostgreSQL matter"
)
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite keeps one table")


def months_ago(n: int, day: int = 10):
    """Noon UTC on `day` of the month n months before this one."""
    return month_start(timezone.now(), n) + timedelta(days=day - 1, hours=12)


def item(ext: str, when, mobile: str = "9000000001") -> dict:
    return {"id": ext, "type": "transaction", "customer": {"mobile": mobile},
            "occurred_at": when, "gross": Decimal(10)}  # fmt: skip


def partition_of(activity_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM evaluation_activity WHERE id = %s", [activity_id]
        )
        return cursor.fetchone()[0]


def partition_name(moment) -> str:
    return f"evaluation_activity_p{moment:%Y_%m}"


def prune(*args) -> str:
    if connection.vendor == "postgresql":
        # The command runs in its own transaction, after the rows it drops were committed;
        # here they were written in the test's transaction, so their deferred foreign-key
        # checks are run first (a table with pending checks cannot be dropped).
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    out = StringIO()
    call_command("prune_activities", *args, stdout=out)
    return out.getvalue()


def milestone(org, *, first_month_back: int, last_month_back: int, active: bool, name: str):
    """A milestone from the 1st of one month to the last day of another (months back)."""
    return TargetGroupFactory(
        organisation=org,
        name=name,
        start=month_start(timezone.now(), first_month_back).date(),
        end=(month_start(timezone.now(), last_month_back - 1) - timedelta(days=1)).date(),
        is_active=active,
    )


def contribution(activity) -> Contribution:
    """A contribution of the activity to a progress row of an ended, inactive milestone (one
    that needs nothing any more)."""
    group = TargetGroupFactory(
        organisation=activity.organisation, start=date(2001, 1, 1), end=date(2001, 12, 31),
        is_active=False, name=f"Old {activity.external_id}",
    )  # fmt: skip
    progress = ProgressFactory(target=group.targets.get(), customer=activity.customer)
    return Contribution.objects.create(activity=activity, progress=progress, amount=Decimal(10))


# --- the partitioned table (PostgreSQL) -----------------------------------------------------


@postgres_only
def test_the_activities_table_is_range_partitioned_on_occurred_at_by_month_with_a_default():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p JOIN pg_attribute a "
            "ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
            "WHERE p.partrelid = 'evaluation_activity'::regclass"
        )
        assert cursor.fetchall() == [("r", "occurred_at")]
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'evaluation_activity'::regclass"
        )
        bounds = dict(cursor.fetchall())
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
            "CROSS JOIN unnest(c.conkey) WITH ORDINALITY k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = 'evaluation_activity'::regclass AND c.contype = 'p'"
        )
        assert cursor.fetchone()[0] == ["id", "occurred_at"]
    assert bounds["evaluation_activity_default"] == "DEFAULT"
    this_month = month_start(timezone.now())
    # this month, the year before it and three months ahead, each exactly one month
    for back in range(-3, 13):
        start = month_start(this_month, back)
        assert bounds[partition_name(start)] == (
            f"FOR VALUES FROM ('{start:%Y-%m-%d} 00:00:00+00') "
            f"TO ('{month_start(start, -1):%Y-%m-%d} 00:00:00+00')"
        )
    assert [p.name for p in partitions()][-1] == "evaluation_activity_default"
    # the ORM still sees one table whose pk is id
    assert Activity._meta.pk.name == "id"


@postgres_only
def test_an_activity_lands_in_the_partition_of_its_month_and_an_older_one_in_the_default(org):
    now = timezone.now()
    activities_ingest(
        organisation=org,
        items=[item("today", now), item("spring", months_ago(7)), item("2001", months_ago(400))],
    )
    ids = dict(Activity.objects.values_list("external_id", "id"))
    assert partition_of(ids["today"]) == partition_name(now)
    assert partition_of(ids["spring"]) == partition_name(months_ago(7))
    assert partition_of(ids["2001"]) == "evaluation_activity_default"
    # one sequence numbers every partition: ids stay unique for the ORM
    assert len(set(ids.values())) == 3


@postgres_only
def test_beats_maintenance_creates_the_months_ahead():
    assert (
        PERIODIC_TASKS["activity-partitions"][0] == "evaluation.tasks.maintain_activity_partitions"
    )
    ahead = [partition_name(month_start(timezone.now(), -k)) for k in (2, 3)]
    with connection.cursor() as cursor:
        for name in ahead:
            cursor.execute(f"ALTER TABLE evaluation_activity DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
    assert not set(ahead) & {p.name for p in partitions()}

    created = maintain_activity_partitions()

    assert created >= 2
    assert set(ahead) <= {p.name for p in partitions()}
    assert maintain_activity_partitions() == 0  # nothing more to make


# --- idempotency: the key table ---------------------------------------------------------------


def test_the_same_batch_twice_is_counted_once(org):
    now = timezone.now()
    batch = [item(f"t-{i}", months_ago(i % 3 + 1)) for i in range(6)] + [item("t-0", now)]

    first = activities_ingest(organisation=org, items=batch)
    again = activities_ingest(organisation=org, items=batch)

    assert (first.accepted, first.duplicates, first.duplicate_ids) == (6, 1, ["t-0"])
    assert (again.accepted, again.duplicates) == (0, 7)
    assert Activity.objects.count() == 6
    assert sorted(ActivityKey.objects.values_list("external_id", flat=True)) == [
        f"t-{i}" for i in range(6)
    ]


def test_the_same_id_in_another_organisation_is_its_own_activity(org, other_org):
    activities_ingest(organisation=org, items=[item("same", months_ago(1))])
    result = activities_ingest(organisation=other_org, items=[item("same", months_ago(1))])
    assert result.accepted == 1
    assert Activity.objects.filter(external_id="same").count() == 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_copies_of_a_batch_are_counted_once(org):
    batch = [item(f"r-{i}", months_ago(i % 4), mobile=f"90000000{i % 5:02d}") for i in range(60)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def post():
        try:
            barrier.wait()
            results.append(activities_ingest(organisation=org, items=batch))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.accepted for r in results) == 60
    assert sum(r.duplicates for r in results) == 60
    assert Activity.objects.count() == 60
    assert ActivityKey.objects.count() == 60


# --- prune_activities ------------------------------------------------------------------------


def test_prune_drops_the_old_months_and_their_contributions_and_keeps_the_keys(org):
    old = ActivityFactory(customer__organisation=org, occurred_at=months_ago(6))
    older = ActivityFactory(customer__organisation=org, occurred_at=months_ago(8))
    recent = ActivityFactory(customer__organisation=org, occurred_at=months_ago(2))
    gone = contribution(old)
    kept = contribution(recent)
    activities_ingest(organisation=org, items=[item("replayed", months_ago(7))])

    out = prune("--older-than", "3")

    assert set(Activity.objects.values_list("id", flat=True)) == {recent.id}
    assert not Contribution.objects.filter(pk=gone.pk).exists()
    assert Contribution.objects.filter(pk=kept.pk).exists()
    assert f"Pruned {months_ago(6):%Y-%m}: 1 activity" in out
    if is_partitioned():
        names = {p.name for p in partitions()}
        assert partition_name(months_ago(6)) not in names
        assert partition_name(months_ago(8)) not in names
        assert partition_name(months_ago(3)) in names
        assert partition_name(months_ago(2)) in names
        assert f"drop partition {partition_name(older.occurred_at)}" in out
    # the key outlives its activity: a replay of the old id is still a duplicate
    replay = activities_ingest(organisation=org, items=[item("replayed", months_ago(7))])
    assert (replay.accepted, replay.duplicates) == (0, 1)


@postgres_only
def test_prune_deletes_old_rows_of_the_default_partition_and_keeps_the_partition(org):
    ancient = ActivityFactory(customer__organisation=org, occurred_at=months_ago(300))
    assert partition_of(ancient.id) == "evaluation_activity_default"

    out = prune("--older-than", "3")

    assert f"{months_ago(300):%Y-%m}  1 activity  delete rows" in out
    assert not Activity.objects.filter(pk=ancient.pk).exists()
    assert partitions()[-1].name == "evaluation_activity_default"


def test_prune_refuses_a_month_an_active_milestone_needs_names_it_and_changes_nothing(
    org, other_org
):
    activity = ActivityFactory(customer__organisation=other_org, occurred_at=months_ago(6))
    group = milestone(other_org, first_month_back=6, last_month_back=6, active=True, name="Summer")
    before = [p.name for p in partitions()]

    with pytest.raises(CommandError) as refused:
        prune("--older-than", "3")

    message = str(refused.value)
    assert message.startswith("Refused, nothing was dropped")
    assert (
        f"{months_ago(6):%Y-%m} is still needed by Globex / 'Summer' (id {group.id}, active"
        in message
    )
    assert "--older-than 6 or more" in message
    assert Activity.objects.filter(pk=activity.pk).exists()
    assert [p.name for p in partitions()] == before
    # the smallest N it names does work
    prune("--older-than", "6")
    assert Activity.objects.filter(pk=activity.pk).exists()


def test_an_ended_inactive_milestone_needs_nothing_but_a_live_inactive_one_does(org, other_org):
    activity = ActivityFactory(customer__organisation=other_org, occurred_at=months_ago(6))
    milestone(other_org, first_month_back=6, last_month_back=5, active=False, name="Ended")
    live = milestone(other_org, first_month_back=6, last_month_back=-1, active=False, name="Live")

    with pytest.raises(CommandError, match=f"'Live' \\(id {live.id}, inactive"):
        prune("--older-than", "3")
    assert Activity.objects.filter(pk=activity.pk).exists()

    live.delete()
    prune("--older-than", "3")
    assert not Activity.objects.filter(pk=activity.pk).exists()


def test_prune_exports_each_month_to_csv_before_dropping_it(org, tmp_path):
    a = ActivityFactory(customer__organisation=org, occurred_at=months_ago(5), external_id="x-1")
    b = ActivityFactory(customer__organisation=org, occurred_at=months_ago(5, day=20),
                        external_id="x-2", payload={"gross": "12.5"})  # fmt: skip
    c = ActivityFactory(customer__organisation=org, occurred_at=months_ago(7), external_id="x-3")

    out = prune("--older-than", "4", "--export", str(tmp_path / "archive"))

    files = sorted(p.name for p in (tmp_path / "archive").iterdir())
    assert f"activities-{months_ago(5):%Y-%m}.csv" in files
    assert f"activities-{months_ago(7):%Y-%m}.csv" in files
    with open(tmp_path / "archive" / f"activities-{months_ago(5):%Y-%m}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["external_id"]) for r in rows] == [(str(a.id), "x-1"), (str(b.id), "x-2")]
    assert '"gross": "12.5"' in rows[1]["payload"]
    assert rows[0]["occurred_at"].startswith(f"{months_ago(5):%Y-%m-%d} 12:00:00")
    assert not Activity.objects.filter(pk__in=[a.pk, b.pk, c.pk]).exists()
    assert "exported to" in out


def test_a_dry_run_lists_the_months_and_changes_nothing(org, tmp_path):
    activity = ActivityFactory(customer__organisation=org, occurred_at=months_ago(6))

    out = prune("--older-than", "3", "--dry-run", "--export", str(tmp_path / "none"))

    assert f"{months_ago(6):%Y-%m}  1 activity" in out
    assert "Dry run: nothing dropped" in out
    assert Activity.objects.filter(pk=activity.pk).exists()
    assert not (tmp_path / "none").exists()


def test_prune_takes_at_least_one_month():
    with pytest.raises(CommandError, match="at least 1"):
        prune("--older-than", "0")


@sqlite_only
def test_on_sqlite_prune_deletes_the_rows_of_the_one_table(org):
    assert not is_partitioned()
    assert partitions() == []
    assert maintain_activity_partitions() == 0
    old = ActivityFactory(customer__organisation=org, occurred_at=months_ago(4))
    recent = ActivityFactory(customer__organisation=org, occurred_at=months_ago(1))
    gone = contribution(old)

    out = prune("--older-than", "2")

    assert f"{months_ago(4):%Y-%m}  1 activity  delete rows" in out
    assert list(Activity.objects.values_list("id", flat=True)) == [recent.id]
    assert not Contribution.objects.filter(pk=gone.pk).exists()
