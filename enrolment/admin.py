import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from import_export.admin import ImportMixin
from import_export.formats import base_formats
from import_export.forms import ImportForm

from common.admin import OrgScopedAdmin, UploaderBoundConfirmForm, UploaderBoundImport
from milestones.models import EnrolmentMode, Role, TargetGroup

from . import admin_audiences  # noqa: F401 -- registers the audience group screens
from .identifiers import IDENTIFIER_TYPES
from .importing.jobs import import_job_create, import_job_run, import_params_errors
from .models import (
    Customer,
    CustomerTargetValue,
    Enrolment,
    EnrolmentNotification,
    ImportJob,
    ImportStatus,
)
from .resources import CustomListResource
from .selectors import customers_find

IDENTIFIER_CHOICES = [(k, k.replace("_", " ")) for k in IDENTIFIER_TYPES]


@admin.register(Customer)
class CustomerAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    list_display = [
        "id",
        "name",
        "mobile",
        "email",
        "external_id",
        "is_loyalty_member",
        "joined_on",
    ]
    list_filter = ["is_loyalty_member"]
    search_fields = ["mobile", "email", "external_id", "name"]

    def get_search_results(self, request, queryset, search_term):
        """Also the customer an identifier names in any spelling ("+91 90000 00002" finds
        +919000000002), as member care's search does."""
        qs, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        organisation = getattr(request.user, "organisation", None)
        if search_term.strip() and organisation is not None:
            found = [c.pk for c in customers_find(organisation=organisation, query=search_term)]
            if found:
                qs = qs | queryset.filter(pk__in=found)
        return qs, may_have_duplicates


@admin.register(Enrolment)
class EnrolmentAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    list_display = ["customer", "target_group", "source", "is_active", "enrolled_at"]
    list_filter = ["source", "is_active"]
    list_select_related = ["customer", "target_group"]
    raw_id_fields = ["customer", "target_group"]
    search_fields = ["customer__mobile", "customer__email", "customer__external_id"]


@admin.register(CustomerTargetValue)
class CustomerTargetValueAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    list_display = ["customer", "target", "cycle_ordinal", "value"]
    list_select_related = ["customer", "target"]
    raw_id_fields = ["customer", "target"]
    search_fields = ["customer__mobile", "customer__email", "customer__external_id"]


@admin.register(EnrolmentNotification)
class EnrolmentNotificationAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    list_display = ["id", "event_name", "customer", "target", "source", "created_at", "sent_at"]
    list_select_related = ["customer", "target"]
    list_filter = ["source"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- custom list uploads -----------------------------------------------------------------------


def _mapping(text: str) -> dict:
    if not (text or "").strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError('Write the mapping as JSON: {"CSV column": "P1" or "do_not_import"}.')
    if not isinstance(value, dict):
        raise ValidationError('Write the mapping as a JSON object: {"CSV column": "P1"}.')
    return value


class UploadOptions(forms.Form):
    """The configurer's choices, shared by the preview form and the confirm form."""

    target_group = forms.ModelChoiceField(queryset=TargetGroup.objects.none())
    identifier_type = forms.ChoiceField(choices=IDENTIFIER_CHOICES, initial="mobile")
    identifier_column = forms.CharField(
        required=False, help_text="Blank: the column named like the identifier type."
    )
    mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON: {"CSV column": "P1" or a period name or "do_not_import"}.',
    )
    send_trigger = forms.BooleanField(required=False, initial=True, label="Send enrolment trigger")
    skip_bad_rows = forms.BooleanField(
        required=False, help_text="Import the good rows and leave out the bad ones."
    )
    create_customers = forms.BooleanField(
        required=False, initial=True, help_text="Create customers the list introduces."
    )

    def _scope(self, organisation_id):
        qs = TargetGroup.objects.filter(enrolment_mode=EnrolmentMode.CUSTOM_LIST)
        if organisation_id is not None:
            qs = qs.filter(organisation_id=organisation_id)
        self.fields["target_group"].queryset = qs

    def clean_mapping(self):
        return _mapping(self.cleaned_data.get("mapping"))

    def options(self) -> dict:
        data = self.cleaned_data
        return {
            "target_group": data["target_group"],
            "identifier_type": data["identifier_type"],
            "identifier_column": data.get("identifier_column") or "",
            "mapping": data.get("mapping") or {},
            "send_trigger": data.get("send_trigger", False),
            "skip_bad_rows": data.get("skip_bad_rows", False),
            "create_customers": data.get("create_customers", False),
        }


class CustomListImportForm(UploadOptions, ImportForm):
    def __init__(self, formats, resources, organisation_id=None, **kwargs):
        super().__init__(formats, resources, **kwargs)
        self._scope(organisation_id)


class CustomListConfirmForm(UploadOptions, UploaderBoundConfirmForm):
    def __init__(self, *args, organisation_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._scope(organisation_id)
        for name in UploadOptions.base_fields:
            self.fields[name].widget = forms.HiddenInput()


class ImportJobForm(forms.ModelForm):
    mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON: {"CSV column": "P1" or a period name or "do_not_import"}.',
    )

    class Meta:
        model = ImportJob
        fields = ["target_group", "file", "identifier_type", "identifier_column", "send_trigger",
                  "skip_bad_rows", "create_customers"]  # fmt: skip
        widgets = {"identifier_type": forms.Select(choices=IDENTIFIER_CHOICES)}

    def clean_mapping(self):
        return _mapping(self.cleaned_data.get("mapping"))

    def clean(self):
        data = super().clean()
        group = data.get("target_group")
        if group is not None and data.get("file") is not None:
            errors = import_params_errors(
                target_group=group,
                file=data["file"],
                identifier_type=data.get("identifier_type"),
                mapping=data.get("mapping"),
            )
            for field, messages in errors.items():
                for message in messages:
                    self.add_error(None if field == "non_field_errors" else field, message)
        return data


