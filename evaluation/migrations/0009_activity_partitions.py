"""Activities partitioned by month (PostgreSQL), the idempotency key in its own table.

On PostgreSQL `evaluation_activity` becomes a declaratively partitioned table, RANGE on
`occurred_at`, one partition per month (UTC) plus a DEFAULT partition, kept ahead by
pg_partman (`partman.run_maintenance()`, called by beat: `evaluation.tasks.
maintain_activity_partitions`). A unique constraint on a partitioned table must include the
partition key, so `(organisation, external_id)` moves to `evaluation_activitykey`; the
primary key becomes `(id, occurred_at)` in the database while Django keeps `id` as the pk
(one identity sequence still numbers every partition). The contribution's foreign key to the
activity loses its database constraint (a foreign key to a partitioned table must name its
whole primary key).

The conversion renames the old table, creates the partitioned one with the same columns
(`LIKE`), lets pg_partman create the months from the earliest stored activity (at most ten
years back; older rows land in the DEFAULT partition) to three months ahead, copies the
rows, continues the identity after the old sequence, recreates the indexes of
`Activity.Meta.indexes` and the foreign keys under their old names, and drops the old table.
It is one transaction. SQLite keeps one table (only the key table and the dropped
constraints apply there).
"""

from datetime import UTC, datetime

from django.db import migrations, models

PARENT = "evaluation_activity"
PARTMAN_PARENT = f"public.{PARENT}"
PREMAKE = 3
# On a fresh database the first partition is this many months back, so recent backdated
# activities still land in a month of their own.
MONTHS_BACK_AT_LEAST = 12
# and never more than this many months back, however old the oldest stored activity.
MONTHS_BACK_AT_MOST = 120


def _month_start(moment: datetime, months_back: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def copy_keys(apps, schema_editor):
    """Every stored activity's key into the key table (they were unique already)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO evaluation_activitykey (organisation_id, external_id) "
            f"SELECT organisation_id, external_id FROM {PARENT} WHERE true "  # (SQLite: before ON)
            "ON CONFLICT (organisation_id, external_id) DO NOTHING"
        )


def _is_partitioned(cursor) -> bool:
    cursor.execute(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [PARENT]
    )
    return cursor.fetchone() is not None


def _rebuild(apps, schema_editor, *, partitioned: bool) -> None:
    """Replace `evaluation_activity` with a copy of itself, partitioned or plain."""
    Activity = apps.get_model("evaluation", "Activity")
    old = f"{PARENT}_{'unpartitioned' if partitioned else 'partitioned'}"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")  # month boundaries in UTC
        if _is_partitioned(cursor) == partitioned:
            return
        if partitioned:
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'")
            if cursor.fetchone() is None:
                raise RuntimeError(
                    "Partitioning the activities needs pg_partman 4.7 on the database server: "
                    "install Debian's postgresql-15-partman (apt-get install -y "
                    "postgresql-15-partman), then run migrate again."
                )
            cursor.execute("CREATE SCHEMA IF NOT EXISTS partman")
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            [PARENT],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [PARENT])
        (sequence,) = cursor.fetchone()
        cursor.execute(f"SELECT min(occurred_at) FROM {PARENT}")
        (earliest,) = cursor.fetchone()

        # The old table, its sequence and its indexes step aside (index names are per schema).
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {old}")
        cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {old}_id_seq")
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            [old],
        )
        (primary_key,) = cursor.fetchone()
        cursor.execute(f'ALTER TABLE {old} RENAME CONSTRAINT "{primary_key}" TO {old}_pkey')
        for index in Activity._meta.indexes:
            cursor.execute(f'DROP INDEX IF EXISTS "{index.name}"')
        if not partitioned:
            cursor.execute("DELETE FROM partman.part_config WHERE parent_table = %s", [PARTMAN_PARENT])
            cursor.execute(f"DROP TABLE IF EXISTS partman.template_public_{PARENT}")

        like = f"LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING STORAGE"
        if partitioned:
            cursor.execute(
                f"CREATE TABLE {PARENT} ({like}, PRIMARY KEY (id, occurred_at)) "
                "PARTITION BY RANGE (occurred_at)"
            )
            now = datetime.now(UTC)
            start = _month_start(now, MONTHS_BACK_AT_LEAST)
            if earliest is not None:
                start = max(min(start, _month_start(earliest)), _month_start(now, MONTHS_BACK_AT_MOST))
            cursor.execute(
                "SELECT partman.create_parent(p_parent_table := %s, p_control := 'occurred_at', "
                "p_type := 'native', p_interval := 'monthly', p_premake := %s, "
                "p_start_partition := %s)",
                [PARTMAN_PARENT, PREMAKE, start.strftime("%Y-%m-%d %H:%M:%S+00")],
            )
            # Months are made ahead even while no activity arrives (a quiet brand, a test).
            cursor.execute(
                "UPDATE partman.part_config SET infinite_time_partitions = true "
                "WHERE parent_table = %s",
                [PARTMAN_PARENT],
            )
        else:
            cursor.execute(f"CREATE TABLE {PARENT} ({like}, PRIMARY KEY (id))")

        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {old}")
        # The identity continues after the old sequence (never reusing an id handed out).
        cursor.execute(f"SELECT last_value FROM {old}_id_seq")
        (last_value,) = cursor.fetchone()
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
            f"greatest(%s, (SELECT coalesce(max(id), 0) FROM {PARENT})) + 1, false)",
            [PARENT, last_value],
        )
        cursor.execute(f"DROP TABLE {old}")
    for index in Activity._meta.indexes:
        schema_editor.add_index(Activity, index)
    with schema_editor.connection.cursor() as cursor:
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE {PARENT} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(f"ANALYZE {PARENT}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(apps, schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(apps, schema_editor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0008_near_miss"),
    ]

    operations = [
        migrations.CreateModel(
            name="ActivityKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "organisation",
                        "external_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="+",
                        to="milestones.organisation",
                    ),
                ),
                ("external_id", models.CharField(max_length=200)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="activity",
            name="activity_idempotency_key",
        ),
        migrations.AlterField(
            model_name="contribution",
            name="activity",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="contributions",
                to="evaluation.activity",
            ),
        ),
        migrations.RunPython(copy_keys, migrations.RunPython.noop),
        migrations.RunPython(partition, unpartition),
    ]
