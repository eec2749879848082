"""The one custom-list import service: every way in stores a job and runs it here.

- the API (`POST /api/v1/target-groups/{id}/target-values/upload/`), the admin's "Add import
  job" and the care upload page (`membercare/views.py`): `import_job_create` stores the file
  and queues `import_job_run` (`enrolment.tasks.import_target_values`, `ingest` queue);
- the admin's import screen (django-import-export's preview, `enrolment/resources.py`): on
  confirm, the previewed file becomes a job the same way and is run at once
  (`enrolment/admin.py ImportJobAdmin.process_import`);
- the benchmark: `import_job_create(run=False)`, then `import_job_run`;
- "Skip bad rows" on a failed import's page: `import_job_rerun`, a new job of the same file
  and options that skips the bad rows (refused, writing nothing, when that cannot help).

`import_job_run` claims the job once and hands it to one of two database backends, which
share the rules (`spec`) and the row checks (`checks`): `pg_path` (PostgreSQL: COPY into a
staging table, set-based writes) or `python_path` (SQLite, or `ENROLMENT_IMPORT_SQL =
False`). Nothing else writes a custom list's rows.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from milestones.models import EnrolmentMode, TargetGroup

from ..identifiers import IDENTIFIER_TYPES
from ..models import EnrolmentNotification, EnrolmentSource, ImportJob, ImportStatus
from .checks import ErrorSink
from .spec import FileRefused, RowError, max_bytes, msg_too_big

log = logging.getLogger(__name__)


def use_sql_path() -> bool:
    return connection.vendor == "postgresql" and getattr(settings, "ENROLMENT_IMPORT_SQL", True)


def import_params_errors(*, target_group, file, identifier_type, mapping) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if target_group.enrolment_mode != EnrolmentMode.CUSTOM_LIST:
        errors["non_field_errors"] = [
            "Custom lists are uploaded to milestones with the custom_list enrolment mode."
        ]
    size = getattr(file, "size", None) or 0
    if size > max_bytes():
        errors["file"] = [msg_too_big(size)]
    if identifier_type not in IDENTIFIER_TYPES:
        errors["identifier_type"] = ["Use mobile, email or external_id."]
    if mapping is not None and not isinstance(mapping, dict):
        errors["mapping"] = [
            'The mapping is a JSON object: {"CSV column": "P1" | "do_not_import"}.'
        ]
    return errors


@transaction.atomic
def import_job_create(
    *,
    target_group: TargetGroup,
    file,
    identifier_type: str = "mobile",
    identifier_column: str = "",
    mapping: dict | None = None,
    send_trigger: bool | None = None,
    skip_bad_rows: bool = False,
    create_customers: bool = True,
    user=None,
    run: bool = True,
    method: str = "",
) -> ImportJob:
    """Store the upload and queue its import (after commit; `run=False`: the caller runs it
    with `import_job_run`). Refuses, before reading a byte of it, a file over the size limit;
    refuses a milestone that is not enrolled by custom list. `method` labels the job in place
    of the backend's name (the admin's confirmed preview: "admin", as it always showed)."""
    errors = import_params_errors(
        target_group=target_group, file=file, identifier_type=identifier_type, mapping=mapping
    )
    if errors:
        raise ValidationError(errors)
    size = getattr(file, "size", None) or 0
    job = ImportJob(
        organisation_id=target_group.organisation_id,
        target_group=target_group,
        created_by=user if getattr(user, "pk", None) else None,
        original_name=(getattr(file, "name", "") or "")[:255],
        size=size,
        identifier_type=identifier_type,
        identifier_column=identifier_column or "",
        mapping=mapping or {},
        send_trigger=target_group.send_enrolment_trigger if send_trigger is None else send_trigger,
        skip_bad_rows=skip_bad_rows,
        create_customers=create_customers,
        method=method,
    )
    job.file.save(f"group{target_group.id}.csv", file, save=False)
    job.save()
    if run:
        from ..tasks import import_target_values

        transaction.on_commit(lambda: import_target_values.delay(job.id))
    return job


def rerun_refusal(job: ImportJob) -> str | None:
    """Why a finished import cannot be run again skipping its bad rows; None when it can:
    a failed import whose problems are all in customer rows, some rows being good."""
    if job.status != ImportStatus.FAILED:
        return "Only an import that failed can be run again without its bad rows."
    if job.skip_bad_rows:
        return "This import already skipped its bad rows."
    errors = [e for e in job.errors or [] if isinstance(e, dict)]
    if not errors or any(int(e.get("row") or 0) < 2 for e in errors):
        return (
            "The file itself was refused, not some of its rows: skipping rows cannot fix it. "
            "Correct the file and upload it again."
        )
    bad_rows = {int(e["row"]) for e in errors}
    if job.error_count <= len(errors) and job.total and len(bad_rows) >= job.total:
        return "Every row of the file has a problem: skipping them would import nothing."
    return None


def import_job_rerun(*, job: ImportJob, user=None) -> ImportJob:
    """A failed import's file again, as a new import that skips the bad rows (the problems
    it finds are listed on the new import). Refused, writing nothing, when skipping rows
    cannot help (`rerun_refusal`)."""
    reason = rerun_refusal(job)
    if reason:
        raise ValidationError(reason)
    job.file.open("rb")
    try:
        data = job.file.read()
    finally:
        job.file.close()
    return import_job_create(
        target_group=job.target_group,
        file=ContentFile(data, name=job.original_name or "custom-list.csv"),
        identifier_type=job.identifier_type,
        identifier_column=job.identifier_column,
        mapping=job.mapping,
        send_trigger=job.send_trigger,
        skip_bad_rows=True,
        create_customers=job.create_customers,
        user=user,
    )


def _claim(job_id: int) -> ImportJob | None:
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PENDING).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    return ImportJob.objects.select_related("target_group__organisation").get(pk=job_id)


def _finish(job: ImportJob, status: str, sink: ErrorSink, **fields) -> None:
    fields.update(
        status=status,
        errors=sink.items,
        error_count=sink.count,
        finished_at=timezone.now(),
    )
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    for key, value in fields.items():
        setattr(job, key, value)


def import_job_run(*, import_id: int) -> ImportJob | None:
    """Run a pending import once (a claim makes a second delivery a no-op)."""
    job = _claim(import_id)
    if job is None:
        return None
    sink = ErrorSink(ImportJob.MAX_STORED_ERRORS)

    def progress(done: int) -> None:
        ImportJob.objects.filter(pk=job.pk).update(processed=done)

    sql_path = use_sql_path()
    notified_before = 0
    if not sql_path:  # the SQL path counts what it writes
        notified_before = EnrolmentNotification.objects.filter(
            target_group=job.target_group, source=EnrolmentSource.CUSTOM_LIST
        ).count()
    try:
        if job.size > max_bytes():
            raise FileRefused([RowError(0, "", msg_too_big(job.size))])
        counts = _run_sql(job, sink, progress) if sql_path else _run_python(job, sink, progress)
    except FileRefused as refused:
        for error in refused.errors:
            sink.add(error)
        _finish(job, ImportStatus.FAILED, sink)
        return job
    except Exception as exc:
        log.exception("import %s failed", job.pk)
        sink.add(RowError(0, "", f"The import stopped on an unexpected error: {exc}"))
        _finish(job, ImportStatus.FAILED, sink)
        raise
    if counts is None:  # errors found and bad rows not to be skipped: nothing written
        _finish(job, ImportStatus.FAILED, sink)
        return job
    if "notifications" in counts:
        notifications = counts.pop("notifications")
    else:
        notifications = (
            EnrolmentNotification.objects.filter(
                target_group=job.target_group, source=EnrolmentSource.CUSTOM_LIST
            ).count()
            - notified_before
        )
    _finish(job, ImportStatus.DONE, sink, notifications=notifications, **counts)
    job.refresh_from_db()
    return job


def _run_python(job: ImportJob, sink: ErrorSink, progress) -> dict | None:
    from . import python_path

    job.method = job.method or "python"
    total, bad = python_path.validate(job, sink)
    ImportJob.objects.filter(pk=job.pk).update(total=total, method=job.method)
    if bad and not job.skip_bad_rows:
        return None
    counts = python_path.write(job, bad, progress)
    counts["skipped_rows"] = len(bad)
    counts["processed"] = total
    return counts


def _run_sql(job: ImportJob, sink: ErrorSink, progress) -> dict | None:
    from .pg_path import PgImport

    job.method = job.method or "postgres_copy"
    runner = PgImport(job, sink, progress)
    job.timings = runner.timings  # seconds per phase, for the benchmark
    try:
        total = runner.timed("stage", runner.stage_file)
        ImportJob.objects.filter(pk=job.pk).update(total=total, method=job.method)
        bad_rows, _ = runner.timed("validate", runner.validate)
        if bad_rows and not job.skip_bad_rows:
            return None
        counts = runner.timed("write", runner.write, total)
        counts["skipped_rows"] = bad_rows
        counts["processed"] = total
        return counts
    finally:
        runner.drop()
