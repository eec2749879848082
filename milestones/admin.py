from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .admin_base import OrgScopedAdmin
from .models import Heartbeat, Organisation, Role, Store, User

admin.site.site_header = "Milestones"
admin.site.site_title = "Milestones"
admin.site.index_title = "Milestones administration"


@admin.register(Organisation)
class OrganisationAdmin(OrgScopedAdmin):
    """A configurer edits their own organisation's settings (the EMF configuration)."""

    list_display = [
        "name",
        "slug",
        "timezone",
        "award_when_target_achieved",
        "allow_return_on_target",
        "offset_days",
    ]
    fields = [
        "name",
        "slug",
        "timezone",
        "award_when_target_achieved",
        "allow_return_on_target",
        "offset_days",
        "auto_create_customers",
    ]
    readonly_fields = ["slug"]

    def get_queryset(self, request):
        qs = Organisation.objects.all()
        if request.user.is_superuser and request.user.organisation_id is None:
            return qs
        return qs.filter(pk=request.user.organisation_id)

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else self.readonly_fields

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_exclude(self, request, obj=None):
        return []


@admin.register(Store)
class StoreAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    list_display = ["code", "name", "zone", "concept", "is_till"]
    list_filter = ["is_till", "zone", "concept"]
    search_fields = ["code", "name"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "organisation", "role", "is_staff", "is_active"]
    list_filter = ["organisation", "role", "is_active"]
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Organisation", {"fields": ("organisation", "role")}),
    )

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_seen", "runs"]

    def has_module_permission(self, request):
        return request.user.is_superuser
