"""Promotions screens: promotions with their ordered actions (the rule is validated on save,
the error showing its position), coupon series, the awards ledger with the liability report
per milestone and target (CSV export), the message outbox and the milestones'
communications."""

from __future__ import annotations

import csv
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_date

from common.admin import OrgScopedAdmin, OrgScopedInline, ReadOnlyAdmin
from common.csv_safe import csv_cell
from milestones.models import Role, TargetGroup

from . import services
from .consumer import events_retry
from .doctor import ConditionDoctor, condition_warnings
from .models import (
    Award,
    Communication,
    ConsumeFailure,
    CouponSeries,
    Message,
    Promotion,
    PromotionAction,
    named_milestones,
)
from .selectors import LIABILITY_COLUMNS, liability_report
from .templating import PLACEHOLDERS


class PromotionForm(forms.ModelForm):
    class Meta:
        model = Promotion
        fields = ["name", "description", "activity", "start", "end", "is_active", "condition"]
        widgets = {"condition": forms.Textarea(attrs={"rows": 4, "cols": 100})}

    def __init__(self, *args, organisation_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organisation_id and not self.instance.organisation_id:
            # Promotion.clean() checks the rule's names against this organisation.
            self.instance.organisation_id = organisation_id


class ActionInlineForm(forms.ModelForm):
    class Meta:
        model = PromotionAction
        fields = ["position", "type", "basis", "points", "percent", "rounding", "expiry_days",
                  "points_type", "series", "channel", "subject", "template"]  # fmt: skip
        widgets = {"template": forms.Textarea(attrs={"rows": 2, "cols": 50})}


class PromotionActionInline(OrgScopedInline):
    """The coupon series to choose from are the organisation's (OrgScopedInline)."""

    model = PromotionAction
    form = ActionInlineForm
    extra = 0
    ordering = ["position"]

    def _role(self, request):
        user = request.user
        return user.is_superuser or (user.is_staff and user.has_role(Role.CONFIGURER))

    def has_view_permission(self, request, obj=None):
        return self._role(request)

    def has_change_permission(self, request, obj=None):
        return self._role(request)

    def has_add_permission(self, request, obj=None):
        return self._role(request)

    def has_delete_permission(self, request, obj=None):
        return self._role(request)


@admin.register(Promotion)
class PromotionAdmin(OrgScopedAdmin):
    form = PromotionForm
    inlines = [PromotionActionInline]
    list_display = [
        "name",
        "activity",
        "start",
        "end",
        "is_active",
        "milestones",
        "action_count",
    ]
    list_filter = ["activity", "is_active"]
    search_fields = ["name", "condition"]
    readonly_fields = ["placeholders_help"]
    ordering = ["id"]  # the model's, kept explicit: the annotated queryset drops Meta.ordering

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        organisation_id = request.user.organisation_id

        class Bound(form):
            def __init__(self, *args, **kw):
                kw.setdefault("organisation_id", organisation_id)
                super().__init__(*args, **kw)

        return Bound

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("organisation")
            .annotate(n_actions=Count("actions"))
        )

    @admin.display(description="Actions", ordering="n_actions")
    def action_count(self, obj):
        return obj.n_actions

    @admin.display(description="Milestones named")
    def milestones(self, obj, index: dict | None = None):
        """The milestones the condition names; `index` (name -> milestone, read once per
        page by get_list_display) saves the lookup per row."""
        try:
            names = obj.rule().target_names
        except Exception:  # noqa: BLE001 - an old condition that no longer compiles
            return "-"
        if not names:
            return "any"
        if index is None:
            groups, _ = named_milestones(obj.organisation_id, names)
        else:
            groups = sorted({index[n] for n in names if n in index}, key=lambda g: g.id)
        return ", ".join(g.name for g in groups) or "none found: " + ", ".join(sorted(names))

    def get_list_display(self, request):
        """The list, with two columns that read the organisation's milestones once per page
        (not once per promotion): the milestones a condition names, and the condition doctor."""
        doctors: dict = {}
        groups_by_name: dict = {}

        def milestones_of(organisation_id: int) -> dict:
            if organisation_id not in groups_by_name:
                index = {}
                groups = TargetGroup.objects.filter(organisation_id=organisation_id)
                for group in groups.prefetch_related("targets"):
                    index[group.name] = group
                    for target in group.targets.all():
                        index[target.name] = group
                groups_by_name[organisation_id] = index
            return groups_by_name[organisation_id]

        @admin.display(description="Milestones named")
        def milestones(obj):
            return self.milestones(obj, index=milestones_of(obj.organisation_id))

        @admin.display(description="Condition doctor")
        def warnings(obj):
            doctor = doctors.get(obj.organisation_id)
            if doctor is None:
                doctor = doctors[obj.organisation_id] = ConditionDoctor(obj.organisation)
            return "; ".join(w.message for w in doctor.warnings(obj.condition, obj.activity)) or "-"

        columns = [milestones if name == "milestones" else name for name in self.list_display]
        return [*columns, warnings]

    @admin.display(description="Message placeholders")
    def placeholders_help(self, obj=None):
        return "; ".join(f"{{{k}}}: {v}" for k, v in PLACEHOLDERS.items())

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        for warning in condition_warnings(
            organisation=request.user.organisation, condition=obj.condition, activity=obj.activity
        ):
            self.message_user(request, f"Condition: {warning.message}", messages.WARNING)

    def save_formset(self, request, form, formset, change):
        """Actions keep the order given, numbered 0, 1, ... (positions typed 5 and 7, or
        left with a gap by a deletion, become 0 and 1)."""
        if formset.model is not PromotionAction:
            return super().save_formset(request, form, formset, change)
        promotion = form.instance
        with transaction.atomic():
            edited = formset.save(commit=False)
            for obj in formset.deleted_objects:
                obj.delete()
            edited_ids = {a.pk for a in edited if a.pk}
            actions = [
                *promotion.actions.exclude(pk__in=edited_ids),
                *edited,
            ]
            actions.sort(key=lambda a: (a.position, a.pk or 10**12))
            promotion.actions.update(position=F("position") + 100_000)
            for index, action in enumerate(actions):
                action.promotion = promotion
                action.position = index
                action.save()
        formset.save_m2m()


