"""The PostgreSQL fast path: COPY into a staging table, validate in SQL, merge set-based.

Python streams the file once (csv module, UTF-8 and column-count checks per row), normalises
each identifier and parses each value with the same functions as the Python path, and COPYs
the rows with their flags into an unlogged staging table. SQL then finds duplicates (one
GROUP BY) and unknown customers (an anti-join); the rows flagged bad get their messages from
the same Python functions as the Python path, so both paths report the same words. Writing
is INSERT ... SELECT / ON CONFLICT per chunk of rows (customers, values, enrolments,
notifications), each chunk one transaction, on two connections at once for big files, with
the import's progress updated after each chunk. The notification payload is the one of
`enrolment.notifications.enrolment_payload`, with SQL pieces where each row puts its own
values (`_payload_sql`), and its thresholds follow `milestones.thresholds` in SQL.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

from django.conf import settings
from django.db import connection, transaction

from common.bulk import references_held
from milestones.models import Organisation, Target, TargetGroup
from milestones.thresholds import threshold_sql

from ..identifiers import IdentifierError, country_of, normalise
from ..models import (
    Customer,
    CustomerTargetValue,
    Enrolment,
    EnrolmentNotification,
    EnrolmentSource,
    ImportJob,
)
from ..notifications import (
    EVENT_NAME,
    announce_written,
    customer_identifiers,
    enrolment_payload,
    notification_cycle,
    target_parts,
)
from .checks import ErrorSink, job_rows
from .spec import (
    MSG_NO_ROWS,
    FileRefused,
    RowError,
    identifier_error,
    msg_columns,
    msg_duplicate,
    msg_unknown,
    parse_value,
    value_error,
)

CHUNK = 100_000
COUNTS = (
    "created_customers",
    "values_written",
    "values_cleared",
    "newly_enrolled",
    "notifications",
)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _cell(raw: str) -> tuple[str | None, bool]:
    """(the value as text for COPY or None for a blank cell, is the cell bad). Plain digit
    strings, nearly every cell of a real file, skip the Decimal work."""
    text = raw.strip()
    if not text:
        return None, False
    if len(text) <= 14 and text.isascii() and text.isdigit():
        return text, False
    if value_error(raw):
        return None, True
    return str(parse_value(raw)), False


def _norm(kind: str, raw: str, country: str = "") -> str | None:
    if not country and kind == "mobile" and 6 <= len(raw) <= 15 and raw.isascii() and raw.isdigit():
        return raw
    try:
        return normalise(kind, raw, country=country)
    except IdentifierError:
        return None


@dataclass(frozen=True)
class _Sql:
    """A payload value each row computes: `expr` gives its JSON text, or with `quoted` text
    that needs no escaping between JSON quotes (numbers)."""

    expr: str
    quoted: bool = False


# customerIdentifiers in SQL: to_json escapes the text; a missing identifier is null
_CUSTOMER_SQL = SimpleNamespace(
    id=_Sql("c.id"),
    mobile=_Sql("coalesce(to_json(c.mobile)::text, 'null')"),
    email=_Sql("coalesce(to_json(c.email)::text, 'null')"),
    external_id=_Sql("coalesce(to_json(c.external_id)::text, 'null')"),
)


def _payload_sql(payload: dict) -> tuple[str, list[str]]:
    """A payload holding `_Sql` pieces as one SQL text expression cast once to jsonb, and its
    parameters: the constant JSON around the pieces is encoded here (json.dumps), each row
    adds its own. About 3x cheaper per row than nested jsonb_build_object calls, and the same
    jsonb (jsonb orders the keys)."""
    pieces: list[_Sql] = []
    nonce = uuid.uuid4().hex

    def mark(node):
        if isinstance(node, _Sql):
            pieces.append(node)
            return f"\x00{nonce}:{len(pieces) - 1}\x00"  # random: no name can hold it
        if isinstance(node, dict):
            return {key: mark(value) for key, value in node.items()}
        if isinstance(node, list):
            return [mark(value) for value in node]
        return node

    text = json.dumps(mark(payload))
    sql, params, literal, pos = [], [], "", 0
    for found in re.finditer(rf'"\\u0000{nonce}:(\d+)\\u0000"', text):
        piece = pieces[int(found.group(1))]
        literal += text[pos : found.start()] + ('"' if piece.quoted else "")
        sql.append("%s::text")
        params.append(literal)
        sql.append(piece.expr)
        literal, pos = ('"' if piece.quoted else ""), found.end()
    sql.append("%s::text")
    params.append(literal + text[pos:])
    return f"({' || '.join(sql)})::jsonb", params


class PgImport:
    def __init__(self, job: ImportJob, sink: ErrorSink, progress):
        self.job = job
        self.sink = sink
        self.progress = progress
        self.group = job.target_group
        # an UNLOGGED table, not a TEMP one: the parallel writers read it from their own
        # connections (and PostgreSQL scans it with parallel workers)
        self.checked = f"enrol_checked_{job.pk}"
        self.country = country_of(self.group.organisation)
        self.spec = None
        self.timings: dict[str, float] = {}

    def timed(self, phase: str, fn, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start

    # --- staging -------------------------------------------------------------------------

    def stage_file(self) -> int:
        """Stream the file into the checked table, every row checked in Python on the way
        (identifier normalised, each value parsed); duplicates and unknown customers are
        found in SQL by validate()."""
        with job_rows(self.job) as (spec, rows):
            self.spec = spec
            kind = spec.identifier_type
            country = self.country
            nvals = len(spec.value_columns)
            cols = "".join(f", v{i} text, val{i} numeric, bad{i} boolean" for i in range(nvals))
            idx = [c.index for c in spec.value_columns]
            id_idx, ncols = spec.identifier_index, spec.columns
            empty = (None, None, False) * nvals
            total = 0
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.checked}")
                cursor.execute(
                    f"CREATE UNLOGGED TABLE {self.checked} (rn integer, pre text, ident text, "
                    f"norm text, id_ok boolean{cols}, first_rn integer, "
                    "dup boolean NOT NULL DEFAULT false, unknown boolean NOT NULL DEFAULT false)"
                )
                names = "".join(f", v{i}, val{i}, bad{i}" for i in range(nvals))
                with cursor.cursor.copy(
                    f"COPY {self.checked} (rn, pre, ident, norm, id_ok{names}) FROM STDIN"
                ) as copy:
                    write = copy.write_row
                    for rowno, cells, problem in rows:
                        total += 1
                        if problem is None and len(cells) != ncols:
                            problem = msg_columns(len(cells), ncols)
                        if problem is not None:
                            write((rowno, problem, None, None, False, *empty))
                            continue
                        ident = cells[id_idx]
                        norm = _norm(kind, ident, country)
                        out = [rowno, None, ident, norm, norm is not None]
                        for i in idx:
                            raw = cells[i]
                            out.append(raw)
                            out.extend(_cell(raw))
                        write(out)
                cursor.execute(f"CREATE INDEX ON {self.checked} (rn)")
        if total == 0:
            raise FileRefused([RowError(0, "", MSG_NO_ROWS)])
        return total

    # --- validation ------------------------------------------------------------------------

    def _any_bad(self) -> str:
        nvals = len(self.spec.value_columns)
        return " OR ".join(
            ["pre IS NOT NULL", "NOT id_ok", "dup", "unknown", *[f"bad{i}" for i in range(nvals)]]
        )

    def validate(self) -> tuple[int, int]:
        """Flag duplicates and unknown customers in SQL; report every bad row. Returns (bad
        rows, errors)."""
        spec, job = self.spec, self.job
        kind = spec.identifier_type
        nvals = len(spec.value_columns)
        bad_cols = [f"bad{i}" for i in range(nvals)]
        any_bad = self._any_bad()
        dups = f"enrol_dups_{job.pk}"
        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute(f"DROP TABLE IF EXISTS {dups}")
            cursor.execute(
                f"CREATE TEMP TABLE {dups} AS SELECT norm, min(rn) AS first_rn "
                f"FROM {self.checked} WHERE id_ok GROUP BY norm HAVING count(*) > 1"
            )
            cursor.execute("RESET work_mem")
            cursor.execute(
                f"UPDATE {self.checked} k SET first_rn = d.first_rn, dup = k.rn > d.first_rn "
                f"FROM {dups} d WHERE k.id_ok AND k.norm = d.norm"
            )
            cursor.execute(f"DROP TABLE {dups}")
            if not job.create_customers:
                cursor.execute(
                    f"""
                    UPDATE {self.checked} k SET unknown = true
                    WHERE k.id_ok AND NOT k.dup AND NOT EXISTS (
                        SELECT 1 FROM {Customer._meta.db_table} c
                        WHERE c.organisation_id = {int(job.organisation_id)}
                          AND c.{_q(kind)} = k.norm)
                    """
                )
            cursor.execute(f"ANALYZE {self.checked}")  # no autovacuum statistics yet
            # a row's errors: problem, identifier, duplicate/unknown, each bad value
            cells_bad = " + ".join(f"(CASE WHEN {b} THEN 1 ELSE 0 END)" for b in bad_cols) or "0"
            cursor.execute(
                f"""
                SELECT count(*) FILTER (WHERE {any_bad}),
                       coalesce(sum(CASE WHEN pre IS NOT NULL THEN 1 ELSE
                           (CASE WHEN NOT id_ok THEN 1 ELSE 0 END)
                           + (CASE WHEN dup OR unknown THEN 1 ELSE 0 END)
                           + {cells_bad} END), 0)
                FROM {self.checked}
                """
            )
            bad_rows, error_count = cursor.fetchone()
            if bad_rows:
                select_vals = "".join(f", v{i}, bad{i}" for i in range(nvals))
                cursor.execute(
                    f"SELECT rn, pre, ident, id_ok, norm, first_rn, dup, unknown{select_vals} "
                    f"FROM {self.checked} WHERE {any_bad} ORDER BY rn LIMIT %s",
                    [self.sink.cap],
                )
                for record in cursor.fetchall():
                    for error in self._messages(record):
                        self.sink.add(error)
        self.sink.count = int(error_count)
        return int(bad_rows), int(error_count)

    def _messages(self, record) -> list[RowError]:
        spec = self.spec
        kind, id_col = spec.identifier_type, spec.identifier_column
        rn, pre, ident, id_ok, norm, first_rn, dup, unknown = record[:8]
        if pre is not None:
            return [RowError(rn, "", pre)]
        out = []
        if not id_ok:
            out.append(
                RowError(
                    rn,
                    id_col,
                    identifier_error(kind, ident or "", country=self.country)
                    or "Invalid identifier.",
                )
            )
        for i, col in enumerate(spec.value_columns):
            raw, bad = record[8 + 2 * i], record[9 + 2 * i]
            if bad:
                out.append(RowError(rn, col.name, value_error(raw or "") or "Invalid value."))
        if dup:
            out.append(RowError(rn, id_col, msg_duplicate(kind, norm, first_rn)))
        if unknown:
            out.append(RowError(rn, id_col, msg_unknown(kind, norm)))
        return out

    # --- writing ---------------------------------------------------------------------------

    def write(self, total: int) -> dict[str, int]:
        """Merge the good rows, chunk by chunk (each chunk one transaction). Outside a
        transaction and for a big file, chunks run on `ENROLMENT_IMPORT_WORKERS` connections at
        once: writing is PostgreSQL's CPU (index and foreign-key work), so two backends on
        two cores take about half the time."""
        counts = dict.fromkeys(COUNTS, 0)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(rn), max(rn) FROM {self.checked}")
            lo, hi = cursor.fetchone()
        if lo is None:
            return counts
        chunk = int(getattr(settings, "ENROLMENT_IMPORT_CHUNK", CHUNK))
        ranges = [(start, min(start + chunk - 1, hi)) for start in range(lo, hi + 1, chunk)]
        self._targets = list(self.group.targets.order_by("ordinal", "id"))
        workers = min(max(1, int(getattr(settings, "ENROLMENT_IMPORT_WORKERS", 2))), len(ranges))
        parallel = (
            workers > 1
            and not connection.in_atomic_block  # other connections would not see our rows
            and total >= int(getattr(settings, "ENROLMENT_IMPORT_PARALLEL_MIN_ROWS", 100_000))
        )
        lock = threading.Lock()
        done = [0]

        def run(bounds: tuple[int, int]) -> None:
            written = self._write_chunk(*bounds)
            with lock:
                done[0] += written.pop("rows")
                for key, value in written.items():
                    counts[key] += value
                self.progress(done[0])

        if not parallel:
            for bounds in ranges:
                run(bounds)
            return counts

        def in_thread(bounds: tuple[int, int]) -> None:
            try:
                run(bounds)
            finally:
                connection.close()  # this thread's own connection

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(in_thread, bounds) for bounds in ranges]:
                future.result()  # re-raises a chunk's error
        return counts

    def _write_chunk(self, start: int, end: int) -> dict[str, int]:
        spec, job, group = self.spec, self.job, self.group
        kind = spec.identifier_type
        nvals = len(spec.value_columns)
        org_id = int(job.organisation_id)
        targets = self._targets
        target_ids = [t.id for t in targets]
        customer_t = Customer._meta.db_table
        value_t = CustomerTargetValue._meta.db_table
        enrol_t = Enrolment._meta.db_table
        counts = dict.fromkeys(COUNTS, 0)
        any_bad = self._any_bad()
        rows_t = f"enrol_rows_{job.pk}_{start}"
        newly_t = f"enrol_newly_{job.pk}_{start}"
        from ..services import _announce

        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            references_held(cursor, self._references()) as set_based,
        ):
            cursor.execute("SET LOCAL synchronous_commit = off")  # a crash re-runs the chunk
            if job.create_customers:
                cursor.execute(
                    f"""
                    INSERT INTO {customer_t}
                        (organisation_id, {_q(kind)}, name, is_loyalty_member, attributes, created_at)
                    SELECT {org_id}, norm, '', true, '{{}}'::jsonb, now()
                    FROM {self.checked}
                    WHERE rn BETWEEN %s AND %s AND NOT ({any_bad})
                    ON CONFLICT DO NOTHING
                    """,
                    [start, end],
                )
                counts["created_customers"] += cursor.rowcount
            created = cursor.rowcount if job.create_customers else 0
            vals = "".join(f", k.val{i}" for i in range(nvals))
            # With the row triggers off, the customers are held against deletion until commit
            # by the statement that reads them, as each row's foreign-key check would hold them.
            hold = "ORDER BY c.id FOR KEY SHARE OF c" if set_based else ""
            cursor.execute(
                f"""
                CREATE TEMP TABLE {rows_t} ON COMMIT DROP AS
                SELECT c.id AS customer_id{vals}
                FROM {self.checked} k
                JOIN {customer_t} c ON c.organisation_id = {org_id} AND c.{_q(kind)} = k.norm
                WHERE k.rn BETWEEN %s AND %s AND NOT ({any_bad})
                {hold}
                """,
                [start, end],
            )
            # every customer of the chunk created just now: none has a value to update or clear
            all_new = created > 0 and created == cursor.rowcount
            cursor.execute(f"ANALYZE {rows_t}")
            if nvals and target_ids:
                cells = ", ".join(
                    f"({col.ordinal}, r.val{i})" for i, col in enumerate(spec.value_columns)
                )
                # changed values are updated in place (unchanged ones are not rewritten),
                # missing ones inserted; ON CONFLICT guards against a concurrent writer
                if not all_new:
                    cursor.execute(
                        f"""
                        UPDATE {value_t} v SET value = x.v
                        FROM (
                            SELECT t.id AS target_id, r.customer_id, cell.o, cell.v
                            FROM {rows_t} r
                            CROSS JOIN unnest(%s::bigint[]) AS t(id)
                            CROSS JOIN LATERAL (VALUES {cells}) AS cell(o, v)
                            WHERE cell.v IS NOT NULL
                        ) x
                        WHERE v.target_id = x.target_id AND v.customer_id = x.customer_id
                          AND v.cycle_ordinal = x.o AND v.value <> x.v
                        """,
                        [target_ids],
                    )
                    counts["values_written"] += cursor.rowcount
                cursor.execute(
                    f"""
                    INSERT INTO {value_t} (organisation_id, target_id, customer_id, cycle_ordinal, value)
                    SELECT {org_id}, t.id, r.customer_id, cell.o, cell.v
                    FROM {rows_t} r
                    CROSS JOIN unnest(%s::bigint[]) AS t(id)
                    CROSS JOIN LATERAL (VALUES {cells}) AS cell(o, v)
                    WHERE cell.v IS NOT NULL
                    ON CONFLICT (target_id, customer_id, cycle_ordinal) DO NOTHING
                    """,
                    [target_ids],
                )
                counts["values_written"] += cursor.rowcount
                for i, col in enumerate(spec.value_columns if not all_new else []):
                    cursor.execute(
                        f"""
                        DELETE FROM {value_t} v USING {rows_t} r
                        WHERE r.val{i} IS NULL AND v.customer_id = r.customer_id
                          AND v.cycle_ordinal = %s AND v.target_id = ANY(%s::bigint[])
                        """,
                        [col.ordinal, target_ids],
                    )
                    counts["values_cleared"] += cursor.rowcount
            cursor.execute(
                f"""
                CREATE TEMP TABLE {newly_t} ON COMMIT DROP AS
                WITH ins AS (
                    INSERT INTO {enrol_t}
                        (organisation_id, target_group_id, customer_id, source, is_active, enrolled_at)
                    SELECT {org_id}, {int(group.id)}, customer_id, %s, true, now() FROM {rows_t}
                    ON CONFLICT (target_group_id, customer_id)
                    DO UPDATE SET is_active = true WHERE {enrol_t}.is_active = false
                    RETURNING customer_id
                )
                SELECT customer_id FROM ins
                """,
                [EnrolmentSource.CUSTOM_LIST],
            )
            counts["newly_enrolled"] += cursor.rowcount
            if job.send_trigger and cursor.rowcount:
                counts["notifications"] += self.timed(
                    "notify", self._notify, cursor, newly_t, targets
                )
            cursor.execute(f"SELECT customer_id FROM {newly_t} ORDER BY customer_id")
            newly = [r[0] for r in cursor.fetchall()]
            _announce(group, newly, EnrolmentSource.CUSTOM_LIST)
            cursor.execute(
                f"SELECT count(*) FROM {self.checked} WHERE rn BETWEEN %s AND %s", [start, end]
            )
            counts["rows"] = cursor.fetchone()[0]
        return counts

    def _references(self) -> dict:
        """What a chunk points at besides its customers, for `references_held`: organisation,
        milestone and targets come from the import's own rows; the customers are locked by
        the statement that reads them. Without the set-based check a 1M-row file pays 11
        million row checks at commit."""
        group = self.group
        return {
            Organisation: [group.organisation_id],
            TargetGroup: [group.id],
            Target: [t.id for t in self._targets],
        }

    def _notify(self, cursor, newly_t: str, targets) -> int:
        """Write each target's enrolment notification for the newly enrolled; how many."""
        group = self.group
        written = 0
        cycle = notification_cycle(group)
        notif_t = EnrolmentNotification._meta.db_table
        customer_t = Customer._meta.db_table
        value_t = CustomerTargetValue._meta.db_table
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [notif_t])
        sequence = cursor.fetchone()[0]
        for part in target_parts(group, cycle, EnrolmentSource.CUSTOM_LIST):
            target = part["target"]
            payload_sql, params = _payload_sql(
                enrolment_payload(
                    part,
                    identifiers=customer_identifiers(_CUSTOMER_SQL),
                    target_value=_Sql("x.t", quoted=True),  # trim_scale(v)::text: digits only
                    threshold_of=lambda criteria, value: _Sql(
                        f"trim_scale({threshold_sql(criteria, value, 'x.v')})::text", quoted=True
                    ),
                    event_id=_Sql("x.id"),
                )
            )
            cursor.execute(
                f"""
                INSERT INTO {notif_t}
                    (id, organisation_id, target_group_id, target_id, customer_id, event_name,
                     source, payload, created_at)
                SELECT x.id, {int(group.organisation_id)}, {int(group.id)}, {int(target.id)},
                       x.customer_id, %s, %s, {payload_sql}, now()
                FROM (
                    SELECT id, customer_id, v, trim_scale(v)::text AS t FROM (
                        SELECT nextval('{sequence}'::regclass) AS id, n.customer_id,
                               coalesce(v.value, %s::numeric) AS v
                        FROM {newly_t} n
                        LEFT JOIN {value_t} v ON v.target_id = {int(target.id)}
                            AND v.customer_id = n.customer_id
                            AND v.cycle_ordinal = {int(cycle.ordinal)}
                    ) y OFFSET 0
                ) x
                JOIN {customer_t} c ON c.id = x.customer_id
                ON CONFLICT (target_id, customer_id) DO NOTHING
                RETURNING id
                """,
                [EVENT_NAME, EnrolmentSource.CUSTOM_LIST, *params, part["default"]],
            )
            ids = [row[0] for row in cursor.fetchall()]
            written += len(ids)
            # in this chunk's transaction: the webhooks outbox commits with the rows
            announce_written(group.organisation_id, ids)
        return written

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.checked}")
