"""The milestone configuration screens: custom admin views of TargetGroupAdmin.

Thin views: they parse the forms of milestones.forms into the API's data shape, call one
service of milestones.services.target_groups and render with the admin's base template.
Refusals come back from the service as ValidationError and are shown next to the fields.
"""

from __future__ import annotations

import logging
import re

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.http import (
    Http404,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from common.numbers import plain

from . import signals
from .forms import (
    CloneForm,
    MilestoneForm,
    NameForm,
    apply_service_errors,
    create_data,
    error_summary,
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
from .selectors import enrolment_summary, org_today, sole_till_code
from .services import target_groups as services
from .services.target_groups.validation import validate_create, validate_update

logger = logging.getLogger(__name__)

TABS = (("configuration", "Configuration"), ("information", "Information"), ("history", "History"))
FRAGMENTS = "admin/milestones/targetgroup/"


def audience_group_choices(organisation) -> list[tuple[int, str]]:
    """The organisation's audience groups for the picker, from the apps above
    (`signals.audience_groups_requested`: enrolment answers)."""
    choices: list[tuple[int, str]] = []
    for _receiver, answer in signals.audience_groups_requested.send(
        sender=TargetGroup, organisation=organisation
    ):
        choices += list(answer or ())
    return choices


def _grow(data, add: str) -> str | None:
    """The posted form with one more row where the configurer pressed "add" (a target, a
    sub-target of a target, a custom period); answers the html name of the row's first input."""
    if add == "target":
        total = _count(data.get("targets-TOTAL_FORMS"))
        data["targets-TOTAL_FORMS"] = str(total + 1)
        return f"targets-{total}-name"
    if add.startswith("sub:"):
        prefix = add[4:]
        if not re.fullmatch(r"targets-\d+", prefix):
            return None
        n = 1
        while f"{prefix}-sub_{n}_name" in data:
            n += 1
        data[f"{prefix}-sub_{n}_name"] = ""
        data[f"{prefix}-sub_{n}_criteria"] = "absolute"
        return f"{prefix}-sub_{n}_name"
    if add == "period":
        n = 1
        while f"period_{n}_start" in data:
            n += 1
        for part in ("start", "end", "name"):
            data[f"period_{n}_{part}"] = ""
        return f"period_{n}_start"
    return None


def _count(raw) -> int:
    try:
        return max(0, min(int(raw), 999))
    except (TypeError, ValueError):
        return 0


def _focus(form, formset, html_name: str | None) -> None:
    """The input of a row just added gets the focus (`autofocus`; htmx honours it too)."""
    if not html_name:
        return
    for f in (form, *formset.forms):
        for bf in f:
            if bf.html_name == html_name:
                bf.field.widget.attrs["autofocus"] = True
                return


def _service_opinion(organisation, group, form, filled, targets) -> list[str]:
    """When the form itself refused something, the service still checks what did parse
    (without writing), so the page lists every problem at once."""
    try:
        if group is None:
            validate_create(organisation, create_data(form, targets))
        else:
            validate_update(group, update_data(form, targets))
    except ValidationError as exc:
        return apply_service_errors(exc, form, filled, second_opinion=True)
    except (TypeError, ValueError, AttributeError, KeyError):
        # half-parsed data the rules cannot read: the form's own errors say what to fix
        logger.info("service check skipped on a half-parsed milestone form", exc_info=True)
    return []


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
            path(
                "<path:object_id>/reprocess/",
                wrap(self.reprocess_view),
                name=f"{base}_reprocess",
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
        """The create/edit form. A POST saves it, unless it asks to redraw (`_part`: one part
        as an htmx fragment; `_refresh` / `_add`: the page without JavaScript), which only
        shows what the typed values give (the fields of each choice, the cycles, ...)."""
        if group is not None:
            initial, targets_initial = initial_from_group(group)
            initial["audience_group"] = enrolment_summary(group).get("audience_group")
        elif template is not None:
            initial, targets_initial = initial_from_payload(template.payload)
            initial["template"] = template.pk
        else:
            initial, targets_initial = {}, []
        if group is None and not initial.get("till"):
            # The till is required: an organisation with exactly one has it chosen already.
            initial["till"] = sole_till_code(organisation)
        data = request.POST.copy() if request.method == "POST" else None
        redraw = data is not None and any(k in data for k in ("_part", "_refresh", "_add"))
        added = _grow(data, data.get("_add", "")) if redraw else None
        formset_class = target_formset(extra=1 if (group or targets_initial) else 2)
        kwargs = {"organisation": organisation, "group": group}
        form = MilestoneForm(
            data,
            initial=initial,
            audience_groups=audience_group_choices(organisation),
            hx_url=request.get_full_path(),
            **kwargs,
        )
        formset = formset_class(
            data, initial=targets_initial, prefix="targets", context=form.target_context(),
            **kwargs,
        )  # fmt: skip
        _focus(form, formset, added)
        target_errors: list[str] = []
        summary: list[dict] = []
        if redraw and data.get("_part"):
            return self._config_fragment(request, data, form, formset, group)
        if data is not None and not redraw:
            form_ok, formset_ok = form.is_valid(), formset.is_valid()
            filled = formset.filled_forms()
            targets = [f.as_target_data() for f in filled]
            if template is not None:
                self._suffix_template_names(template, targets, form.cleaned_data.get("name", ""))
            if form_ok and formset_ok:
                try:
                    saved, warnings, reprocess = self._save(
                        request, organisation, group, form, targets
                    )
                except ValidationError as exc:
                    target_errors = apply_service_errors(exc, form, filled)
                else:
                    for warning in warnings:
                        messages.warning(request, warning)
                    if reprocess:
                        self._offer_reprocess(request, saved)
                    return redirect(self.url_for("view", saved))
            else:
                # what parsed is checked by the service too, so every problem shows at once
                target_errors = _service_opinion(organisation, group, form, filled, targets)
            summary = error_summary(form, formset.forms, target_errors)
        has_errors = bool(summary or formset.non_form_errors())
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
                error_summary=summary,
                has_errors=has_errors,
                group=group,
                status=group.status() if group else None,
                template=template,
                add=group is None,
                org_timezone=organisation.timezone,
            ),
        )

    def _save(self, request, organisation, group, form, targets):
        """Create or edit through the service; (milestone, warnings, re-processing
        suggested)."""
        if group is None:
            saved, warnings = services.target_group_create(
                organisation=organisation, data=create_data(form, targets), user=request.user
            )
            messages.success(request, f"The milestone “{saved.name}” was created.")
            # a backdated start counts the stored activities only once they are re-processed
            return saved, warnings, saved.start < org_today(organisation)
        saved, warnings, reprocess = services.target_group_update(
            target_group=group, data=update_data(form, targets), user=request.user
        )
        messages.success(request, f"The milestone “{saved.name}” was saved.")
        return saved, warnings, reprocess

    def _offer_reprocess(self, request, group) -> None:
        """After a save that changes what is counted: a "Re-process now" button, when there
        are stored activities to re-process."""
        if not any(answer for _, answer in signals.reprocess_available.send(
            sender=TargetGroup, target_group=group
        )):  # fmt: skip
            return
        messages.warning(
            request,
            format_html(
                "These changes affect what is counted: the stored activities must be "
                're-processed. <form method="post" action="{}" class="ms-inline-form">'
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                '<button type="submit" class="button ms-reprocess">Re-process now</button>'
                "</form>",
                self.url_for("reprocess", group),
                get_token(request),
            ),
        )

    def _config_fragment(self, request, data, form, formset, group):
        """One part of the form, re-rendered from the posted values (htmx)."""
        part = data.get("_part")
        context = {"form": form, "formset": formset, "group": group, "part": part,
                   "org_timezone": form.cycle_preview().timezone}  # fmt: skip
        if part in ("cycles", "preview"):
            return TemplateResponse(request, f"{FRAGMENTS}_cycles_response.html", context)
        if part == "enrolment":
            return TemplateResponse(request, f"{FRAGMENTS}_enrolment.html", context)
        if part == "drop":
            return TemplateResponse(request, f"{FRAGMENTS}_drop_cycles.html", context)
        if part == "newtarget":
            index = len(formset.forms) - 1
            context.update(tform=formset.forms[index], number=index + 1, new_target=True)
            return TemplateResponse(request, f"{FRAGMENTS}_target_form.html", context)
        templates = {
            "target": "_target_form.html",  # a whole target block
            "tracking": "_tracking_response.html",  # what a KPI shows (its fields, its rule)
            "subs": "_sub_targets.html",
            "rule": "_rule_check.html",
            "thresholds": "_thresholds.html",
            "event": "_event_help.html",
        }
        prefix = data.get("_prefix")
        numbered = [(n, f) for n, f in enumerate(formset.forms, start=1) if f.prefix == prefix]
        if part not in templates or not numbered:
            return HttpResponseBadRequest("Unknown part of the form.")
        context.update(number=numbered[0][0], tform=numbered[0][1])
        return TemplateResponse(request, f"{FRAGMENTS}{templates[part]}", context)

    def reprocess_view(self, request, object_id):
        """POST "Re-process now": start re-processing the milestone's stored activities and
        follow it on its progress page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        group = self._group_or_404(request, object_id)
        if not self.has_change_permission(request, group):
            raise PermissionDenied
        try:
            answers = signals.reprocess_requested.send(
                sender=TargetGroup, target_group=group, user=request.user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(_messages_of(exc)))
            return redirect(self.url_for("view", group))
        run_ids = [run_id for _, run_id in answers if run_id]
        if not run_ids:
            messages.error(request, "Re-processing is not available here.")
            return redirect(self.url_for("view", group))
        return redirect(reverse("care:run-progress", args=["reprocess", run_ids[0]]))

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
        choices = audience_group_choices(source.organisation)
        if request.method == "POST":
            form = CloneForm(request.POST, audience_groups=choices)
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
            form = CloneForm(
                initial={"enrolment_mode": source.enrolment_mode}, audience_groups=choices
            )
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