class CouponSeriesForm(forms.ModelForm):
    codes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Codes to add, one per line.",
    )
    generate = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=services.MAX_CODES_PER_CALL,
        help_text="How many random codes to generate.",
    )

    class Meta:
        model = CouponSeries
        fields = ["code", "name", "description", "valid_days"]


@admin.register(CouponSeries)
class CouponSeriesAdmin(OrgScopedAdmin):
    form = CouponSeriesForm
    list_display = ["code", "name", "valid_days", "total", "available"]
    search_fields = ["code", "name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_total=Count("coupons"),
                n_free=Count("coupons", filter=Q(coupons__issued_at__isnull=True)),
            )
        )

    @admin.display(description="Codes", ordering="n_total")
    def total(self, obj):
        return obj.n_total

    @admin.display(description="Available", ordering="n_free")
    def available(self, obj):
        return obj.n_free

    def save_model(self, request, obj, form, change):
        if not obj.organisation_id:
            obj.organisation = request.user.organisation
        super().save_model(request, obj, form, change)
        codes = [c for c in (form.cleaned_data.get("codes") or "").splitlines() if c.strip()]
        try:
            if codes:
                services.coupons_add(series=obj, codes=codes)
            if form.cleaned_data.get("generate"):
                services.coupons_generate(series=obj, count=form.cleaned_data["generate"])
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))


