"""Admin pages scoped to the user's organisation and gated by role.

Every model admin of the project derives from OrgScopedAdmin (inlines from OrgScopedInline):
its queryset is the user's organisation only (another org's object answers 404, its history
too), and so is everything that shows another row: foreign-key choices, raw-id labels,
autocomplete answers (the related admin's own queryset), list-filter choices and the "add"
form's pre-fills from the query string. Viewing/changing is decided by role, not by Django's
per-model permissions. An operations account (a superuser without an organisation) sees every
organisation. tests/security/test_permission_matrix.py walks the admin registry to check it.

Admin imports (django-import-export) are bound to their uploader: see UploaderBoundImport.
"""

from __future__ import annotations

import functools
import re

from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core import signing
from django.core.exceptions import FieldDoesNotExist, SuspiciousFileOperation, ValidationError
from import_export.forms import ConfirmImportForm
from import_export.tmp_storages import MediaStorage

from .roles import Role

ORGANISATION_MODEL = "milestones.Organisation"  # the tenant: scoped by label, never imported


@functools.cache
def org_lookup(model) -> str | None:
    """The lookup from a row of `model` to its organisation's id; None: not an org's row."""
    if model._meta.label == ORGANISATION_MODEL:
        return "pk"
    if any(f.name == "organisation" for f in model._meta.get_fields()):
        return "organisation_id"
    for field in model._meta.get_fields():
        if field.many_to_one and field.concrete and not field.null:
            parent = org_lookup(field.related_model) if field.related_model is not model else None
            if parent:
                return f"{field.name}__{parent}"
    return None


def sees_every_organisation(user) -> bool:
    return user.is_superuser and user.organisation_id is None


def org_rows(request, model, queryset=None):
    """`queryset` (default: every row of `model`) cut to the user's organisation; None when
    the model's rows belong to no organisation (nothing to cut)."""
    lookup = org_lookup(model)
    if lookup is None:
        return None
    if queryset is None:
        queryset = model._default_manager.all()
    if sees_every_organisation(request.user):
        return queryset
    return queryset.filter(**{lookup: request.user.organisation_id})


class OrgScopedRawIdWidget(ForeignKeyRawIdWidget):
    """The raw-id input prints the label of the row it holds only if the row is one of the
    field's choices (Django's looks the id up in every organisation)."""

    def __init__(self, rel, admin_site, attrs=None, using=None, *, queryset):
        super().__init__(rel, admin_site, attrs, using)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            visible = self.queryset.using(self.db).filter(**{key: value}).exists()
        except (TypeError, ValueError, ValidationError):
            visible = False
        if not visible:
            return "", ""
        return super().label_and_url_for_value(value)


class OrgScopedRelatedFieldListFilter(RelatedFieldListFilter):
    """A related-field filter whose choices are the user's organisation's rows only."""

    def field_choices(self, field, request, model_admin):
        rows = org_rows(request, field.related_model)
        if rows is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            rows = rows.order_by(*ordering)
        remote = getattr(field, "remote_field", None)
        attname = (
            remote.get_related_field().attname
            if field.concrete and hasattr(remote, "get_related_field")
            else "pk"
        )
        return [(getattr(row, attname), str(row)) for row in rows]


