"""The SQLite backend of `jobs.import_job_run` (and PostgreSQL with `ENROLMENT_IMPORT_SQL =
False`): validate the whole file, then write it in chunks. Two streaming passes, flat memory;
the file and its rows are read and checked by the code the PostgreSQL backend shares
(`checks.job_rows`, `checks.RowChecker`, `spec`)."""

from __future__ import annotations

from django.db import transaction

from ..models import ImportJob
from .checks import ErrorSink, RowChecker, batched, job_rows
from .spec import MSG_NO_ROWS, FileRefused, RowError

CHUNK = 2000


def validate(job: ImportJob, sink: ErrorSink) -> tuple[int, set[int]]:
    """First pass: every problem of the file. Returns (rows, bad row numbers)."""
    with job_rows(job) as (spec, rows):
        checker = RowChecker(
            organisation_id=job.organisation_id,
            spec=spec,
            create_customers=job.create_customers,
        )
        total, bad = 0, set()
        for batch in batched(rows, CHUNK):
            for rowno, _, _, errors in checker.check(batch):
                total += 1
                if errors:
                    bad.add(rowno)
                    for error in errors:
                        sink.add(error)
    if total == 0:
        raise FileRefused([RowError(0, "", MSG_NO_ROWS)])
    return total, bad


def write(job: ImportJob, bad: set[int], progress) -> dict[str, int]:
    """Second pass: the good rows, chunk by chunk (each chunk one transaction)."""
    from ..services import custom_list_rows_apply

    group = job.target_group
    targets = list(group.targets.all())
    counts = {"created_customers": 0, "values_written": 0, "values_cleared": 0, "newly_enrolled": 0}
    done = 0
    with job_rows(job) as (spec, rows):
        checker = RowChecker(organisation_id=job.organisation_id, spec=spec, create_customers=True)
        for batch in batched(rows, CHUNK):
            good = [r for r in batch if r[0] not in bad]
            checked = [
                (ident, values) for _, ident, values, errors in checker.check(good) if not errors
            ]
            with transaction.atomic():
                result = custom_list_rows_apply(
                    target_group=group,
                    targets=targets,
                    identifier_type=spec.identifier_type,
                    rows=checked,
                    create_customers=job.create_customers,
                    notify=job.send_trigger,
                )
            for key in counts:
                counts[key] += result[key]
            done += len(batch)
            progress(done)
    return counts
