import json
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from common.admin import OrgScopedAdmin

from . import services
from .admin_tokens import TokenAdmin  # noqa: F401 - registers the API tokens screen
from .admin_views import TargetGroupScreens
from .models import (
    AuditEntry,
    CycleType,
    EventType,
    Heartbeat,
    Kpi,
    MilestoneStatus,
    Organisation,
    Role,
    Store,
    Target,
    TargetGroup,
    Template,
    UnifiedMode,
    User,
)
from .selectors import event_catalogue, status_q
from .services import event_types as event_type_services

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
        "default_country",
        "refuse_unknown_events",
    ]
    readonly_fields = ["slug"]

    def get_queryset(self, request):
        qs = Organisation.objects.all()
        if request.user.is_superuser and request.user.organisation_id is None:
            return qs
        return qs.filter(pk=request.user.organisation_id)

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change and "award_when_target_achieved" in form.changed_data:
            before = Organisation.objects.get(pk=obj.pk)
            for item in services.award_switch_affects(
                organisation=before, new_value=obj.award_when_target_achieved
            ):
                notes = "; ".join(w["message"] for w in item["warnings"]) or "no warning"
                self.message_user(
                    request,
                    f"The award switch changes what promotion {item['name']!r} does: {notes}",
                    messages.WARNING,
                )
        super().save_model(request, obj, form, change)

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


# --- The event catalogue --------------------------------------------------------------------


class EventTypeForm(forms.ModelForm):
    """Attribute names typed as a comma-separated list; the catalogue's rules
    (`services.event_types.event_type_check`) put each refusal at its field."""

    organisation = None  # set by EventTypeAdmin.get_form: the entry's or the user's

    attributes = forms.CharField(
        required=False,
        label="Attributes",
        help_text="The attribute names the event carries, separated by commas (price, sku).",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = EventType
        fields = ["kind", "name", "attributes"]
        help_texts = {
            "name": "Exactly as activities send it: names are case-sensitive (Review and review "
            "are two events).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["attributes"] = ", ".join(self.instance.attributes or [])

    def clean_attributes(self):
        try:
            return event_type_services.clean_attributes(self.cleaned_data.get("attributes"))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["attributes"]) from None

    def clean(self):
        data = super().clean()
        organisation = data.get("organisation") or self.organisation
        if organisation is None or self.errors:
            return data
        candidate = EventType(
            pk=self.instance.pk,
            organisation=organisation,
            kind=data.get("kind") or "",
            name=data.get("name") or "",
            attributes=data.get("attributes") or [],
            source=self.instance.source,
        )
        candidate._state.adding = self.instance._state.adding
        try:
            event_type_services.event_type_check(event_type=candidate)
        except ValidationError as exc:
            for field, messages_ in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages_)
        return data


