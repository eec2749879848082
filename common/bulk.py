"""Set-based inserts for the tracking hot path: one `INSERT ... SELECT FROM unnest(arrays)`.

Django's bulk_create writes `VALUES (%s, %s, ...), (...)`: with a thousand rows of a dozen
fields that is twelve thousand placeholders, and psycopg spends more time splitting and
adapting that query than PostgreSQL spends running it. Here each column travels as one array
parameter, so the statement stays a few hundred characters whatever the number of rows.
Other databases (SQLite, the embedded default) get Django's bulk_create with the same
conflict handling.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models, transaction
from django.utils import timezone

# Fields whose Python value psycopg sends as it is (get_db_prep_save would only cost time).
PLAIN_FIELDS = (
    models.IntegerField,  # includes the big/small/positive ones
    models.ForeignKey,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.DecimalField,
    models.DateTimeField,
    models.DateField,
)


def _element(value) -> str:
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_array(values) -> str:
    """`values` as a PostgreSQL array literal (`'{1,2,NULL}'`), to pass as one parameter cast
    to its array type (`%s::numeric[]`). psycopg adapts a Python list element by element in
    Python (about 15 µs an element for Decimals and datetimes); ints, Decimals and datetimes
    turned to text here cost well under a microsecond each. Strings are quoted and escaped."""
    kinds = set(map(type, values))
    if kinds <= {int, Decimal}:  # ids and amounts
        return "{" + ",".join(map(str, values)) + "}"
    if kinds == {datetime}:
        return "{" + ",".join(map(datetime.isoformat, values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def insert_rows(
    model,
    objs: list,
    *,
    ignore_conflicts: bool = False,
    unique_fields: list[str] | None = None,
    update_fields: list[str] | None = None,
    set_pks: bool = False,
    return_ids: bool = False,
) -> list[int] | None:
    """Insert `objs` (unsaved model instances). `ignore_conflicts`: ON CONFLICT DO NOTHING;
    `unique_fields` + `update_fields`: ON CONFLICT (...) DO UPDATE; `set_pks`: read the new
    ids back into the instances (in insertion order, as bulk_create does). `return_ids`: the
    ids of the rows this statement inserted (not those skipped on a conflict), on PostgreSQL;
    None elsewhere (bulk_create cannot tell)."""
    if not objs:
        return [] if return_ids and connection.vendor == "postgresql" else None
    if connection.vendor != "postgresql":
        kwargs = {"batch_size": 1000}
        if ignore_conflicts:
            kwargs["ignore_conflicts"] = True
        elif update_fields:
            kwargs.update(
                update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields
            )
        model.objects.bulk_create(objs, **kwargs)
        return None
    opts = model._meta
    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the thread-local proxy
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    now = timezone.now()
    names, arrays, selects, params = [], [], [], []
    for i, field in enumerate(fields):
        names.append(conn.ops.quote_name(field.column))
        attname = field.attname
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for obj in objs:  # one timestamp for the statement, as the database would give
                setattr(obj, attname, now)
        raw = [getattr(obj, attname) for obj in objs]
        if isinstance(field, models.JSONField):
            params.append(
                pg_array([None if v is None else json.dumps(v, cls=field.encoder) for v in raw])
            )
            arrays.append("%s::text[]")
            selects.append(f"c{i}::jsonb")
            continue
        if isinstance(field, PLAIN_FIELDS):
            params.append(pg_array(raw))  # ints, strings, booleans, Decimals, datetimes
        else:
            params.append(pg_array([field.get_db_prep_save(v, conn) for v in raw]))
        arrays.append(f"%s::{field.db_type(conn)}[]")
        selects.append(f"c{i}")
    aliases = ", ".join(f"c{i}" for i in range(len(fields)))
    sql = (
        f"INSERT INTO {conn.ops.quote_name(opts.db_table)} ({', '.join(names)}) "
        f"SELECT {', '.join(selects)} FROM unnest({', '.join(arrays)}) AS u({aliases})"
    )
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    elif update_fields:
        unique = ", ".join(
            conn.ops.quote_name(opts.get_field(n).column) for n in unique_fields or []
        )
        sets = ", ".join(
            f"{c} = EXCLUDED.{c}"
            for c in (conn.ops.quote_name(opts.get_field(n).column) for n in update_fields)
        )
        sql += f" ON CONFLICT ({unique}) DO UPDATE SET {sets}"
    if set_pks or return_ids:
        sql += f" RETURNING {conn.ops.quote_name(opts.pk.column)}"
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        if return_ids:
            return [pk for (pk,) in cursor.fetchall()]
        if set_pks:
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = conn.alias
    return None


def hold_references(cursor, held: dict, organisation_id: int | None = None) -> bool:
    """Check a bulk write's foreign keys set-based instead of row by row, on PostgreSQL when
    the database role may set `session_replication_role` (superusers; on PostgreSQL 15+ any
    role after `GRANT SET ON PARAMETER session_replication_role TO ...`).

    `held` maps each model the write points at to the ids it uses. Those rows are locked
    FOR KEY SHARE until the transaction ends, one statement per model, which is what each
    inserted row's foreign-key trigger would do (one lookup per row and key, run at commit).
    When every id is there, this transaction's row triggers are switched off with
    `SET LOCAL session_replication_role = replica`. Use it through `references_held`, which
    switches them back on when the set-based writes are done; a rollback does it by itself.
    The constraints stay in the schema and every other write is checked as usual.
    `SET_BASED_REFERENCES=0` turns this off everywhere. Rows the caller holds a stronger lock
    on already (FOR UPDATE, FOR NO KEY UPDATE), or created in this transaction, need no entry.
    Returns whether the triggers are off; when not (another database, no permission, an id
    missing), nothing changed and the triggers check each row as usual. With
    `organisation_id`, the lock of each model that has an organisation names it too (a
    database distributed by organisation routes it to one node: docs/scaling.md)."""
    conn = cursor.db
    if conn.vendor != "postgresql" or not getattr(settings, "SET_BASED_REFERENCES", True):
        return False
    may = getattr(conn, "_may_hold_references", None)
    if may is None:
        query = "false"
        if conn.pg_version >= 150000:
            query = "has_parameter_privilege('session_replication_role', 'SET')"
        cursor.execute(f"SELECT current_setting('is_superuser') = 'on' OR {query}")
        may = conn._may_hold_references = bool(cursor.fetchone()[0])
    if not may:
        return False
    for model, ids in held.items():
        wanted = sorted({int(i) for i in ids if i is not None})
        if not wanted:
            continue
        scoped = organisation_id is not None and any(
            f.attname == "organisation_id" for f in model._meta.concrete_fields
        )
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {conn.ops.quote_name(model._meta.db_table)} "
            f"WHERE {'organisation_id = %s AND ' if scoped else ''}id = ANY(%s::bigint[]) "
            "ORDER BY id FOR KEY SHARE) s",
            [organisation_id, pg_array(wanted)] if scoped else [pg_array(wanted)],
        )
        if cursor.fetchone()[0] != len(wanted):
            return False  # a row went away: let the row triggers report it
    try:
        with transaction.atomic(using=conn.alias):  # a savepoint: a refusal aborts nothing
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:  # the permission was taken away since it was checked
        conn._may_hold_references = False
        return False
    return True


@contextmanager
def references_held(cursor, held: dict, organisation_id: int | None = None):
    """`hold_references` for the writes inside the block (yields whether it held them); the
    row triggers are on again for the rest of the transaction once the block ends. On an
    error the transaction or savepoint rolls back, which switches them back on too."""
    on = hold_references(cursor, held, organisation_id)
    yield on
    if on:
        cursor.execute("SET LOCAL session_replication_role = origin")
