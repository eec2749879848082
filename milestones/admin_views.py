"""The milestone configuration screens: custom admin views of TargetGroupAdmin.

Thin views: they parse the forms of milestones.forms into the API's data shape, call one
service of milestones.services.target_groups and render with the admin's base template.
Refusals come back from the service as ValidationError and are shown next to the fields.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from common.numbers import plain

from .forms import (
    CloneForm,
    MilestoneForm,
    NameForm,
    apply_service_errors,
    create_data,
    initial_from_group,
    initial_from_payload,
    target_formset,
    update_data,
)
from .models import (
    AuditEntry,
    CycleType,
    MilestoneStatus,
    SubTargetCriteria,
    Target,
    TargetGroup,
    Template,
)
from .selectors import enrolment_summary, sole_till_code
from .services import target_groups as services

TABS = (("configuration", "Configuration"), ("information", "Information"), ("history", "History"))


def templates_for(organisation):
    """Built-in templates and the organisation's own."""
    qs = Template.objects.filter(organisation__isnull=True)
    if organisation is not None:
        qs = Template.objects.filter(Q(organisation__isnull=True) | Q(organisation=organisation))
    return qs.order_by("organisation_id", "name")


_NUMBER = re.compile(r"^-?(\d+(\.\d+)?([eE][+-]?\d+)?)$")


