"""Pages for people: member care (find a customer, their milestones as a timeline), milestone
insights, and live progress of long work (custom-list imports, evaluation and reprocessing runs).

Thin views: they check the role, load one object of the user's organisation (another
organisation's answers 404), call one selector or service and render. Every page here reads;
the only write is the custom-list upload, which goes through `import_job_create`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from common.numbers import grouped
from common.permissions import CARE_ROLES, CONFIG_ROLES, role_required
from enrolment.identifiers import IDENTIFIER_TYPES
from enrolment.importing.jobs import import_job_create
from enrolment.models import Customer, ImportJob
from enrolment.selectors import customers_find
from evaluation.models import EvaluationRun, ReprocessRun
from evaluation.selectors import customer_milestones
from milestones.models import CycleType, EnrolmentMode, Entity, Kpi, Role, TargetGroup, UnifiedMode
from promotions.models import ActionType, AwardStatus

from .insights import milestone_insights

EVALUATION_TYPES = {
    CycleType.FIXED_CALENDAR: "Fixed",
    CycleType.CUSTOM_PERIODS: "Fixed",
    CycleType.CYCLIC: "Cyclic",
    CycleType.TILL_ACHIEVEMENT: "Period agnostic",
}
STATUS_LABELS = {"completed": "Completed", "ongoing": "Ongoing", "upcoming": "Upcoming"}
SEARCH_KINDS = {"any": "Any identifier", "mobile": "Mobile", "email": "Email",
                "external_id": "External id"}  # fmt: skip

# Runs that show a progress bar: kind -> (model, status URL name, unit, summary fields).
RUN_KINDS = {
    "evaluation": (EvaluationRun, "evaluation-run", "customers",
                   [("period", "Cycle"), ("events_written", "Events written")]),
    "reprocess": (ReprocessRun, "reprocess-run", "customers", [("error", "Error")]),
}  # fmt: skip
IMPORT_SUMMARY = [
    ("total", "Rows in the file"),
    ("newly_enrolled", "Customers enrolled"),
    ("created_customers", "Customers created"),
    ("values_written", "Target values written"),
    ("values_cleared", "Target values cleared"),
    ("skipped_rows", "Rows skipped"),
    ("error_count", "Problems found"),
    ("notifications", "Enrolment notifications"),
]


def _page(request, template: str, **context) -> TemplateResponse:
    """Render inside the admin's frame (header, user tools) without its per-app sidebar."""
    site = admin.site
    user = request.user
    base = {
        "site_header": site.site_header,
        "site_title": site.site_title,
        "site_url": None,
        "has_permission": user.is_active and user.is_staff,
        "is_nav_sidebar_enabled": False,
        "is_popup": False,
        "is_configurer": user.has_role(Role.CONFIGURER),
    }
    return TemplateResponse(request, template, {**base, **context})


# --- formatting helpers (what people read) -------------------------------------------------


def number(value) -> str:
    """10000.0000 -> '10,000'; 2500.5 -> '2,500.5' (common.numbers.grouped)."""
    return grouped(value)


def percent(achieved, target) -> Decimal:
    achieved, target = Decimal(achieved or 0), Decimal(target or 0)
    if target <= 0:
        return Decimal(100) if achieved >= target else Decimal(0)
    return (achieved * 100 / target).quantize(Decimal("0.1"))


def day(value) -> str:
    return f"{value:%d %b %Y}" if value else ""


def moment(value: datetime | None, tz) -> str:
    return f"{value.astimezone(tz):%d %b %Y, %H:%M}" if value else ""


