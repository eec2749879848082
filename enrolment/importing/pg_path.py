"""The PostgreSQL fast path: COPY into a staging table, validate in SQL, merge set-based.

Python streams the file once (csv module, UTF-8 and column-count checks per row) into a
temporary table with COPY; one SQL statement normalises identifiers and checks every cell,
window functions find duplicates, an anti-join finds unknown customers. The rows flagged
bad get their messages from the same Python functions as the Python path, so both paths
report the same words. Writing is INSERT ... SELECT / ON CONFLICT per chunk of rows
(customers, values, enrolments, notifications), each chunk one transaction, with the
import's progress updated between chunks.
"""

from __future__ import annotations

import json
import time

from django.db import connection, transaction

from ..models import (
    Customer,
    CustomerTargetValue,
    Enrolment,
    EnrolmentNotification,
    EnrolmentSource,
    ImportJob,
)
from ..notifications import EVENT_NAME, notification_cycle, target_parts
from .checks import ErrorSink
from .reader import CsvStream
from .spec import (
    MSG_NO_ROWS,
    VALUE_PATTERN,
    FileRefused,
    RowError,
    identifier_error,
    msg_columns,
    msg_duplicate,
    msg_unknown,
    resolve_header,
    value_error,
)

CHUNK = 250_000
WS = r"E' \t\r\n\f\v'"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _norm_sql(kind: str) -> tuple[str, str]:
    """(normalised identifier over the staging column `ident`, is-valid over the column `norm`)."""
    if kind == "mobile":
        return (
            "regexp_replace(coalesce(ident, ''), '[^0-9]', '', 'g')",
            "length(norm) BETWEEN 6 AND 15",
        )
    if kind == "email":
        return (
            f"lower(btrim(coalesce(ident, ''), {WS}))",
            "(norm ~ '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:]]+$' AND length(norm) <= 254)",
        )
    return f"btrim(coalesce(ident, ''), {WS})", "(norm <> '' AND length(norm) <= 100)"


