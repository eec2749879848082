"""Benchmark: import a 25 MB custom-list CSV (~1M rows: mobile + 3 cycle columns) on PostgreSQL.

    .venv/bin/python bench/bench_import.py [--rows N] [--keep]

Creates its own database (milestones_bench, dropped at the end unless --keep) on the server
of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), migrates it, generates the
file, and runs the real import (enrolment.importing.jobs.import_job_run: COPY into a staging
table, validation in SQL, set-based merge of customers, values, enrolments and enrolment
notifications). Then imports the same file again ("upload more": every value updated, nobody
newly enrolled) and, for comparison, times PostgreSQL's own COPY of the file into a bare table.
Prints rows/s and the process's peak memory (resource.getrusage).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LIMIT = 25 * 1024 * 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, rows: int) -> tuple[int, int]:
    """mobile,P1,P2,P3 rows until `rows` or just under 25 MB. Returns (rows, bytes)."""
    rng = random.Random(42)
    written = size = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        header = "mobile,Bench P1,Bench P2,Bench P3\n"
        out.write(header)
        size = len(header)
        base = 9000000000
        buf = []
        for i in range(rows):
            line = f"{base + i},{rng.randint(100, 9999)},{rng.randint(100, 9999)},{rng.randint(100, 9999)}\n"
            if size + len(line) > LIMIT:
                break
            buf.append(line)
            size += len(line)
            written += 1
            if len(buf) >= 50_000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    return written, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_100_000, help="at most this many rows")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--no-trigger", action="store_true", help="import without enrolment notifications"
    )
    args = parser.parse_args()

    import psycopg

    server = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    if not server.scheme.startswith("postgres"):
        sys.exit("The import benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    bench_db = "milestones_bench"
    admin_url = urlunparse(server._replace(path="/postgres"))
    bench_url = urlunparse(server._replace(path=f"/{bench_db}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {bench_db}")
        conn.execute(f"CREATE DATABASE {bench_db}")

    scratch = Path(tempfile.mkdtemp(prefix="bench_import_"))
    os.environ["DATABASE_URL"] = bench_url
    os.environ["VAR_DIR"] = str(scratch / "var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milestones_site.settings")
    import django

    django.setup()
    from datetime import date
    from decimal import Decimal

    from django.core.files import File
    from django.core.management import call_command
    from django.db import connections

    from enrolment.importing.jobs import import_job_create, import_job_run
    from enrolment.models import CustomerTargetValue, Enrolment, EnrolmentNotification
    from enrolment.signals import customers_enrolled
    from milestones.models import Organisation, Store
    from milestones.services.target_groups import target_group_create

    try:
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"migrated {bench_db} in {time.perf_counter() - t0:.1f} s")
        org = Organisation.objects.create(slug="bench", name="Bench", timezone="Asia/Kolkata")
        Store.objects.create(organisation=org, code="T1", name="Till", is_till=True)  # its till
        group, _ = target_group_create(
            organisation=org,
            data={
                "name": "Bench",
                "till_code": "T1",
                "start": date(2026, 1, 1),
                "end": date(2026, 12, 31),
                "target_value_mode": "per_customer",
                "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 3},
                "enrolment": {"mode": "custom_list"},
                "targets": [
                    {
                        "name": "Bench litres",
                        "kpi": "quantity",
                        "value": Decimal(100),
                        "sub_targets": [
                            {"name": "Half", "criteria": "absolute", "value": Decimal(50)}
                        ],
                    }
                ],
            },
            via_api=True,
        )
        path = scratch / "custom_list.csv"
        t0 = time.perf_counter()
        rows, size = generate(path, args.rows)
        print(f"generated {path.name}: {rows:,} rows, {size / 1024 / 1024:.1f} MB "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        receivers = len(customers_enrolled.receivers)
        print(f"customers_enrolled receivers connected: {receivers}")

        def run(label: str) -> None:
            with path.open("rb") as fh:
                job = import_job_create(
                    target_group=group,
                    file=File(fh, name=path.name),
                    identifier_type="mobile",
                    send_trigger=not args.no_trigger,
                    run=False,
                )
            t = time.perf_counter()
            if os.environ.get("BENCH_SQL_TIMINGS"):
                slow = []

                def timer(execute, sql, params, many, context):
                    start = time.perf_counter()
                    try:
                        return execute(sql, params, many, context)
                    finally:
                        slow.append((time.perf_counter() - start, " ".join(sql.split())[:110]))

                with connections["default"].execute_wrapper(timer):
                    job = import_job_run(import_id=job.id)
                grouped: dict[str, list[float]] = {}
                for took_sql, sql in slow:
                    grouped.setdefault(sql[:70], []).append(took_sql)
                top = sorted(grouped.items(), key=lambda kv: -sum(kv[1]))[:15]
                for sql, took_list in top:
                    print(f"  {sum(took_list):6.2f} s  x{len(took_list):<4} {sql}")
            else:
                job = import_job_run(import_id=job.id)
            took = time.perf_counter() - t
            assert job.status == "done", (job.status, job.errors[:5])
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in getattr(job, "timings", {}).items())
            print(f"  phases: {phases}")
            print(
                f"{label}: {job.total:,} rows in {took:.1f} s = {job.total / took:,.0f} rows/s "
                f"[{job.method}] created {job.created_customers:,} customers, "
                f"{job.values_written:,} values, {job.newly_enrolled:,} enrolled, "
                f"{job.notifications:,} notifications; peak memory so far {peak_mb():.0f} MB"
            )

        run("import")
        run("upload again (updates)")
        assert Enrolment.objects.filter(target_group=group).count() == rows
        assert CustomerTargetValue.objects.filter(target__target_group=group).count() == 3 * rows
        expected = 0 if args.no_trigger else rows
        assert EnrolmentNotification.objects.filter(target_group=group).count() == expected

        # PostgreSQL's own COPY of the same file into a bare table, for comparison.
        with psycopg.connect(bench_url, autocommit=True) as conn:
            conn.execute("CREATE UNLOGGED TABLE bare_copy (mobile text, p1 text, p2 text, p3 text)")
            t = time.perf_counter()
            with conn.cursor() as cur, path.open("rb") as fh:
                with cur.copy("COPY bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy:
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
            took = time.perf_counter() - t
            print(f"bare COPY of the same file: {took:.2f} s = {rows / took:,.0f} rows/s")
        print(f"peak memory (ru_maxrss): {peak_mb():.0f} MB")
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {bench_db}")
        for item in sorted(scratch.rglob("*"), reverse=True):
            item.unlink() if item.is_file() else item.rmdir()
        scratch.rmdir()


if __name__ == "__main__":
    main()