def _action_view(action) -> dict:
    """An action of the awards ledger as {text, status}: '50 regular points — Gold bonus'.

    The ledger's dicts (promotions.selectors.actions_for_events) carry type, promotion,
    status, points, points_type, coupon_code, message and error.
    """
    kind = action["type"]
    status = action.get("status") or AwardStatus.DONE
    if kind == ActionType.AWARD_POINTS:
        points = number(action["points"]) if action.get("points") is not None else "—"
        text = f"{points} {action.get('points_type') or ''} points".replace("  ", " ")
    elif kind == ActionType.ISSUE_COUPON:
        text = f"Coupon {action.get('coupon_code') or ''}".strip()
    else:  # send_message
        message = str(action.get("message") or "")
        text = "Message" + (
            f": {message[:80]}{'…' if len(message) > 80 else ''}" if message else ""
        )
    if action.get("promotion"):
        text += f" — {action['promotion']}"
    if status == AwardStatus.FAILED:
        text += f" (failed{': ' + str(action['error']) if action.get('error') else ''})"
    elif status == AwardStatus.SKIPPED:
        text += " (skipped: nothing to give)"
    return {"text": text, "status": status}


def _cycle_view(cycle: dict, tz) -> dict:
    share = percent(cycle["achieved"], cycle["target"])
    status = cycle["status"]
    if cycle["is_achieved"]:
        result, result_class = "Achieved", "achieved"
    elif status == "completed":
        result, result_class = "Not achieved", "missed"
    elif status == "ongoing":
        result, result_class = "In progress", "progress"
    else:
        result, result_class = "Not started", "upcoming"
    sub_actions = {id(a) for s in cycle["sub_targets"] for a in s["actions"]}
    subs = [
        {
            "name": s["name"],
            "criteria": s["criteria"],
            "threshold": number(s["value"]),
            "reached": bool(s["achieved_at"]),
            "reached_on": day(s["achieved_at"].astimezone(tz).date()) if s["achieved_at"] else "",
            "reached_at": moment(s["achieved_at"], tz),
            "actions": [_action_view(a) for a in s["actions"]],
        }
        for s in cycle["sub_targets"]
    ]
    return {
        "ordinal": cycle["ordinal"],
        "name": cycle["name"],
        "range": f"{day(cycle['start'])} – {day(cycle['end']) if cycle['end'] else 'open'}",
        "status": status,
        "status_label": STATUS_LABELS.get(status, status),
        "result": result,
        "result_class": result_class,
        "achieved": number(cycle["achieved"]),
        "target": number(cycle["target"]),
        "percent": share,
        "bar": min(share, Decimal(100)),
        "achieved_on": moment(cycle["achieved_at"], tz),
        "sub_targets": subs,
        "subs_reached": sum(1 for s in subs if s["reached"]),
        # The cycle's other actions (achievement, end of cycle); sub-targets list their own.
        "actions": [_action_view(a) for a in cycle["actions"] if id(a) not in sub_actions],
    }


def _grouped_by_milestone(panes: list[dict]) -> list[dict]:
    """The panes in their order, each milestone's together (where its first target is)."""
    first = {}
    for index, pane in enumerate(panes):
        first.setdefault(pane["milestone"], index)
    return sorted(panes, key=lambda pane: first[pane["milestone"]])


def _pane_view(entry: dict) -> dict:
    """A target's pane on the left: name, duration and number of cycles."""
    cycle_type = entry["cycle_type"]
    per_customer = cycle_type in (CycleType.CYCLIC, CycleType.TILL_ACHIEVEMENT)
    count = len(entry["cycles"])
    planned = entry.get("cycle_count") or count
    if cycle_type == CycleType.TILL_ACHIEVEMENT:
        cycles_label = f"{count} of up to {planned} cycles"
    elif per_customer and not count:
        cycles_label = f"{planned} cycles, not started"
    else:
        cycles_label = f"{count} cycle{'s' if count != 1 else ''}"
    return {
        "id": entry["target_id"],
        "name": entry["target"],
        "milestone": entry["target_group"],
        "start": day(entry["start"]),
        "end": day(entry["end"]),
        "cycles_label": cycles_label,
        "per_customer": per_customer,
    }