class PgImport:
    def __init__(self, job: ImportJob, sink: ErrorSink, progress):
        self.job = job
        self.sink = sink
        self.progress = progress
        self.group = job.target_group
        self.stage = f"enrol_stage_{job.pk}"
        self.checked = f"enrol_checked_{job.pk}"
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
        job = self.job
        job.file.open("rb")
        try:
            stream = CsvStream(job.file.file if hasattr(job.file, "file") else job.file)
            header, rows = stream.open()
            spec = self.spec = resolve_header(
                group=self.group,
                header=header,
                identifier_type=job.identifier_type,
                identifier_column=job.identifier_column or None,
                mapping=job.mapping,
            )
            nvals = len(spec.value_columns)
            cols = ", ".join(f"v{i} text" for i in range(nvals))
            idx = [c.index for c in spec.value_columns]
            id_idx, ncols = spec.identifier_index, spec.columns
            empty = (None,) * nvals
            total = 0
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.stage}")
                cursor.execute(
                    f"CREATE TEMP TABLE {self.stage} (rn integer, ident text, "
                    f"{cols + ', ' if cols else ''}pre text)"
                )
                with cursor.cursor.copy(f"COPY {self.stage} FROM STDIN") as copy:
                    for rowno, cells, problem in rows:
                        total += 1
                        if problem is None and len(cells) != ncols:
                            problem = msg_columns(len(cells), ncols)
                        if problem is not None:
                            copy.write_row((rowno, None, *empty, problem))
                        else:
                            copy.write_row((rowno, cells[id_idx], *[cells[i] for i in idx], None))
        finally:
            job.file.close()
        if total == 0:
            raise FileRefused([RowError(0, "", MSG_NO_ROWS)])
        return total

    # --- validation ------------------------------------------------------------------------

    def validate(self) -> tuple[int, int]:
        """Flag every bad row in SQL; report them. Returns (bad rows, errors)."""
        spec, job = self.spec, self.job
        kind = spec.identifier_type
        norm, id_ok = _norm_sql(kind)
        nvals = len(spec.value_columns)
        raw_cols = "".join(f", v{i}" for i in range(nvals))
        f_raw_cols = "".join(f", f.v{i}" for i in range(nvals))
        trimmed = "".join(f", btrim(coalesce(v{i}, ''), {WS}) AS c{i}" for i in range(nvals))
        matched = "".join(f", (c{i} ~ '{VALUE_PATTERN}') AS m{i}" for i in range(nvals))
        numbers = "".join(f", CASE WHEN m{i} THEN c{i}::numeric END AS n{i}" for i in range(nvals))
        flags = "".join(
            f", (c{i} <> '' AND (n{i} IS NULL OR n{i} < 0 OR n{i} >= 1e14 "
            f"OR n{i} <> round(n{i}, 4))) AS bad{i}"
            for i in range(nvals)
        )
        values = "".join(
            f", CASE WHEN f.bad{i} OR f.c{i} = '' THEN NULL ELSE round(f.n{i}, 4) END AS val{i}"
            for i in range(nvals)
        )
        bad_list = "".join(f", f.bad{i}" for i in range(nvals))
        bad_cols = [f"bad{i}" for i in range(nvals)]
        unknown = "false"
        join = ""
        if not job.create_customers:
            join = (
                f"LEFT JOIN {Customer._meta.db_table} c ON c.organisation_id = "
                f"{int(job.organisation_id)} AND c.{_q(kind)} = f.norm AND f.id_ok"
            )
            unknown = "(f.id_ok AND NOT coalesce(f.rn > d.first_rn, false) AND c.id IS NULL)"
        any_bad = " OR ".join(["pre IS NOT NULL", "NOT id_ok", "dup", "unknown", *bad_cols])
        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute(f"DROP TABLE IF EXISTS {self.checked}")
            cursor.execute(
                f"""
                CREATE TEMP TABLE {self.checked} AS
                WITH a AS (
                    SELECT rn, pre, ident{raw_cols},
                           CASE WHEN pre IS NULL THEN {norm} END AS norm{trimmed}
                    FROM {self.stage}
                ), b AS (
                    SELECT a.*, (pre IS NULL AND {id_ok}) AS id_ok{matched}
                    FROM a
                ), n AS (SELECT b.*{numbers} FROM b),
                f AS (SELECT n.*{flags} FROM n),
                d AS (
                    SELECT norm, min(rn) AS first_rn FROM f WHERE id_ok
                    GROUP BY norm HAVING count(*) > 1
                )
                SELECT f.rn, f.pre, f.ident, f.norm, f.id_ok{f_raw_cols}{bad_list}{values},
                       d.first_rn, (d.first_rn IS NOT NULL AND f.rn > d.first_rn) AS dup,
                       {unknown} AS unknown
                FROM f LEFT JOIN d ON d.norm = f.norm {join}
                """
            )
            cursor.execute("RESET work_mem")
            cursor.execute(f"ANALYZE {self.checked}")  # temp tables get no autovacuum statistics
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
                RowError(rn, id_col, identifier_error(kind, ident or "") or "Invalid identifier.")
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
        spec, job, group = self.spec, self.job, self.group
        kind = spec.identifier_type
        nvals = len(spec.value_columns)
        org_id = int(job.organisation_id)
        targets = list(group.targets.order_by("ordinal", "id"))
        target_ids = [t.id for t in targets]
        customer_t = Customer._meta.db_table
        value_t = CustomerTargetValue._meta.db_table
        enrol_t = Enrolment._meta.db_table
        counts = {
            "created_customers": 0,
            "values_written": 0,
            "values_cleared": 0,
            "newly_enrolled": 0,
        }
        any_bad = " OR ".join(
            ["pre IS NOT NULL", "NOT id_ok", "dup", "unknown", *[f"bad{i}" for i in range(nvals)]]
        )
        rows_t = f"enrol_rows_{job.pk}"
        newly_t = f"enrol_newly_{job.pk}"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(rn), max(rn) FROM {self.checked}")
            lo, hi = cursor.fetchone()
        from ..services import _announce

        start = lo
        while start is not None and start <= hi:
            end = start + CHUNK - 1
            with transaction.atomic(), connection.cursor() as cursor:
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
                vals = "".join(f", k.val{i}" for i in range(nvals))
                cursor.execute(f"DROP TABLE IF EXISTS {rows_t}")
                cursor.execute(
                    f"""
                    CREATE TEMP TABLE {rows_t} AS
                    SELECT c.id AS customer_id{vals}
                    FROM {self.checked} k
                    JOIN {customer_t} c ON c.organisation_id = {org_id} AND c.{_q(kind)} = k.norm
                    WHERE k.rn BETWEEN %s AND %s AND NOT ({any_bad})
                    """,
                    [start, end],
                )
                cursor.execute(f"ANALYZE {rows_t}")
                if nvals and target_ids:
                    cells = ", ".join(
                        f"({col.ordinal}, r.val{i})" for i, col in enumerate(spec.value_columns)
                    )
                    # changed values are updated in place (unchanged ones are not rewritten),
                    # missing ones inserted; ON CONFLICT guards against a concurrent writer
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
                    for i, col in enumerate(spec.value_columns):
                        cursor.execute(
                            f"""
                            DELETE FROM {value_t} v USING {rows_t} r
                            WHERE r.val{i} IS NULL AND v.customer_id = r.customer_id
                              AND v.cycle_ordinal = %s AND v.target_id = ANY(%s::bigint[])
                            """,
                            [col.ordinal, target_ids],
                        )
                        counts["values_cleared"] += cursor.rowcount
                cursor.execute(f"DROP TABLE IF EXISTS {newly_t}")
                cursor.execute(
                    f"""
                    CREATE TEMP TABLE {newly_t} AS
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
                if job.send_trigger:
                    self.timed("notify", self._notify, cursor, newly_t, targets)
                cursor.execute(f"SELECT customer_id FROM {newly_t} ORDER BY customer_id")
                newly = [r[0] for r in cursor.fetchall()]
                _announce(group, newly, EnrolmentSource.CUSTOM_LIST)
                cursor.execute(f"DROP TABLE IF EXISTS {rows_t}; DROP TABLE IF EXISTS {newly_t}")
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*) FROM {self.checked} WHERE rn <= %s", [min(end, hi)]
                )
                self.progress(cursor.fetchone()[0])
            start = end + 1
        return counts

    def _notify(self, cursor, newly_t: str, targets) -> None:
        group = self.group
        cycle = notification_cycle(group)
        notif_t = EnrolmentNotification._meta.db_table
        customer_t = Customer._meta.db_table
        value_t = CustomerTargetValue._meta.db_table
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [notif_t])
        sequence = cursor.fetchone()[0]
        for part in target_parts(group, cycle, EnrolmentSource.CUSTOM_LIST):
            target = part["target"]
            details, params = [], []
            for name, criteria, value in part["subs"]:
                thr = (
                    "round(x.v * %s::numeric / 100, 4)"
                    if criteria == "percentage"
                    else "%s::numeric"
                )
                details.append(
                    "jsonb_build_object('milestoneName', %s::text, 'criteria', %s::text, "
                    f"'value', trim_scale(%s::numeric)::text, 'thresholdValue', trim_scale({thr})::text)"
                )
                params += [name, criteria, value, value]
            details.append(
                "jsonb_build_object('milestoneName', %s::text, 'criteria', 'target', "
                "'value', trim_scale(x.v)::text, 'thresholdValue', trim_scale(x.v)::text)"
            )
            params.append(target.name)
            cursor.execute(
                f"""
                INSERT INTO {notif_t}
                    (id, organisation_id, target_group_id, target_id, customer_id, event_name,
                     source, payload, created_at)
                SELECT x.id, {int(group.organisation_id)}, {int(group.id)}, {int(target.id)},
                       x.customer_id, %s, %s,
                       jsonb_build_object('eventName', %s::text, 'data', %s::jsonb || jsonb_build_object(
                           'eventId', x.id,
                           'customerIdentifiers', jsonb_build_object(
                               'customerId', c.id, 'mobile', c.mobile, 'email', c.email,
                               'externalId', c.external_id),
                           'targetValue', trim_scale(x.v)::text,
                           'milestoneDetails', jsonb_build_array({", ".join(details)}))),
                       now()
                FROM (
                    SELECT nextval('{sequence}'::regclass) AS id, n.customer_id,
                           coalesce(v.value, %s::numeric) AS v
                    FROM {newly_t} n
                    LEFT JOIN {value_t} v ON v.target_id = {int(target.id)}
                        AND v.customer_id = n.customer_id AND v.cycle_ordinal = {int(cycle.ordinal)}
                ) x
                JOIN {customer_t} c ON c.id = x.customer_id
                ON CONFLICT (target_id, customer_id) DO NOTHING
                """,
                [
                    EVENT_NAME,
                    EnrolmentSource.CUSTOM_LIST,
                    EVENT_NAME,
                    json.dumps(part["base"]),
                    *params,
                    part["default"],
                ],
            )

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DROP TABLE IF EXISTS {self.stage}; DROP TABLE IF EXISTS {self.checked}"
            )
