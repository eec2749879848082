"""Admin pages scoped to the user's organisation and gated by role.

Every model admin of the project derives from OrgScopedAdmin: its queryset is the user's
organisation only (another org's object answers 404), foreign-key choices are limited the
same way, and viewing/changing is decided by role, not by Django's per-model permissions.
"""

from django.contrib import admin

from .models import Role


class OrgScopedAdmin(admin.ModelAdmin):
    view_roles: tuple[str, ...] = (Role.CONFIGURER,)
    change_roles: tuple[str, ...] = (Role.CONFIGURER,)
    org_field = "organisation"

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
        if request.user.is_superuser and request.user.organisation_id is None:
            return qs
        return qs.filter(**{f"{self.org_field}_id": request.user.organisation_id})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related, "organisation") and request.user.organisation_id:
            kwargs["queryset"] = related._default_manager.filter(
                organisation_id=request.user.organisation_id
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related, "organisation") and request.user.organisation_id:
            kwargs["queryset"] = related._default_manager.filter(
                organisation_id=request.user.organisation_id
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.org_field == "organisation":
            excluded.append("organisation")
        return excluded

    def save_model(self, request, obj, form, change):
        if not change and self.org_field == "organisation" and not obj.organisation_id:
            obj.organisation = request.user.organisation
        super().save_model(request, obj, form, change)