def _target_view(entry: dict, tz) -> dict:
    """The right-hand side for one target: the information pane and the timeline."""
    cycle_type = entry["cycle_type"]
    unified = entry.get("unified_mode") or ""
    entity = entry.get("entity")
    return {
        **_pane_view(entry),
        "group": entry["target_group"],
        "group_id": entry["target_group_id"],
        "cycles": [_cycle_view(c, tz) for c in entry["cycles"]],
        "tracker": UnifiedMode(unified).label if unified else "Single target",
        "evaluation": EVALUATION_TYPES.get(cycle_type, cycle_type),
        "cycle_type_label": CycleType(cycle_type).label if cycle_type in CycleType.values else "",
        "kpi": Kpi(entry["kpi"]).label if entry["kpi"] in Kpi.values else entry["kpi"],
        "entity": Entity(entity).label if entity in Entity.values else "",
    }


# --- member care --------------------------------------------------------------------------


def _find_customers(*, organisation, query: str, kind: str) -> list[Customer]:
    """Exact match on the stored form of the mobile, email or external id (one query):
    enrolment's selector, which reads a mobile in the organisation's country."""
    return customers_find(organisation=organisation, query=query, kind=kind)


@require_GET
@role_required(*CARE_ROLES)
def customer_search(request):
    query = (request.GET.get("q") or "").strip()
    kind = request.GET.get("by") or "any"
    if kind not in SEARCH_KINDS:
        kind = "any"
    results = None
    if query:
        results = _find_customers(organisation=request.user.organisation, query=query, kind=kind)
        if len(results) == 1:
            return redirect("care:customer-milestones", customer_id=results[0].pk)
    return _page(
        request,
        "membercare/search.html",
        title="Find a customer",
        query=query,
        kind=kind,
        kinds=SEARCH_KINDS.items(),
        results=results,
    )


def _customer_of(request, customer_id: int) -> Customer:
    return get_object_or_404(
        Customer.objects.select_related("organisation"),
        pk=customer_id,
        organisation_id=request.user.organisation_id,
    )


@require_GET
@role_required(*CARE_ROLES)
def customer_milestones_page(request, customer_id: int):
    """Panes for every target the customer is in; the selected one's information and timeline
    (`?target=`, default the first). Another pane's details come from `customer_target_detail`
    when clicked, so the page draws one timeline, not every target's."""
    customer = _customer_of(request, customer_id)
    entries = customer_milestones(customer=customer)
    try:
        wanted = int(request.GET.get("target") or 0)
    except ValueError:
        wanted = 0
    chosen = next((e for e in entries if e["target_id"] == wanted), entries[0] if entries else None)
    tz = customer.organisation.tzinfo
    return _page(
        request,
        "membercare/customer_milestones.html",
        title=f"Milestones of {customer}",
        customer=customer,
        targets=_grouped_by_milestone([_pane_view(e) for e in entries]),
        selected=_target_view(chosen, tz) if chosen else None,
        timezone_name=customer.organisation.timezone,
    )


@require_GET
@role_required(*CARE_ROLES)
def customer_target_detail(request, customer_id: int, target_id: int):
    """One target's information pane and timeline, as an HTML fragment for the page's panes."""
    customer = _customer_of(request, customer_id)
    entry = next(
        (e for e in customer_milestones(customer=customer) if e["target_id"] == target_id), None
    )
    if entry is None:
        raise Http404("The customer is not in this target.")
    return TemplateResponse(
        request,
        "membercare/_target_detail.html",
        {"t": _target_view(entry, customer.organisation.tzinfo)},
    )


# --- milestone insights -------------------------------------------------------------------


def _group_of(request, group_id: int) -> TargetGroup:
    return get_object_or_404(
        TargetGroup.objects.select_related("organisation"),
        pk=group_id,
        organisation_id=request.user.organisation_id,
    )


