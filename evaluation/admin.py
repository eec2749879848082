from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from common.admin import InOrganisationAdmin, ReadOnlyAdmin
from milestones.models import Role, TargetGroup

from .models import (
    Activity,
    ActivityStatus,
    EvaluationRun,
    NearMissRule,
    Progress,
    ReprocessRun,
    RunStatus,
    TargetEvent,
)
from .reprocess import reprocess_start
from .tasks import queue_tracking
from .tracking import activities_retry


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = [
        "external_id",
        "type",
        "customer",
        "occurred_at",
        "store_code",
        "status",
        "attempts",
        "failure",
        "received_at",
    ]
    list_filter = ["type", "status"]
    actions = ["retry_failed"]
    change_role_actions = ("retry_failed",)
    search_fields = [
        "external_id",
        "bill_number",
        "customer__mobile",
        "customer__email",
        "customer__external_id",
    ]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    date_hierarchy = "occurred_at"

    @admin.display(description="Why it failed")
    def failure(self, obj):
        return obj.error[:200] if obj.status == ActivityStatus.FAILED else ""

    @admin.action(description="Retry the selected failed activities")
    def retry_failed(self, request, queryset):
        """Failed activities (the poison-pill policy): back to pending and queued again;
        their automatic attempts start over."""
        ids = activities_retry(
            organisation_id=request.user.organisation_id,
            activity_ids=list(queryset.values_list("id", flat=True)),
        )
        queue_tracking(ids)
        self.message_user(request, f"{len(ids)} failed activity(ies) queued for tracking again.")


@admin.register(Progress)
class ProgressAdmin(ReadOnlyAdmin):
    list_display = [
        "customer",
        "target",
        "cycle_ordinal",
        "achieved",
        "target_value",
        "achieved_at",
    ]
    list_filter = ["target__target_group"]
    search_fields = ["customer__mobile", "customer__email", "customer__external_id", "target__name"]
    list_select_related = ["customer", "target"]
    raw_id_fields = ["customer", "target", "period"]


@admin.register(TargetEvent)
class TargetEventAdmin(ReadOnlyAdmin):
    list_display = [
        "type",
        "customer",
        "target_group",
        "target",
        "period_name",
        "achieved",
        "defined",
        "is_target_achieved_event",
        "created_at",
        "consumed_at",
    ]
    list_filter = ["type", "is_target_achieved_event"]
    search_fields = ["customer__mobile", "customer__email", "period_name", "target__name"]
    list_select_related = ["customer", "target_group", "target"]
    raw_id_fields = ["customer", "target_group", "target", "sub_target"]


def _progress_bar(run) -> str:
    percent = (
        int(100 * run.processed / run.total)
        if run.total
        else (100 if run.status == RunStatus.DONE else 0)
    )
    return format_html(
        '<progress max="100" value="{}" style="width:12em"></progress> {} / {} ({})',
        percent,
        run.processed,
        run.total,
        run.status,
    )


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    list_display = [
        "period",
        "target_group",
        "progress",
        "events_written",
        "planned_at",
        "finished_at",
    ]
    list_filter = ["status"]
    list_select_related = ["period", "target_group"]

    @admin.display(description="Progress")
    def progress(self, obj):
        return _progress_bar(obj)


@admin.register(ReprocessRun)
class ReprocessRunAdmin(ReadOnlyAdmin):
    view_roles = (Role.CONFIGURER,)
    list_display = ["target_group", "progress", "created_at", "finished_at", "error"]
    list_filter = ["status"]
    list_select_related = ["target_group"]

    @admin.display(description="Progress (customers)")
    def progress(self, obj):
        return _progress_bar(obj)


@admin.action(description="Re-process stored activities for the selected milestones")
def reprocess_selected(modeladmin, request, queryset):
    for group in queryset.select_related("organisation"):
        if not group.is_active:
            modeladmin.message_user(
                request,
                f"{group.name}: an inactive milestone tracks nothing; activate it first.",
                messages.ERROR,
            )
            continue
        run = reprocess_start(target_group=group)
        url = reverse("care:run-progress", args=["reprocess", run.id])
        modeladmin.message_user(
            request,
            format_html(
                '{}: re-processing {} customer(s) — <a href="{}">follow its progress</a>.',
                group.name,
                run.total,
                url,
            ),
        )


def install_target_group_actions() -> None:
    """The milestone home gets the re-process action without milestones importing evaluation."""
    group_admin = admin.site._registry.get(TargetGroup)
    if group_admin is not None and reprocess_selected not in (group_admin.actions or []):
        group_admin.actions = [*(group_admin.actions or []), reprocess_selected]


install_target_group_actions()


@admin.register(NearMissRule)
class NearMissRuleAdmin(InOrganisationAdmin):
    """Targets' near-miss rules: who is close to the target near the cycle's end."""

    list_display = ["target", "within_percent", "days_left", "created_at"]
    list_select_related = ["target__target_group"]
    fields = ["target", "within_percent", "days_left"]