class OrgScopedFields:
    """Foreign-key and many-to-many form fields: choices (and raw-id labels) from the user's
    organisation only. Mixed into model admins and inlines."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        rows = self._scoped_choices(db_field, request, kwargs)
        if rows is not None:
            kwargs["queryset"] = rows
            if "widget" not in kwargs and db_field.name in self.raw_id_fields:
                kwargs["widget"] = OrgScopedRawIdWidget(
                    db_field.remote_field, self.admin_site, using=kwargs.get("using"), queryset=rows
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        rows = self._scoped_choices(db_field, request, kwargs)
        if rows is not None:
            kwargs["queryset"] = rows  # Django's many-to-many raw-id input prints no labels
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _scoped_choices(self, db_field, request, kwargs):
        """The choices a subclass gave (or the related admin's ordering), cut to the org."""
        if "queryset" in kwargs:
            queryset = kwargs["queryset"]
        else:
            queryset = self.get_field_queryset(kwargs.get("using"), db_field, request)
        return org_rows(request, db_field.related_model, queryset)


class OrgScopedAdmin(OrgScopedFields, admin.ModelAdmin):
    view_roles: tuple[str, ...] = (Role.CONFIGURER,)
    change_roles: tuple[str, ...] = (Role.CONFIGURER,)
    org_field = "organisation"
    # actions that write (a retry, say) on an otherwise read-only screen: offered to the
    # change roles only; Django runs no action that get_actions does not list
    change_role_actions: tuple[str, ...] = ()

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self._role_in(request, self.change_roles):
            for name in self.change_role_actions:
                actions.pop(name, None)
        return actions

    def _role_in(self, request, roles) -> bool:
        user = request.user
        if user.is_superuser:
            return True
        return user.is_active and user.is_staff and user.has_role(*roles)

    def has_module_permission(self, request):
        return self._role_in(request, self.view_roles)

    def has_view_permission(self, request, obj=None):
        return self._role_in(request, self.view_roles) or self.has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._role_in(request, self.change_roles)

    def has_add_permission(self, request):
        return self._role_in(request, self.change_roles)

    def has_delete_permission(self, request, obj=None):
        return self._role_in(request, self.change_roles)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if sees_every_organisation(request.user):
            return qs
        return qs.filter(**{f"{self.org_field}_id": request.user.organisation_id})

    def get_changeform_initial_data(self, request):
        """ "Add" pre-fills from the query string (?customer=1): an id of a row the user may
        not choose is dropped, as if it had not been given."""
        initial = super().get_changeform_initial_data(request)
        for name, value in list(initial.items()):
            try:
                field = self.opts.get_field(name)
            except FieldDoesNotExist:
                continue
            if not (field.concrete and field.is_relation):
                continue
            rows = org_rows(request, field.related_model)
            if rows is None:
                continue
            key = field.related_model._meta.pk.name if field.many_to_many else None
            key = key or field.target_field.name
            values = value if isinstance(value, list) else [value]
            try:
                found = rows.filter(**{f"{key}__in": values}).values_list(key, flat=True)
                known = {str(v) for v in found}
            except (TypeError, ValueError, ValidationError):
                known = set()
            kept = [v for v in values if str(v) in known]
            if isinstance(value, list):
                initial[name] = kept
            elif not kept:
                del initial[name]
        return initial

    def get_list_filter(self, request):
        """Related-field filters list the user's organisation's rows only."""
        return [self._scoped_filter(item) for item in super().get_list_filter(request)]

    def _scoped_filter(self, item):
        if isinstance(item, str):
            path, filter_class = item, RelatedFieldListFilter
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            path, filter_class = item
        else:
            return item
        if filter_class is not RelatedFieldListFilter:
            return item  # a filter of its own: it scopes its choices itself
        try:
            field = get_fields_from_path(self.model, path)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return item
        if not field.is_relation or org_lookup(field.related_model) is None:
            return item
        return (path, OrgScopedRelatedFieldListFilter)

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.org_field == "organisation":
            excluded.append("organisation")
        return excluded

    def save_model(self, request, obj, form, change):
        if not change and self.org_field == "organisation" and not obj.organisation_id:
            obj.organisation = request.user.organisation
        super().save_model(request, obj, form, change)


class OrgScopedInline(OrgScopedFields, admin.StackedInline):
    """An inline whose foreign-key choices are the user's organisation's rows."""


# --- Admin imports bound to their uploader -----------------------------------------------------


class ImportTempStorage(MediaStorage):
    """Where django-import-export keeps a previewed file until it is confirmed
    (IMPORT_EXPORT_TMP_STORAGE_CLASS): a folder of its own in the media storage, which every
    web process shares, under a name the storage made (a random uuid). Any other name is
    refused, so nothing outside that folder is ever read or deleted."""

    NAME = re.compile(r"[0-9a-f]{32}")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.name is not None and not self.NAME.fullmatch(str(self.name)):
            raise SuspiciousFileOperation("Not the name of an import's temporary file.")

    def exists(self) -> bool:
        return self._storage.exists(self.get_full_path())


IMPORT_NAME_SALT = "milestones.admin-import-file"
IMPORT_NAME_MAX_AGE = 24 * 3600  # seconds between the preview and the confirmation
IMPORT_NAME_REFUSED = "This upload is not yours or has expired: upload the file again."


def import_name_sign(name: str, user) -> str:
    """The confirm form's value naming a previewed file: valid for its uploader only."""
    signer = signing.TimestampSigner(salt=IMPORT_NAME_SALT)
    return signer.sign_object({"file": name, "user": user.pk, "org": user.organisation_id})


def import_name_unsign(value: str, user) -> str:
    """The previewed file's name, if `value` was signed for this user and organisation."""
    signer = signing.TimestampSigner(salt=IMPORT_NAME_SALT)
    try:
        data = signer.unsign_object(value or "", max_age=IMPORT_NAME_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        raise ValidationError(IMPORT_NAME_REFUSED)
    if not isinstance(data, dict) or user is None:
        raise ValidationError(IMPORT_NAME_REFUSED)
    if (data.get("user"), data.get("org")) != (user.pk, user.organisation_id):
        raise ValidationError(IMPORT_NAME_REFUSED)
    name = data.get("file")
    if not isinstance(name, str):
        raise ValidationError(IMPORT_NAME_REFUSED)
    return name


class UploaderBoundConfirmForm(ConfirmImportForm):
    """The confirm step of an admin import: `import_file_name` is the signed value of the
    preview (import_name_sign); it cleans to the file's name only for the user and
    organisation that uploaded it, and only while the file is there. Anything else (another
    user's file, a name in the temp directory, an expired preview) is refused."""

    def __init__(self, *args, uploader=None, tmp_storage_class=ImportTempStorage, **kwargs):
        super().__init__(*args, **kwargs)
        self.uploader = uploader
        self.tmp_storage_class = tmp_storage_class

    def clean_import_file_name(self):
        name = import_name_unsign(self.cleaned_data.get("import_file_name"), self.uploader)
        try:
            stored = self.tmp_storage_class(name=name)
        except SuspiciousFileOperation:
            raise ValidationError(IMPORT_NAME_REFUSED)
        exists = getattr(stored, "exists", None)
        if exists is not None and not exists():
            raise ValidationError(IMPORT_NAME_REFUSED)
        return name


class UploaderBoundImport:
    """Mixed into an ImportMixin admin (before it), with a confirm form derived from
    UploaderBoundConfirmForm: the previewed file is named to the browser by a value signed for
    the uploader, and a preview that cannot be confirmed leaves no file behind."""

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if initial.get("import_file_name"):
            initial["import_file_name"] = import_name_sign(
                initial["import_file_name"], request.user
            )
        return initial

    def get_confirm_form_kwargs(self, request, import_form=None):
        kwargs = super().get_confirm_form_kwargs(request, import_form)
        kwargs["uploader"] = request.user
        kwargs["tmp_storage_class"] = self.get_tmp_storage_class()
        return kwargs

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        form = context.get("form")
        if request.method == "POST" and "confirm_form" not in context and form is not None:
            upload = getattr(form, "cleaned_data", {}).get("import_file")
            name = getattr(upload, "tmp_storage_name", None)
            if name:
                self.get_tmp_storage_class()(name=name).remove()
        return response


class ReadOnlyAdmin(OrgScopedAdmin):
    """A screen that shows what the engine wrote: configurers and member care read it;
    nobody adds, edits or deletes (a retry is an action, see `change_role_actions`)."""

    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InOrganisationAdmin(OrgScopedAdmin):
    """A new row belongs to the configurer's organisation before it is validated (its
    `clean` compares organisations)."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        organisation = request.user.organisation

        class Bound(form):
            def _post_clean(self):
                if not self.instance.organisation_id and organisation is not None:
                    self.instance.organisation = organisation
                super()._post_clean()

        return Bound