@require_GET
@role_required(*CONFIG_ROLES)
def milestone_insights_page(request, group_id: int):
    group = _group_of(request, group_id)
    try:
        cycle = int(request.GET["cycle"]) if request.GET.get("cycle") else None
    except ValueError:
        cycle = None
    data = milestone_insights(target_group=group, cycle=cycle)
    return _page(
        request,
        "insights/milestone.html",
        title=f"Insights: {group.name}",
        group=group,
        data=data,
        admin_view_url=reverse("admin:milestones_targetgroup_view", args=[group.pk]),
        can_upload=group.enrolment_mode == EnrolmentMode.CUSTOM_LIST,
    )


# --- long work: imports and runs, with a live progress bar --------------------------------


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="An identifier column and one column per cycle.")  # fmt: skip
    identifier_type = forms.ChoiceField(
        choices=[(k, k.replace("_", " ")) for k in IDENTIFIER_TYPES], initial="mobile"
    )
    send_trigger = forms.BooleanField(required=False, initial=True, label="Send enrolment trigger")
    skip_bad_rows = forms.BooleanField(
        required=False, help_text="Import the good rows and leave out the bad ones."
    )


@require_http_methods(["GET", "POST"])
@role_required(*CONFIG_ROLES)
def milestone_imports_page(request, group_id: int):
    """Upload a custom list for a milestone; then follow its progress on the import page."""
    group = _group_of(request, group_id)
    can_upload = group.enrolment_mode == EnrolmentMode.CUSTOM_LIST
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and can_upload and form.is_valid():
        try:
            job = import_job_create(
                target_group=group,
                file=form.cleaned_data["file"],
                identifier_type=form.cleaned_data["identifier_type"],
                send_trigger=form.cleaned_data["send_trigger"],
                skip_bad_rows=form.cleaned_data["skip_bad_rows"],
                user=request.user,
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            return redirect("care:import-progress", import_id=job.pk)
    recent = list(ImportJob.objects.filter(target_group=group).order_by("-created_at", "-id")[:10])
    return _page(
        request,
        "membercare/imports.html",
        title=f"Custom list uploads: {group.name}",
        group=group,
        form=form,
        can_upload=can_upload,
        recent=recent,
        sample_url=f"/api/v1/target-groups/{group.pk}/target-values/sample/",
    )


@require_GET
@role_required(*CONFIG_ROLES)
def import_progress_page(request, import_id: int):
    job = get_object_or_404(
        ImportJob.objects.select_related("target_group"),
        pk=import_id,
        organisation_id=request.user.organisation_id,
    )
    return _page(
        request,
        "membercare/progress.html",
        title=f"Custom list import #{job.pk}",
        heading=f"Custom list import #{job.pk} — {job.original_name or 'upload'}",
        group=job.target_group,
        status_url=reverse("import-detail", args=[job.pk]),
        unit="rows",
        summary=[{"field": f, "label": label} for f, label in IMPORT_SUMMARY],
        show_errors=True,
        initial={"status": job.status, "total": job.total, "processed": job.processed},
    )


@require_GET
@role_required(*CONFIG_ROLES)
def run_progress_page(request, kind: str, run_id: int):
    """A reprocessing or cycle-end evaluation run, polling its status in the API."""
    if kind not in RUN_KINDS:
        raise Http404("Unknown kind of run.")
    model, url_name, unit, summary = RUN_KINDS[kind]
    run = get_object_or_404(
        model.objects.select_related("target_group"),
        pk=run_id,
        organisation_id=request.user.organisation_id,
    )
    label = "Cycle-end evaluation" if kind == "evaluation" else "Reprocessing"
    return _page(
        request,
        "membercare/progress.html",
        title=f"{label} #{run.pk}",
        heading=f"{label} #{run.pk} — {run.target_group.name}",
        group=run.target_group,
        status_url=reverse(url_name, args=[run.pk]),
        unit=unit,
        summary=[{"field": f, "label": text} for f, text in [("total", f"Total {unit}"), *summary]],
        show_errors=False,
        initial={"status": run.status, "total": run.total, "processed": run.processed},
    )