@admin.register(ImportJob)
class ImportJobAdmin(UploaderBoundImport, ImportMixin, OrgScopedAdmin):
    """Custom list uploads, both through the one import service (`importing.jobs`).
    "Import" = preview (django-import-export, for small files), then confirm: the previewed
    file becomes an import job run at once; "Add" = a background import for any file up to
    25 MB, with a progress bar. The previewed file is confirmed only by its uploader
    (UploaderBoundImport)."""

    resource_classes = [CustomListResource]
    skip_admin_log = True  # rows are customers and values, not ImportJob objects
    import_form_class = CustomListImportForm
    confirm_form_class = CustomListConfirmForm
    form = ImportJobForm
    list_display = ["id", "target_group", "original_name", "status", "progress", "error_count",
                    "newly_enrolled", "method", "created_at", "details"]  # fmt: skip
    list_filter = ["status", "method"]
    list_select_related = ["target_group"]

    @admin.display(description="Details")
    def details(self, obj):
        """The import's page: progress, what to fix (row, column, value) and "skip bad rows"."""
        return format_html('<a href="{}">Details</a>', reverse("care:import-progress", args=[obj.pk]))  # fmt: skip

    @admin.display(description="Progress (rows done / total)")
    def progress(self, obj):
        return format_html(
            '<progress value="{}" max="{}"></progress> {} / {}',
            obj.processed,
            obj.total or 1,
            obj.processed,
            obj.total,
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f.name for f in ImportJob._meta.fields if f.name != "id"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*ImportJobForm.Meta.fields, "mapping"]
        return [f.name for f in ImportJob._meta.fields if f.name not in ("id", "organisation")]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "target_group":
            qs = TargetGroup.objects.filter(enrolment_mode=EnrolmentMode.CUSTOM_LIST)
            if request.user.organisation_id:
                qs = qs.filter(organisation_id=request.user.organisation_id)
            kwargs["queryset"] = qs
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_import_permission(self, request):
        return self._role_in(request, self.change_roles)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        job = import_job_create(
            target_group=data["target_group"],
            file=data["file"],
            identifier_type=data["identifier_type"],
            identifier_column=data.get("identifier_column") or "",
            mapping=data.get("mapping") or {},
            send_trigger=data.get("send_trigger", True),
            skip_bad_rows=data.get("skip_bad_rows", False),
            create_customers=data.get("create_customers", True),
            user=request.user,
        )
        obj.pk = job.pk
        obj.id = job.pk

    def get_import_formats(self):
        """CSV, as every other way in: the confirmed file is read by the import job."""
        return [base_formats.CSV]

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """Confirm: the previewed file, with the preview's options, is stored as an import job
        by `import_job_create` and run at once by `import_job_run` -- the checks and writes
        of every other upload, not rows written by django-import-export. The confirm form
        (UploaderBoundConfirmForm) has checked that the file is this user's; it leaves the
        import storage whatever happens next."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_confirm_form(request)
        if not form.is_valid():
            context = self.admin_site.each_context(request)
            context.update(
                title="Import", confirm_form=form, opts=self.model._meta, errors=form.errors
            )
            return TemplateResponse(request, [self.import_template_name], context)
        stored = self.get_tmp_storage_class()(
            name=form.cleaned_data["import_file_name"],
            read_mode="rb",
            **self.get_tmp_storage_class_kwargs(),
        )
        changelist = HttpResponseRedirect(reverse("admin:enrolment_importjob_changelist"))
        try:
            data = stored.read()
            job = import_job_create(
                file=ContentFile(
                    data if isinstance(data, bytes) else data.encode(),
                    name=form.cleaned_data.get("original_file_name") or "custom-list.csv",
                ),
                user=request.user,
                run=False,
                method="admin",
                **form.options(),
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return changelist
        finally:
            stored.remove()
        job = import_job_run(import_id=job.pk) or job
        if job.status == ImportStatus.DONE:
            self.message_user(
                request,
                f"Import #{job.pk}: {job.total} rows, {job.newly_enrolled} newly enrolled, "
                f"{job.values_written} values written, {job.skipped_rows} bad rows skipped.",
                messages.SUCCESS,
            )
        else:
            shown = "; ".join(
                f"row {e['row']}: {e['message']}" if e["row"] else e["message"]
                for e in job.errors[:3]
            )
            self.message_user(
                request,
                format_html(
                    'Import #{} failed ({} problems): {}. <a href="{}">What to fix, and skip '
                    "bad rows</a>.",
                    job.pk,
                    job.error_count,
                    shown,
                    reverse("care:import-progress", args=[job.pk]),
                ),
                messages.ERROR,
            )
        return changelist

    def get_import_form_kwargs(self, request):
        kwargs = super().get_import_form_kwargs(request)
        kwargs["organisation_id"] = request.user.organisation_id
        return kwargs

    def get_confirm_form_kwargs(self, request, import_form=None):
        kwargs = super().get_confirm_form_kwargs(request, import_form)
        kwargs["organisation_id"] = request.user.organisation_id
        return kwargs

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            options = import_form.options()
            initial.update(options)
            initial["target_group"] = options["target_group"].pk
            initial["mapping"] = json.dumps(options["mapping"])
        return initial

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        kwargs_out = super().get_import_resource_kwargs(request, *args, **kwargs)
        form = kwargs.get("form")
        if (
            form is not None
            and getattr(form, "cleaned_data", None)
            and "target_group" in (form.cleaned_data)
        ):
            kwargs_out.update(form.options())
            kwargs_out["user"] = request.user
        return kwargs_out