@admin.register(Award)
class AwardAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    change_roles = ()
    list_display = ["id", "type", "status", "customer", "promotion", "target_group", "target",
                    "period", "points", "points_type", "coupon_code", "awarded_at"]  # fmt: skip
    list_filter = ["type", "status", "points_type"]
    list_select_related = ["customer", "promotion", "target_group", "target"]
    search_fields = ["customer__mobile", "customer__email", "coupon_code", "promotion__name"]
    raw_id_fields = ["customer", "event", "coupon"]
    date_hierarchy = "awarded_at"
    change_list_template = "admin/promotions/award/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        extra = [
            path(
                "liability/",
                self.admin_site.admin_view(self.liability_view),
                name="promotions_award_liability",
            )
        ]
        return extra + super().get_urls()

    def liability_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        org_id = request.user.organisation_id
        if org_id is None:
            messages.info(request, "The liability report is per organisation.")
            return redirect(reverse("admin:promotions_award_changelist"))
        start = _date(request.GET.get("start"))
        end = _date(request.GET.get("end"))
        promotion_id = _int(request.GET.get("promotion"))
        group_id = _int(request.GET.get("target_group"))
        rows = liability_report(
            organisation_id=org_id,
            start=start,
            end=end,
            promotion_id=promotion_id,
            target_group_id=group_id,
        )
        if request.GET.get("format") == "csv":
            response = HttpResponse(content_type="text/csv")
            response["Content-Disposition"] = 'attachment; filename="liability.csv"'
            writer = csv.writer(response)
            writer.writerow([label for _key, label in LIABILITY_COLUMNS])
            for row in rows:
                writer.writerow([csv_cell(row[key]) for key, _label in LIABILITY_COLUMNS])
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Liability per milestone and target",
            "opts": self.model._meta,
            "rows": rows,
            "columns": LIABILITY_COLUMNS,
            "start": start,
            "end": end,
            "promotion_id": promotion_id,
            "target_group_id": group_id,
            "promotions": Promotion.objects.filter(organisation_id=org_id).order_by("name"),
            "groups": TargetGroup.objects.filter(organisation_id=org_id).order_by("name"),
            "csv_query": _with_csv(request),
        }
        return TemplateResponse(request, "admin/promotions/liability.html", context)


def _date(value) -> date | None:
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _with_csv(request) -> str:
    query = request.GET.copy()
    query["format"] = "csv"
    return query.urlencode()


@admin.register(Message)
class MessageAdmin(OrgScopedAdmin):
    view_roles = (Role.CONFIGURER, Role.MEMBER_CARE)
    change_roles = ()
    list_display = ["id", "channel", "recipient", "status", "body", "created_at", "sent_at"]
    list_filter = ["channel", "status"]
    search_fields = ["recipient", "body"]
    raw_id_fields = ["customer", "award", "communication"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Communication)
class CommunicationAdmin(OrgScopedAdmin):
    list_display = ["target_group", "kind", "channel", "is_active"]
    list_filter = ["kind", "channel", "is_active"]
    list_select_related = ["target_group"]

    def save_model(self, request, obj, form, change):
        if not obj.organisation_id:
            obj.organisation = request.user.organisation
        super().save_model(request, obj, form, change)


@admin.register(ConsumeFailure)
class ConsumeFailureAdmin(ReadOnlyAdmin):
    """Target events whose consumption failed (the poison-pill policy): the reason, the
    attempts (automatic ones stop at ConsumeFailure.MAX_ATTEMPTS), and a retry action."""

    list_display = ["event", "event_type", "customer", "attempts", "error", "failed_at"]
    list_select_related = ["event__customer"]
    actions = ["retry"]
    change_role_actions = ("retry",)
    ordering = ["-failed_at"]

    @admin.display(description="Type")
    def event_type(self, obj):
        return obj.event.get_type_display()

    @admin.display(description="Customer")
    def customer(self, obj):
        return obj.event.customer

    @admin.action(description="Retry the selected events now")
    def retry(self, request, queryset):
        from .tasks import queue_consumption

        ids = events_retry(
            organisation_id=request.user.organisation_id,
            event_ids=list(queryset.values_list("event_id", flat=True)),
        )
        queue_consumption(ids)
        self.message_user(request, f"{len(ids)} event(s) queued for promotions again.")
