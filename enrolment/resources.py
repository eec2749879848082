"""django-import-export resource for custom lists: the admin's preview, nothing more.

The file's columns depend on the milestone (an identifier column, one column per cycle), so
the resource declares no fixed fields: `before_import` checks the header with the same rules
as the import job (`importing.spec`) and each row is checked by the same `RowChecker`. A bad
row is shown in the preview with its reasons and blocks the confirmation, unless the
configurer chose to skip bad rows.

It writes nothing: on confirm the admin hands the previewed file to the one import service
(`importing.jobs`, see `ImportJobAdmin.process_import`), which checks it again and writes it
like every other upload. A non-dry-run import through this resource is refused.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from import_export import resources
from import_export.instance_loaders import BaseInstanceLoader
from import_export.results import RowResult

from .importing.checks import RowChecker
from .importing.spec import FileRefused, resolve_header


class PreviewOnly(RuntimeError):
    """A custom list is written by its import job (enrolment.importing.jobs), never here."""


class CustomListResource(resources.Resource):
    def __init__(
        self,
        target_group=None,
        identifier_type: str = "mobile",
        identifier_column: str = "",
        mapping: dict | None = None,
        skip_bad_rows: bool = False,
        create_customers: bool = True,
        **kwargs,  # the job's other options (send_trigger, user): not the preview's
    ):
        super().__init__(**kwargs)
        self.target_group = target_group
        self.identifier_type = identifier_type
        self.identifier_column = identifier_column
        self.mapping = mapping or {}
        self.skip_bad_rows = skip_bad_rows
        self.create_customers = create_customers
        self.spec = None
        self.checker = None
        self.headers: list[str] = []

    class Meta:
        instance_loader_class = BaseInstanceLoader
        use_transactions = True

    @classmethod
    def get_display_name(cls):
        return "Custom list (identifier + one column per cycle)"

    def import_data(self, dataset, dry_run=False, **kwargs):
        if not dry_run:
            raise PreviewOnly(
                "The custom-list resource only previews: confirm hands the file to the import "
                "job (enrolment.importing.jobs.import_job_create)."
            )
        return super().import_data(dataset, dry_run=dry_run, **kwargs)

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
        ((_, ident, _, errors),) = self.checker.check([(line, cells, None)])
        if errors:
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
        return result
