"""Pages for people: member care (find a customer, their milestones as a timeline), milestone
insights, and live progress of long work (custom-list imports, evaluation and reprocessing runs).

Thin views: they check the role, load one object of the user's organisation (another
organisation's answers 404), call one selector or service and render. Every page here reads;
the only writes are a custom-list upload and its re-run without the bad rows, both through
`import_job_create` (enrolment.importing).
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.base import ContentFile
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from common.admin import ImportTempStorage, import_name_sign, import_name_unsign
from common.numbers import grouped
from common.permissions import CARE_ROLES, CONFIG_ROLES, role_required
from common.replica import reads_from_replica
from enrolment.identifiers import IDENTIFIER_TYPES
from enrolment.importing.jobs import import_job_create, import_job_rerun, rerun_refusal
from enrolment.importing.preview import (
    IDENTIFIER,
    IDENTIFIER_LABELS,
    FileSample,
    ImportPreview,
    PreviewRow,
    cycle_choices,
    file_sample,
    guess_mapping,
    identifier_choices,
    import_preview,
    job_problems,
    target_names,
    targets_label,
)
from enrolment.importing.spec import (
    DO_NOT_IMPORT,
    FileRefused,
    RowError,
    max_bytes,
    msg_too_big,
    resolve_header,
)
from enrolment.models import Customer, ImportJob, ImportStatus
from enrolment.selectors import customers_find
from evaluation.models import EvaluationRun, ReprocessRun
from evaluation.selectors import customer_milestones
from milestones.models import (
    CycleType,
    EnrolmentMode,
    Entity,
    Kpi,
    Role,
    TargetGroup,
    TargetValueMode,
    UnifiedMode,
)
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
    elif status == AwardStatus.CAPPED:
        text += f" (not given, capped{': ' + str(action['error']) if action.get('error') else ''})"
    return {"text": text, "status": status}


def pace_text(cycle: dict) -> str:
    """An ongoing cycle's pace in words: "Needs 2,300 more in 9 days (256 a day; 180 a day so
    far): behind pace." Empty outside an ongoing, unreached cycle with an end."""
    remaining, days_left = cycle.get("remaining"), cycle.get("days_left")
    if cycle.get("status") != "ongoing" or not remaining or not days_left:
        return ""
    days = "1 day" if days_left == 1 else f"{days_left} days"
    verdict = "on track" if cycle.get("on_track") else "behind pace"
    tenth = Decimal("0.1")
    needed = Decimal(cycle["required_daily_pace"]).quantize(tenth, ROUND_CEILING)
    so_far = Decimal(cycle["pace_so_far"]).quantize(tenth, ROUND_HALF_UP)
    return (
        f"Needs {number(remaining)} more in {days} ({number(needed)} a day; "
        f"{number(so_far)} a day so far): {verdict}."
    )


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
        "pace": pace_text(cycle),
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


@reads_from_replica
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


@reads_from_replica
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


@reads_from_replica
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


@reads_from_replica
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


# --- custom-list uploads: upload, map fields, preview, confirm; then the import's progress -----
#
# The steps of the reference ("Upload the CSV file", "Unique identifier", "Map fields",
# "Confirm & upload"). The file waits between the steps in the import storage of the admin's
# imports (common.admin.ImportTempStorage), named to the browser by a value signed for the
# uploader and their organisation (import_name_sign): another person, another organisation or
# a name in the temporary folder is refused. Nothing is written before "Confirm", which hands
# the file to the one import service (`import_job_create`).

UPLOAD_GONE = "This upload is not yours or has expired: upload the file again."
NO_IDENTIFIER = "\x00no identifier column"  # no header can hold a NUL (reader.MSG_NUL)


def _rows_text(count: int) -> str:
    return f"{grouped(count)} row{'' if count == 1 else 's'}"


def _plain_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _refusal_text(error: RowError) -> str:
    if error.row == 1:
        return f"The header (row 1): {error.message}"
    if error.row > 1:
        return f"Row {error.row}: {error.message}"
    return error.message


class UploadForm(forms.Form):
    """The one-step upload (file and options, no mapping, no preview), kept for scripts that
    post to the upload page; the page's own form goes through the steps (ListFileForm)."""

    file = forms.FileField(label="CSV file", help_text="An identifier column and one column per cycle.")  # fmt: skip
    identifier_type = forms.ChoiceField(
        choices=[(k, k.replace("_", " ")) for k in IDENTIFIER_TYPES], initial="mobile"
    )
    send_trigger = forms.BooleanField(required=False, initial=True, label="Send enrolment trigger")
    skip_bad_rows = forms.BooleanField(
        required=False, help_text="Import the good rows and leave out the bad ones."
    )


class ListFileForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Comma-separated (CSV UTF-8). You map its columns in the next step.",
    )


class MappingForm(forms.Form):
    """The "Unique identifier" and "Map fields" step: one select per column of the file (the
    customer identifier, a cycle of the milestone's targets, or "Do not import"). The same
    fields travel hidden in the preview's confirm form, so what is confirmed is what was
    previewed, checked again here."""

    upload = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(widget=forms.HiddenInput, required=False, max_length=255)
    identifier_type = forms.ChoiceField(
        label="Unique identifier",
        choices=identifier_choices(),
        help_text="What the identifier column holds; mobiles are read in the organisation's country.",
    )
    create_customers = forms.BooleanField(
        required=False,
        label="Create new customers",
        help_text="Customers of the list who are not in the organisation yet are created. "
        "Unticked, they are reported as problems instead.",
    )
    send_trigger = forms.BooleanField(
        required=False,
        label="Send enrolment trigger",
        help_text="Customers newly enrolled in the milestone are notified.",
    )

    def __init__(self, *args, group: TargetGroup, sample: FileSample, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group
        self.header = sample.raw_header
        cycles = cycle_choices(group)
        choices: list = [(IDENTIFIER, "Customer identifier")]
        if cycles:
            choices.append((targets_label(group), [(c.key, c.label) for c in cycles]))
        choices.append((DO_NOT_IMPORT, "Do not import"))
        self.columns = []
        for index, name in enumerate(sample.header):
            key = f"column_{index}"
            self.fields[key] = forms.ChoiceField(
                label=name or f"Column {index + 1} (no name)", choices=choices
            )
            examples = [
                row[index] for row in sample.rows if index < len(row) and row[index].strip()
            ]
            self.columns.append({"key": key, "name": name, "examples": examples})

    @classmethod
    def initial_data(cls, *, group, sample: FileSample, upload: str, name: str) -> dict:
        """The form's values before the configurer chose: guessed from the file."""
        kind, mapping = guess_mapping(group=group, header=sample.header, rows=sample.rows)
        data = {"upload": upload, "name": name, "identifier_type": kind, "create_customers": "on"}
        if group.send_enrolment_trigger:
            data["send_trigger"] = "on"
        for index, column in enumerate(sample.header):
            data[f"column_{index}"] = mapping.get(column, DO_NOT_IMPORT)
        return data

    def column_fields(self):
        return [(column, self[column["key"]]) for column in self.columns]

    def clean(self):
        data = super().clean()
        # every select answered (add_error below takes a field out of cleaned_data)
        complete = "identifier_type" in data and all(c["key"] in data for c in self.columns)
        chosen = [c for c in self.columns if data.get(c["key"]) == IDENTIFIER]
        if complete:
            self._check_header(dict(data), chosen)
        if not chosen and complete:
            self.add_error(
                None,
                "No column is mapped to the customer identifier: choose “Customer identifier” "
                "for the column that holds it.",
            )
        if len(chosen) > 1:
            names = _plain_list([f"“{c['name']}”" for c in chosen])
            for column in chosen:
                self.add_error(
                    column["key"],
                    f"Only one column identifies the customer ({names} are chosen): map the "
                    "others to a cycle or to “Do not import”.",
                )
        return data

    def _check_header(self, data: dict, chosen: list[dict]) -> None:
        """The import's own header rules (two columns on one cycle, a repeated column name,
        a file that is not comma-separated), reported with the problems above: all at once."""
        identifier = chosen[0]["name"] if chosen else NO_IDENTIFIER
        mapping = {
            c["name"]: DO_NOT_IMPORT if data[c["key"]] == IDENTIFIER else data[c["key"]]
            for c in self.columns
            if not (chosen and c is chosen[0])
        }
        try:
            resolve_header(
                group=self.group,
                header=self.header,
                identifier_type=data["identifier_type"],
                identifier_column=identifier,
                mapping=mapping,
            )
        except FileRefused as refused:
            self.add_refusals([e for e in refused.errors if e.column != NO_IDENTIFIER])

    def options(self) -> dict:
        """import_preview's and import_job_create's arguments."""
        data = self.cleaned_data
        identifier = next(c["name"] for c in self.columns if data[c["key"]] == IDENTIFIER)
        return {
            "identifier_type": data["identifier_type"],
            "identifier_column": identifier,
            "mapping": {
                c["name"]: data[c["key"]] for c in self.columns if data[c["key"]] != IDENTIFIER
            },
            "create_customers": data["create_customers"],
        }

    def add_refusals(self, errors: list[RowError]) -> None:
        """The import's refusal of the header, each problem at the column it names."""
        for error in errors:
            keys = [c["key"] for c in self.columns if error.column and c["name"] == error.column]
            for key in keys or [None]:
                self.add_error(key, error.message if key else _refusal_text(error))

    def summary(self) -> list[dict]:
        """Every error, for the summary at the top: its text and the input it belongs to."""
        out = [{"text": str(e), "anchor": "mc-mapping"} for e in self.non_field_errors()]
        for name, errors in self.errors.items():
            if name == "__all__":
                continue
            label = self.fields[name].label if name in self.fields else name
            for error in errors:
                out.append({"text": f"{label}: {error}", "anchor": self[name].id_for_label})
        return out


def _can_upload(group: TargetGroup) -> bool:
    return group.enrolment_mode == EnrolmentMode.CUSTOM_LIST


def _stored_upload(request, token: str | None) -> tuple[ImportTempStorage, bytes]:
    """The waiting file a signed value names, if it is this user's, in this organisation,
    and still there; ValidationError (UPLOAD_GONE) otherwise."""
    name = import_name_unsign(token or "", request.user)
    try:
        stored = ImportTempStorage(name=name, read_mode="rb")
    except SuspiciousFileOperation:
        raise ValidationError(UPLOAD_GONE) from None
    if not stored.exists():
        raise ValidationError(UPLOAD_GONE)
    data = stored.read()
    return stored, data if isinstance(data, bytes) else data.encode()


def _upload_gone(request, group: TargetGroup, message: str = UPLOAD_GONE):
    messages.error(request, message)
    url = reverse("care:imports", args=[group.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _import_row(job: ImportJob) -> dict:
    return {
        "job": job,
        "done": grouped(job.processed),
        "total": grouped(job.total),
        "enrolled": grouped(job.newly_enrolled),
        "problems": grouped(job.error_count),
    }


def _upload_page(request, group: TargetGroup, form: forms.Form) -> TemplateResponse:
    recent = ImportJob.objects.filter(target_group=group).order_by("-created_at", "-id")[:10]
    return _page(
        request,
        "membercare/imports.html",
        title=f"Upload targets: {group.name}",
        group=group,
        form=form,
        has_errors=form.is_bound and bool(form.errors),
        can_upload=_can_upload(group),
        per_customer=group.target_value_mode == TargetValueMode.PER_CUSTOMER,
        recent=[_import_row(job) for job in recent],
        view_url=reverse("admin:milestones_targetgroup_view", args=[group.pk]),
        sample_url=f"/api/v1/target-groups/{group.pk}/target-values/sample/",
        max_mb=max_bytes() // (1024 * 1024),
    )


@require_http_methods(["GET", "POST"])
@role_required(*CONFIG_ROLES)
def milestone_imports_page(request, group_id: int):
    """Upload targets: the first step (choose the file) and the milestone's recent uploads.
    A POST here is the one-step upload (UploadForm), kept for scripts."""
    group = _group_of(request, group_id)
    if request.method == "GET":
        return _upload_page(request, group, ListFileForm())
    form = UploadForm(request.POST, request.FILES)
    if _can_upload(group) and form.is_valid():
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
            for field, errors in exc.message_dict.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            return redirect("care:import-progress", import_id=job.pk)
    shown = ListFileForm(request.POST, request.FILES)
    shown.is_valid()
    for field, errors in form.errors.items():
        for message in errors:
            shown.add_error("file" if field == "file" else None, message)
    return _upload_page(request, group, shown)


@require_POST
@role_required(*CONFIG_ROLES)
def import_upload(request, group_id: int):
    """Step 1, "Upload the CSV file": a file that is not CSV text, is too big or has no rows
    is refused here with the reason, and nothing is kept; else it waits for the mapping."""
    group = _group_of(request, group_id)
    form = ListFileForm(request.POST, request.FILES)
    if not _can_upload(group):
        return _upload_page(request, group, form)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > max_bytes():
            form.add_error("file", msg_too_big(upload.size))
        else:
            data = upload.read()
            try:
                file_sample(io.BytesIO(data))
            except FileRefused as refused:
                for error in refused.errors:
                    form.add_error("file", _refusal_text(error))
            else:
                stored = ImportTempStorage()
                stored.save(data)
                token = import_name_sign(stored.name, request.user)
                query = urlencode({"upload": token, "name": (upload.name or "")[:255]})
                return redirect(f"{reverse('care:import-map', args=[group.pk])}?{query}")
    return _upload_page(request, group, form)


def _preview_view(preview: ImportPreview | None, group: TargetGroup) -> dict | None:
    """What the preview shows: counts as plain numbers, the columns as they are read."""
    if preview is None:
        return None
    cycles = {c.ordinal: c.label for c in cycle_choices(group)}
    defaults = {}
    targets = list(group.targets.order_by("ordinal", "id"))
    for column in preview.spec.value_columns:
        values = {grouped(t.value_for_cycle(column.ordinal)) for t in targets}
        defaults[column.ordinal] = values.pop() if len(values) == 1 else ""
    return {
        "p": preview,
        "rows": grouped(preview.rows),
        "checked": grouped(preview.checked),
        "new": grouped(preview.new_customers),
        "existing": grouped(preview.existing_customers),
        "bad_rows": grouped(preview.bad_rows),
        "problem_count": grouped(preview.problem_count),
        "more_problems": grouped(preview.problem_count - len(preview.problems)),
        "value_columns": [
            {
                "name": c.name,
                "cycle": cycles.get(c.ordinal, f"P{c.ordinal}"),
                "default": defaults.get(c.ordinal, ""),
            }
            for c in preview.spec.value_columns
        ],  # fmt: skip
        "identifier_label": IDENTIFIER_LABELS.get(preview.spec.identifier_type, ""),
        "first_rows": [_first_row(row, preview) for row in preview.first_rows],
        "can_skip": preview.bad_rows > 0 and preview.good_rows > 0,
        "good_rows_text": _rows_text(preview.good_rows),
    }


ROW_STATES = {"new": "New customer", "existing": "Already a customer", "problem": "Not imported"}


def _first_row(row: PreviewRow, preview: ImportPreview) -> dict:
    """A row of the preview's table: each value as read, a blank one taking the default."""
    spec = preview.spec
    return {
        "row": row.row,
        "identifier": row.identifier,
        "id_problem": row.problems.get(spec.identifier_column, ""),
        "row_problem": row.problems.get("", ""),
        "state": row.state,
        "state_label": ROW_STATES[row.state],
        "cells": [
            {"text": text, "is_default": text == "", "problem": row.problems.get(column.name, "")}
            for text, column in zip(row.values, spec.value_columns, strict=True)
        ],
    }


@require_http_methods(["GET", "POST"])
@role_required(*CONFIG_ROLES)
def import_map_page(request, group_id: int):
    """Steps 2 and 3, "Map fields" and the preview: the columns as guessed (GET) or as chosen
    (POST; htmx posts on each change and gets the step back), and what the import would do
    with them. Writes nothing."""
    group = _group_of(request, group_id)
    if not _can_upload(group):
        return _upload_gone(request, group, "This milestone does not take custom lists.")
    params = request.POST if request.method == "POST" else request.GET
    try:
        _, data = _stored_upload(request, params.get("upload"))
        sample = file_sample(io.BytesIO(data))
    except ValidationError:
        return _upload_gone(request, group)
    except FileRefused as refused:
        return _upload_gone(request, group, _refusal_text(refused.errors[0]))
    if request.method == "GET":
        bound = MappingForm.initial_data(
            group=group, sample=sample, upload=params["upload"], name=params.get("name", "")
        )
    else:
        bound = request.POST
    form = MappingForm(bound, group=group, sample=sample)
    preview = None
    if form.is_valid():
        try:
            preview = import_preview(
                target_group=group, binary_file=io.BytesIO(data), **form.options()
            )
        except FileRefused as refused:
            form.add_refusals(refused.errors)
    template = "membercare/import_step.html" if request.htmx else "membercare/import_map.html"
    return _page(
        request,
        template,
        title=f"Map fields: {group.name}",
        group=group,
        form=form,
        file_name=form.data.get("name") or "the file",
        errors=form.summary(),
        has_cycles=bool(cycle_choices(group)),
        target_names=target_names(group),
        preview=_preview_view(preview, group),
        view_url=reverse("admin:milestones_targetgroup_view", args=[group.pk]),
    )


@require_POST
@role_required(*CONFIG_ROLES)
def import_confirm(request, group_id: int):
    """Step 4, "Confirm & upload" (or "Cancel", which deletes the waiting file): the previewed
    mapping is checked again and the file becomes an import job; its progress page follows."""
    group = _group_of(request, group_id)
    try:
        stored, data = _stored_upload(request, request.POST.get("upload"))
    except ValidationError:
        return _upload_gone(request, group)
    if "cancel" in request.POST:
        stored.remove()
        messages.info(request, "The upload was cancelled: nothing was imported.")
        return redirect("care:imports", group_id=group.pk)
    query = {"upload": request.POST.get("upload", ""), "name": request.POST.get("name", "")}
    back = f"{reverse('care:import-map', args=[group.pk])}?{urlencode(query)}"
    try:
        sample = file_sample(io.BytesIO(data))
    except FileRefused as refused:
        return _upload_gone(request, group, _refusal_text(refused.errors[0]))
    form = MappingForm(request.POST, group=group, sample=sample)
    if not form.is_valid() or not _can_upload(group):
        messages.error(request, "The mapping changed or is incomplete: check it and preview again.")  # fmt: skip
        return redirect(back)
    options = form.options()
    try:
        job = import_job_create(
            target_group=group,
            file=ContentFile(data, name=form.cleaned_data.get("name") or "custom-list.csv"),
            send_trigger=form.cleaned_data["send_trigger"],
            skip_bad_rows=request.POST.get("skip_bad_rows") == "1",
            user=request.user,
            **options,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    stored.remove()
    return redirect("care:import-progress", import_id=job.pk)


def _import_of(request, import_id: int) -> ImportJob:
    return get_object_or_404(
        ImportJob.objects.select_related("target_group", "created_by"),
        pk=import_id,
        organisation_id=request.user.organisation_id,
    )


def _outcome(job: ImportJob) -> dict:
    """What a finished import did, what to fix and what can be done about it."""
    problems = job_problems(job) if job.error_count else []
    stored = [e for e in job.errors or [] if isinstance(e, dict)]
    bad_rows = len({e.get("row") for e in stored if int(e.get("row") or 0) >= 2})
    complete = job.error_count <= len(stored)
    refusal = rerun_refusal(job) if job.status == ImportStatus.FAILED else None
    return {
        "job": job,
        "problems": problems,
        "more": grouped(max(0, job.error_count - len(problems))),
        "error_count": grouped(job.error_count),
        "bad_count": bad_rows,
        "bad_rows": f"{'' if complete else 'at least '}{grouped(bad_rows)}",
        "good_rows_text": _rows_text(max(0, job.total - bad_rows)) if complete else "good rows",
        "total": grouped(job.total),
        "enrolled": grouped(job.newly_enrolled),
        "created": grouped(job.created_customers),
        "written": grouped(job.values_written),
        "skipped": grouped(job.skipped_rows),
        "can_rerun": job.status == ImportStatus.FAILED and refusal is None,
        "refusal": refusal,
        "file_refused": bool(stored) and any(int(e.get("row") or 0) < 2 for e in stored),
    }


@require_GET
@role_required(*CONFIG_ROLES)
def import_progress_page(request, import_id: int):
    """An import's progress bar (polling its status in the API), then what it did: on a
    failure, each problem with its row, column and value, and a way to skip the bad rows."""
    job = _import_of(request, import_id)
    final = job.status in (ImportStatus.DONE, ImportStatus.FAILED)
    return _page(
        request,
        "membercare/import_progress.html",
        title=f"Custom list import #{job.pk}",
        heading=f"Custom list import #{job.pk} — {job.original_name or 'upload'}",
        group=job.target_group,
        job=job,
        status_url=reverse("import-detail", args=[job.pk]),
        unit="rows",
        summary=[{"field": f, "label": label} for f, label in IMPORT_SUMMARY],
        show_errors=False,  # the outcome below lists them, with their values
        initial={"status": job.status, "total": job.total, "processed": job.processed},
        outcome=_outcome(job) if final else None,
        identifier_label=IDENTIFIER_LABELS.get(job.identifier_type, job.identifier_type),
        view_url=reverse("admin:milestones_targetgroup_view", args=[job.target_group_id]),
    )


@require_GET
@role_required(*CONFIG_ROLES)
def import_outcome(request, import_id: int):
    """The outcome part of the progress page, fetched by htmx when the bar reaches the end."""
    job = _import_of(request, import_id)
    final = job.status in (ImportStatus.DONE, ImportStatus.FAILED)
    return TemplateResponse(
        request,
        "membercare/import_outcome.html",
        {"job": job, "outcome": _outcome(job) if final else None},
    )


@require_POST
@role_required(*CONFIG_ROLES)
def import_rerun(request, import_id: int):
    """ "Import the good rows": the failed import's file again, skipping the bad rows."""
    job = _import_of(request, import_id)
    try:
        again = import_job_rerun(job=job, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("care:import-progress", import_id=job.pk)
    return redirect("care:import-progress", import_id=again.pk)


# --- long work: evaluation and reprocessing runs, with a live progress bar --------------------


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