def _shown(value) -> str:
    """A recorded value as a person reads it: numbers plain ('5E+1' and '50.0000' -> '50')."""
    if isinstance(value, str) and _NUMBER.match(value) and not value.isdigit():
        return plain(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return plain(value)
    return str(value)


def describe_changes(changes, prefix: str = "") -> list[str]:
    """An audit row's `changes` as lines people read: 'end: 2026-03-31 → 2026-04-30'."""
    lines: list[str] = []
    if not isinstance(changes, dict):
        return [f"{prefix}{changes}"] if prefix else [str(changes)]
    for key, value in changes.items():
        label = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += describe_changes(value, f"{label} › ")
        elif isinstance(value, list) and len(value) == 2 and not isinstance(value[0], list):
            lines.append(f"{label}: {_shown(value[0])} → {_shown(value[1])}")
        else:
            lines.append(f"{label}: {value}")
    return lines


def _messages_of(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [m for msgs in exc.message_dict.values() for m in msgs]
    return list(exc.messages)


class TargetGroupScreens:
    """Mixed into TargetGroupAdmin: create/edit/view/clone/save-as-template screens."""

    config_template = "admin/milestones/targetgroup/config_form.html"
    start_template = "admin/milestones/targetgroup/new_milestone.html"
    detail_template = "admin/milestones/targetgroup/detail.html"
    name_template = "admin/milestones/targetgroup/name_form.html"

    # --- urls ---------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        base = f"{self.opts.app_label}_{self.opts.model_name}"
        custom = [
            path("<path:object_id>/view/", wrap(self.detail_view), name=f"{base}_view"),
            path("<path:object_id>/clone/", wrap(self.clone_view), name=f"{base}_clone"),
            path(
                "<path:object_id>/save-as-template/",
                wrap(self.save_as_template_view),
                name=f"{base}_save_as_template",
            ),
            path(
                "<path:object_id>/set-active/",
                wrap(self.set_active_view),
                name=f"{base}_set_active",
            ),
        ]
        return custom + super().get_urls()

    def url_for(self, name: str, group=None) -> str:
        info = self.opts.app_label, self.opts.model_name
        args = [group.pk] if group is not None else []
        return reverse(f"admin:{info[0]}_{info[1]}_{name}", args=args)

    # --- helpers ------------------------------------------------------------------------------

    def _group_or_404(self, request, object_id) -> TargetGroup:
        group = self.get_object(request, unquote(object_id))
        if group is None:
            raise Http404("No milestone with this id in your organisation.")
        return group

    def _context(self, request, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            "media": self.media,
            **extra,
        }

    # --- create and edit ----------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        organisation = request.user.organisation
        if organisation is None:
            messages.error(
                request,
                "Your account belongs to no organisation: sign in as one of the brand's "
                "configurers to create a milestone.",
            )
            return redirect(self.url_for("changelist"))
        template = None
        template_id = request.POST.get("template") or request.GET.get("template")
        if template_id:
            try:
                template = templates_for(organisation).filter(pk=int(template_id)).first()
            except (TypeError, ValueError):
                template = None
            if template is None:
                messages.error(request, f"Unknown template {template_id!r}.")
                return redirect(self.url_for("add"))
        elif request.method == "GET" and "scratch" not in request.GET:
            return TemplateResponse(
                request,
                self.start_template,
                self._context(
                    request,
                    title="New milestone",
                    templates=templates_for(organisation),
                ),
            )
        return self._config_form_view(request, organisation=organisation, template=template)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        group = self._group_or_404(request, object_id)
        if not self.has_change_permission(request, group):
            raise PermissionDenied
        return self._config_form_view(request, organisation=group.organisation, group=group)

    def _config_form_view(self, request, *, organisation, group=None, template=None):
        if group is not None:
            initial, targets_initial = initial_from_group(group)
        elif template is not None:
            initial, targets_initial = initial_from_payload(template.payload)
            initial["template"] = template.pk
        else:
            initial, targets_initial = {}, []
        if group is None and not initial.get("till"):
            # The till is required: an organisation with exactly one has it chosen already.
            initial["till"] = sole_till_code(organisation)
        formset_class = target_formset(extra=1 if (group or targets_initial) else 2)
        kwargs = {"organisation": organisation, "group": group}
        target_errors: list[str] = []
        if request.method == "POST":
            form = MilestoneForm(request.POST, initial=initial, **kwargs)
            formset = formset_class(
                request.POST, initial=targets_initial, prefix="targets", **kwargs
            )
            if form.is_valid() and formset.is_valid():
                filled = formset.filled_forms()
                targets = [f.as_target_data() for f in filled]
                if template is not None:
                    self._suffix_template_names(template, targets, form.cleaned_data["name"])
                try:
                    if group is None:
                        saved, warnings = services.target_group_create(
                            organisation=organisation,
                            data=create_data(form, targets),
                            user=request.user,
                        )
                        reprocess = False
                        messages.success(request, f"The milestone “{saved.name}” was created.")
                    else:
                        saved, warnings, reprocess = services.target_group_update(
                            target_group=group,
                            data=update_data(form, targets),
                            user=request.user,
                        )
                        messages.success(request, f"The milestone “{saved.name}” was saved.")
                except ValidationError as exc:
                    target_errors = apply_service_errors(exc, form, filled)
                else:
                    for warning in warnings:
                        messages.warning(request, warning)
                    if reprocess:
                        messages.warning(
                            request,
                            "These changes affect what is counted: re-process the stored "
                            f"activities (manage.py reprocess {saved.pk}).",
                        )
                    return redirect(self.url_for("view", saved))
        else:
            form = MilestoneForm(initial=initial, **kwargs)
            formset = formset_class(initial=targets_initial, prefix="targets", **kwargs)
        has_errors = bool(
            form.errors
            or target_errors
            or formset.non_form_errors()
            or any(f.errors for f in formset.forms)
        )
        if group is not None:
            title = f"Edit milestone “{group.name}”"
        elif template is not None:
            title = f"New milestone from the template “{template.name}”"
        else:
            title = "New milestone: build from scratch"
        return TemplateResponse(
            request,
            self.config_template,
            self._context(
                request,
                title=title,
                form=form,
                formset=formset,
                target_errors=target_errors,
                has_errors=has_errors,
                group=group,
                status=group.status() if group else None,
                template=template,
                add=group is None,
            ),
        )

    @staticmethod
    def _suffix_template_names(template: Template, targets: list[dict], group_name: str):
        """As the API does: a template's target names get the milestone's name appended
        (target names are unique in the organisation) unless the configurer changed them."""
        names = {t.get("name") for t in (template.payload.get("targets") or [])}
        for target in targets:
            if target.get("name") in names:
                target["name"] = f"{target['name']} ({group_name})"

    # --- view ---------------------------------------------------------------------------------

    def detail_view(self, request, object_id):
        group = self._group_or_404(request, object_id)
        if not self.has_view_permission(request, group):
            raise PermissionDenied
        group = (
            TargetGroup.objects.select_related("organisation", "till", "created_by")
            .prefetch_related(
                "periods",
                Prefetch(
                    "targets",
                    queryset=Target.objects.select_related("source_target_group").prefetch_related(
                        "sub_targets"
                    ),
                ),
            )
            .get(pk=group.pk)
        )
        tab = request.GET.get("tab") or "configuration"
        if tab not in dict(TABS):
            tab = "configuration"
        tz = group.organisation.tzinfo
        periods = list(group.periods.all())
        period_names = {p.ordinal: p.name for p in periods}
        targets = []
        for t in group.targets.all():
            targets.append(
                {
                    "target": t,
                    "cycle_values": [
                        (period_names.get(int(k), f"P{k}"), v)
                        for k, v in sorted(t.cycle_values.items(), key=lambda kv: int(kv[0]))
                    ],
                    "sub_targets": [
                        {
                            "sub": s,
                            "is_percentage": s.criteria == SubTargetCriteria.PERCENTAGE,
                            "threshold": s.threshold(t.value),
                        }
                        for s in t.sub_targets.all()
                    ],
                }
            )
        audit = [
            {"entry": e, "lines": describe_changes(e.changes)}
            for e in AuditEntry.objects.filter(
                organisation=group.organisation, object_type="targetgroup", object_id=group.pk
            ).select_related("user")
        ]
        status = group.status()
        return TemplateResponse(
            request,
            self.detail_template,
            self._context(
                request,
                title=group.name,
                group=group,
                original=group,
                status=status,
                tab=tab,
                tabs=TABS,
                periods=periods,
                per_customer_cycles=group.cycle_type
                in (CycleType.CYCLIC, CycleType.TILL_ACHIEVEMENT),
                targets=targets,
                enrolment=[
                    (key.replace("_", " ").capitalize(), value)
                    for key, value in enrolment_summary(group).items()
                    if key != "mode"
                ],
                created_at=timezone.localtime(group.created_at, tz),
                org_timezone=group.organisation.timezone,
                audit=audit,
                has_change_permission=self.has_change_permission(request, group),
                has_add_permission=self.has_add_permission(request),
                can_clone=status != MilestoneStatus.ENDED,
                can_activate=not group.is_active and status != MilestoneStatus.ENDED,
            ),
        )

    def history_view(self, request, object_id, extra_context=None):
        group = self._group_or_404(request, object_id)
        if not self.has_view_permission(request, group):
            raise PermissionDenied
        return HttpResponseRedirect(self.url_for("view", group) + "?tab=history")

    # --- activate / deactivate ----------------------------------------------------------------

    def set_active_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        group = self._group_or_404(request, object_id)
        if not self.has_change_permission(request, group):
            raise PermissionDenied
        active = request.POST.get("active") == "1"
        if not active and group.is_active and request.POST.get("confirm") != "yes":
            # one click does not stop a milestone: the page says what it means, then asks
            context = {
                **self.admin_site.each_context(request),
                "group": group,
                "view_url": self.url_for("view", group),
                "title": f"Deactivate {group.name}?",
            }
            return TemplateResponse(
                request, "admin/milestones/targetgroup/confirm_deactivate.html", context
            )
        self.set_active(request, [group], active)
        return redirect(self.url_for("view", group))

    def set_active(self, request, groups, active: bool) -> int:
        changed = 0
        for group in groups:
            if group.is_active == active:
                continue
            try:
                services.target_group_set_active(
                    target_group=group, active=active, user=request.user
                )
            except ValidationError as exc:
                messages.error(request, f"{group.name}: {' '.join(_messages_of(exc))}")
            else:
                changed += 1
        if changed:
            word = "activated" if active else "deactivated"
            noun = "milestone" if changed == 1 else "milestones"
            messages.success(request, f"{changed} {noun} {word}.")
        return changed

    # --- clone and save as template -----------------------------------------------------------

    def clone_view(self, request, object_id):
        source = self._group_or_404(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        if source.status() == MilestoneStatus.ENDED:
            messages.error(request, "Only a Live or Upcoming milestone can be cloned.")
            return redirect(self.url_for("changelist"))
        if request.method == "POST":
            form = CloneForm(request.POST)
            if form.is_valid():
                enrolment = {"mode": form.cleaned_data["enrolment_mode"]}
                if form.cleaned_data.get("audience_group") is not None:
                    enrolment["audience_group"] = form.cleaned_data["audience_group"]
                try:
                    clone = services.target_group_clone(
                        source=source,
                        name=form.cleaned_data["name"],
                        user=request.user,
                        data={"enrolment": enrolment},
                    )
                except ValidationError as exc:
                    self._name_form_errors(exc, form)
                else:
                    messages.success(
                        request,
                        f"“{source.name}” was cloned as “{clone.name}”. Review it and change "
                        "what differs (the KPI, the values, ...).",
                    )
                    return redirect(self.url_for("change", clone))
        else:
            form = CloneForm(initial={"enrolment_mode": source.enrolment_mode})
        return TemplateResponse(
            request,
            self.name_template,
            self._context(
                request,
                title=f"Clone “{source.name}”",
                group=source,
                original=source,
                form=form,
                intro="The clone copies the details, cycles and targets with their sub-targets "
                "to a new milestone. Target names get the new name appended. Enrolment is "
                "never copied.",
                submit_label="Clone",
            ),
        )

    def save_as_template_view(self, request, object_id):
        group = self._group_or_404(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = NameForm(request.POST)
            if form.is_valid():
                try:
                    template = services.template_create_from_group(
                        target_group=group, name=form.cleaned_data["name"], user=request.user
                    )
                except ValidationError as exc:
                    self._name_form_errors(exc, form)
                else:
                    messages.success(
                        request,
                        f"Saved as the template “{template.name}”: choose it under New milestone.",
                    )
                    return redirect(self.url_for("view", group))
        else:
            form = NameForm()
        return TemplateResponse(
            request,
            self.name_template,
            self._context(
                request,
                title=f"Save “{group.name}” as a template",
                group=group,
                original=group,
                form=form,
                intro="The template keeps the cycles, targets, rules and sub-targets; the name, "
                "dates and enrolment are chosen each time it is used.",
                submit_label="Save as template",
            ),
        )

    @staticmethod
    def _name_form_errors(exc: ValidationError, form) -> None:
        if not hasattr(exc, "error_dict"):
            for message in exc.messages:
                form.add_error(None, message)
            return
        for key, msgs in exc.message_dict.items():
            for message in msgs:
                if key in form.fields:
                    form.add_error(key, message)
                elif key == "enrolment" and "enrolment_mode" in form.fields:
                    form.add_error("enrolment_mode", message)
                elif key in ("__all__", "non_field_errors"):
                    form.add_error(None, message)
                else:
                    form.add_error(None, f"{key}: {message}")
