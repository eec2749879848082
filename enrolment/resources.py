"""django-import-export resource for custom lists: the admin's upload, preview and confirm.

The file's columns depend on the milestone (an identifier column, one column per cycle), so
the resource declares no fixed fields: `before_import` checks the header with the same rules
as the API (`importing.spec`), each row is checked by the same `RowChecker`, and confirmed
rows are written by the same service (`custom_list_rows_apply`) as the other paths. A bad row
is shown in the preview with its reasons and blocks the confirmation, unless the configurer
chose to skip bad rows.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from import_export import resources
from import_export.instance_loaders import BaseInstanceLoader
from import_export.results import RowResult

from .importing.checks import RowChecker, batched
from .importing.spec import FileRefused, resolve_header
from .models import ImportJob, ImportStatus


class CustomListResource(resources.Resource):
    def __init__(
        self,
        target_group=None,
        identifier_type: str = "mobile",
        identifier_column: str = "",
        mapping: dict | None = None,
        send_trigger: bool = True,
        skip_bad_rows: bool = False,
        create_customers: bool = True,
        user=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.target_group = target_group
        self.identifier_type = identifier_type
        self.identifier_column = identifier_column
        self.mapping = mapping or {}
        self.send_trigger = send_trigger
        self.skip_bad_rows = skip_bad_rows
        self.create_customers = create_customers
        self.user = user
        self.spec = None
        self.checker = None
        self.headers: list[str] = []
        self.valid_rows: list = []
        self.bad_rows = 0

    class Meta:
        instance_loader_class = BaseInstanceLoader
        use_transactions = True

    @classmethod
    def get_display_name(cls):
        return "Custom list (identifier + one column per cycle)"

    def before_import(self, dataset, **kwargs):
        if self.target_group is None:
            raise ValidationError("Choose the milestone to upload to.")
        self.headers = list(dataset.headers or [])
        try:
            self.spec = resolve_header(
                group=self.target_group,
                header=self.headers,
                identifier_type=self.identifier_type,
                identifier_column=self.identifier_column or None,
                mapping=self.mapping,
            )
        except FileRefused as refused:
            raise ValidationError([f"{e.column or 'file'}: {e.message}" for e in refused.errors])
        self.checker = RowChecker(
            organisation_id=self.target_group.organisation_id,
            spec=self.spec,
            create_customers=self.create_customers,
        )

    def import_row(self, row, instance_loader, **kwargs):
        result = self.get_row_result_class()()
        if self.checker is None:  # the header was refused; before_import reported why
            result.import_type = RowResult.IMPORT_TYPE_SKIP
            return result
        line = kwargs.get("row_number", 0) + 1  # the file's line: the header is line 1
        cells = ["" if row.get(h) is None else str(row.get(h)) for h in self.headers]
        ((_, ident, values, errors),) = self.checker.check([(line, cells, None)])
        if errors:
            self.bad_rows += 1
            if self.skip_bad_rows:
                result.import_type = RowResult.IMPORT_TYPE_SKIP
                return result
            by_column: dict[str, list[str]] = {}
            for error in errors:
                by_column.setdefault(error.column or "row", []).append(
                    f"Row {line}: {error.message}"
                )
            result.import_type = RowResult.IMPORT_TYPE_INVALID
            result.validation_error = ValidationError(by_column)
            return result
        result.import_type = RowResult.IMPORT_TYPE_NEW
        result.object_repr = ident
        self.valid_rows.append((ident, values))
        return result

    def after_import(self, dataset, result, **kwargs):
        if kwargs.get("dry_run") or result.has_errors() or result.has_validation_errors():
            return
        from .services import custom_list_rows_apply

        group = self.target_group
        targets = list(group.targets.all())
        totals = {"created_customers": 0, "values_written": 0, "values_cleared": 0,
                  "newly_enrolled": 0}  # fmt: skip
        started = timezone.now()
        for chunk in batched(self.valid_rows, 2000):
            with transaction.atomic():
                counts = custom_list_rows_apply(
                    target_group=group,
                    targets=targets,
                    identifier_type=self.identifier_type,
                    rows=chunk,
                    create_customers=self.create_customers,
                    notify=self.send_trigger,
                )
            for key in totals:
                totals[key] += counts[key]
        ImportJob.objects.create(
            organisation_id=group.organisation_id,
            target_group=group,
            created_by=self.user if getattr(self.user, "pk", None) else None,
            original_name=(kwargs.get("file_name") or "")[:255],
            identifier_type=self.identifier_type,
            identifier_column=self.identifier_column,
            mapping=self.mapping,
            send_trigger=self.send_trigger,
            skip_bad_rows=self.skip_bad_rows,
            create_customers=self.create_customers,
            status=ImportStatus.DONE,
            method="admin",
            total=len(dataset),
            processed=len(dataset),
            skipped_rows=self.bad_rows,
            started_at=started,
            finished_at=timezone.now(),
            **totals,
        )