@admin.register(EventType)
class EventTypeAdmin(OrgScopedAdmin):
    """The event catalogue: the behavioural and customer-level event names the organisation's
    targets can count, learned from received activities or added here. Every role that
    configures reads it; saving goes through the catalogue's services, as the API does."""

    form = EventTypeForm
    list_display = ["name", "kind", "attribute_list", "source", "last_seen_at"]
    list_filter = ["kind", "source"]
    search_fields = ["name"]
    readonly_fields = ["source", "first_seen_at", "last_seen_at"]

    def get_fields(self, request, obj=None):
        fields = ["kind", "name", "attributes"]
        if request.user.is_superuser and request.user.organisation_id is None:
            fields.insert(0, "organisation")
        return fields if obj is None else [*fields, *self.readonly_fields]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.organisation = obj.organisation if obj is not None else request.user.organisation
        return form

    def get_list_display(self, request):
        """A "Similar names" column: the other names of the kind that differ only in case
        (one read of the catalogue per page)."""
        similar_of: dict = {}

        @admin.display(description="Similar names (likely typos)")
        def similar(obj):
            if obj.organisation_id not in similar_of:
                similar_of[obj.organisation_id] = {
                    (r["kind"], r["name"]): r["similar"] for r in event_catalogue(obj.organisation)
                }
            names = similar_of[obj.organisation_id].get((obj.kind, obj.name)) or []
            return ", ".join(names) or "-"

        return [*super().get_list_display(request), similar]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organisation")

    @admin.display(description="Attributes")
    def attribute_list(self, obj):
        return ", ".join(obj.attributes or []) or "-"

    @staticmethod
    def _when(value):
        if value is None:
            return "never received"
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")

    @admin.display(description="Last seen", ordering="last_seen")
    def last_seen_at(self, obj):
        return self._when(obj.last_seen)

    @admin.display(description="First seen", ordering="first_seen")
    def first_seen_at(self, obj):
        return self._when(obj.first_seen)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                _saved, warnings = event_type_services.event_type_update(
                    event_type=obj,
                    data={k: data.get(k) for k in ("kind", "name", "attributes")},
                )
            else:
                saved, warnings = event_type_services.event_type_create(
                    organisation=data.get("organisation") or request.user.organisation,
                    kind=data.get("kind"),
                    name=data.get("name"),
                    attributes=data.get("attributes"),
                )
                obj.pk, obj.id = saved.pk, saved.pk
                obj._state.adding = False
        except ValidationError as exc:  # a concurrent save of the same name won the race
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
            return
        for warning in warnings:
            self.message_user(request, warning, messages.WARNING)

    def delete_model(self, request, obj):
        event_type_services.event_type_delete(event_type=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            event_type_services.event_type_delete(event_type=obj)


# --- Milestones (target groups): the home page and its filters ------------------------------


class TrackingTypeFilter(admin.SimpleListFilter):
    title = "tracking type"
    parameter_name = "tracking_type"

    def lookups(self, request, model_admin):
        return [("single", "Single target"), ("unified", "Unified targets")]

    def queryset(self, request, queryset):
        if self.value() == "single":
            return queryset.filter(unified_mode="")
        if self.value() == "unified":
            return queryset.exclude(unified_mode="")
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """Live / Upcoming / Ended, from the dates in the organisation's timezone."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            (s.value, s.label)
            for s in (MilestoneStatus.LIVE, MilestoneStatus.UPCOMING, MilestoneStatus.ENDED)
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value not in MilestoneStatus.values:
            return queryset
        if request.user.organisation is not None:
            return queryset.filter(status_q(value, request.user.organisation))
        # An operations account sees every organisation: each has its own "today".
        condition = Q(pk__in=[])
        for org in Organisation.objects.filter(target_groups__isnull=False).distinct():
            condition |= Q(organisation=org) & status_q(value, org)
        return queryset.filter(condition)


class ActivityFilter(admin.SimpleListFilter):
    title = "activity"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("1", "Active"), ("0", "Inactive")]

    def queryset(self, request, queryset):
        if self.value() in ("1", "0"):
            return queryset.filter(is_active=self.value() == "1")
        return queryset


class KpiFilter(admin.SimpleListFilter):
    """Milestones with at least one target on the KPI."""

    title = "KPI"
    parameter_name = "kpi"

    def lookups(self, request, model_admin):
        return Kpi.choices

    def queryset(self, request, queryset):
        if self.value() in Kpi.values:
            return queryset.filter(
                Exists(Target.objects.filter(target_group=OuterRef("pk"), kpi=self.value()))
            )
        return queryset


class DurationFilter(admin.ListFilter):
    """Milestones inside a duration: starting on or after X and ending on or before Y."""

    title = "duration"
    template = "admin/milestones/targetgroup/duration_filter.html"
    parameters = ("starts_after", "ends_before")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.dates: dict[str, date] = {}
        for name in self.parameters:
            if name in params:
                raw = params.pop(name)
                raw = raw[-1] if isinstance(raw, list) else raw
                self.used_parameters[name] = raw
                if raw:
                    try:
                        self.dates[name] = date.fromisoformat(raw)
                    except ValueError:
                        raise IncorrectLookupParameters(f"{name}: {raw!r} is not a date.")

    def has_output(self):
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        if "starts_after" in self.dates:
            queryset = queryset.filter(start__gte=self.dates["starts_after"])
        if "ends_before" in self.dates:
            queryset = queryset.filter(end__lte=self.dates["ends_before"])
        return queryset

    def choices(self, changelist):
        keep = [
            (k, v) for k, v in changelist.params.items() if k not in self.parameters and k != "e"
        ]
        yield {
            "hidden": keep,
            "starts_after": self.used_parameters.get("starts_after", ""),
            "ends_before": self.used_parameters.get("ends_before", ""),
            "active": bool(self.dates),
            "clear": changelist.get_query_string(remove=list(self.parameters)),
        }


STATUS_LABELS = dict(MilestoneStatus.choices)


@admin.register(TargetGroup)
class TargetGroupAdmin(TargetGroupScreens, OrgScopedAdmin):
    """Milestone home: search, filters, status chips, activate/deactivate, clone."""

    list_display = ["name_link", "status_chips", "tracking", "kpis", "duration", "cycles", "links"]
    list_display_links = None
    search_fields = ["name"]
    search_help_text = "Search by milestone name"
    list_filter = [TrackingTypeFilter, StatusFilter, ActivityFilter, DurationFilter, KpiFilter]
    list_select_related = ["organisation"]
    list_per_page = 50
    actions = ["activate", "deactivate", "clone", "save_as_template"]
    change_list_template = "admin/milestones/targetgroup/change_list.html"

    class Media:
        css = {"all": ["milestones/admin_config.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("targets")

    def has_delete_permission(self, request, obj=None):
        return False  # milestones are deactivated, never deleted (their history stays)

    # columns
    @admin.display(description="Milestone", ordering="name")
    def name_link(self, obj):
        return format_html('<a href="{}">{}</a>', self.url_for("view", obj), obj.name)

    @admin.display(description="Status")
    def status_chips(self, obj):
        status = obj.status()
        active = "active" if obj.is_active else "inactive"
        return format_html(
            '<span class="ms-chip ms-chip-{}">{}</span> <span class="ms-chip ms-chip-{}">{}</span>',
            status,
            STATUS_LABELS[status],
            active,
            active.title(),
        )

    @admin.display(description="Tracking")
    def tracking(self, obj):
        return UnifiedMode(obj.unified_mode).label

    @admin.display(description="KPI")
    def kpis(self, obj):
        labels = sorted({t.get_kpi_display() for t in obj.targets.all()})
        return ", ".join(labels) or "—"

    @admin.display(description="Duration", ordering="start")
    def duration(self, obj):
        return f"{obj.start:%d %b %Y} – {obj.end:%d %b %Y}"

    @admin.display(description="Cycles")
    def cycles(self, obj):
        if obj.cycle_type == CycleType.CUSTOM_PERIODS:
            return f"{obj.cycle_count or 0} custom cycles"
        if obj.cycle_type == CycleType.TILL_ACHIEVEMENT:
            return f"Till achievement, up to {obj.cycle_count}"
        frequency = (
            f"every {obj.cycle_days} days"
            if obj.cycle_frequency == "days"
            else obj.get_cycle_frequency_display()
        )
        kind = "cyclic" if obj.cycle_type == CycleType.CYCLIC else "fixed"
        return f"{obj.cycle_count or '?'} × {frequency} ({kind})"

    @admin.display(description="")
    def links(self, obj):
        items = [(self.url_for("view", obj), "View"), (self.url_for("change", obj), "Edit")]
        if obj.status() != MilestoneStatus.ENDED:
            items.append((self.url_for("clone", obj), "Clone"))
        return format_html_join(" · ", '<a href="{}">{}</a>', items)

    # actions: they call the services; refusals are shown as error messages
    @admin.action(description="Activate selected milestones", permissions=["change"])
    def activate(self, request, queryset):
        self.set_active(request, list(queryset), True)

    @admin.action(description="Deactivate selected milestones", permissions=["change"])
    def deactivate(self, request, queryset):
        self.set_active(request, list(queryset), False)

    @admin.action(description="Clone the selected milestone…", permissions=["add"])
    def clone(self, request, queryset):
        groups = list(queryset[:2])
        if len(groups) != 1:
            messages.error(request, "Select exactly one milestone to clone.")
            return None
        return redirect(self.url_for("clone", groups[0]))

    @admin.action(description="Save the selected milestone as a template…", permissions=["add"])
    def save_as_template(self, request, queryset):
        groups = list(queryset[:2])
        if len(groups) != 1:
            messages.error(request, "Select exactly one milestone to save as a template.")
            return None
        return redirect(self.url_for("save_as_template", groups[0]))


# --- Templates and the audit trail ----------------------------------------------------------


@admin.register(Template)
class TemplateAdmin(OrgScopedAdmin):
    """Built-in templates and the organisation's own; read-only (made by 'save as template')."""

    list_display = ["name", "kind", "description", "kpis", "use_link"]
    search_fields = ["name"]
    fields = ["name", "kind", "description", "summary", "use_link"]
    readonly_fields = fields
    actions = None

    class Media:
        css = {"all": ["milestones/admin_config.css"]}

    def get_queryset(self, request):
        qs = Template.objects.all()
        if request.user.is_superuser and request.user.organisation_id is None:
            return qs
        return qs.filter(
            Q(organisation__isnull=True) | Q(organisation_id=request.user.organisation_id)
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.organisation_id is None:
            return False  # built-in templates stay
        return super().has_delete_permission(request, obj)

    @admin.display(description="Kind")
    def kind(self, obj):
        return "Built-in" if obj.organisation_id is None else "Saved from a milestone"

    @admin.display(description="KPI")
    def kpis(self, obj):
        labels = {k: str(v) for k, v in Kpi.choices}
        targets = (obj.payload or {}).get("targets") or []
        return ", ".join(sorted({labels.get(t.get("kpi"), str(t.get("kpi"))) for t in targets}))

    @admin.display(description="")
    def use_link(self, obj):
        url = reverse("admin:milestones_targetgroup_add") + f"?template={obj.pk}"
        return format_html('<a class="button" href="{}">Use this template</a>', url)

    @admin.display(description="Pre-filled values")
    def summary(self, obj):
        return format_html(
            '<pre class="ms-mono">{}</pre>', json.dumps(obj.payload, indent=2, default=str)
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(OrgScopedAdmin):
    """Who changed which configuration, when, and what changed (read-only)."""

    list_display = ["created_at", "user", "action", "object_type", "object_name", "short_changes"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_name"]
    list_select_related = ["user"]
    fields = ["created_at", "user", "action", "object_type", "object_id", "object_name", "pretty"]
    readonly_fields = fields
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Changes")
    def short_changes(self, obj):
        text = json.dumps(obj.changes, default=str)
        return text if len(text) <= 120 else text[:117] + "…"

    @admin.display(description="Changes")
    def pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, default=str))
