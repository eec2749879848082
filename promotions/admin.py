"""Promotions screens: promotions with their ordered actions, coupon series, the awards ledger
with the liability report per milestone and target (CSV export), the message outbox and the
milestones' communications.

The promotion form (templates admin/promotions/promotion/, static promotions/): pickers of the
organisation's targets and sub-targets insert their exact names into the condition; the
condition is checked while it is typed (htmx: `check_condition_view`), an error's position
marked under the box, the condition doctor's warnings beside it; each action shows the fields
of its type (htmx: `action_fields_view`), the others cleared on save; a refused save lists
every error in a summary linking to its input."""

from __future__ import annotations

import csv
import re
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Prefetch, Q
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_date

from common.admin import OrgScopedAdmin, OrgScopedInline, ReadOnlyAdmin, sees_every_organisation
from common.csv_safe import csv_cell
from common.numbers import grouped, plain
from milestones.models import MilestoneStatus, Role, SubTarget, Target, TargetGroup
from milestones.selectors import org_today
from rules import RuleError
from rules.syntax import tokenize

from . import services
from .caps import caps_near_limit, spend_for, with_spend
from .consumer import events_retry
from .doctor import (
    ConditionCheck,
    ConditionDoctor,
    condition_check,
    condition_problems,
    condition_warnings,
)
from .models import (
    ActionType,
    Award,
    Communication,
    ConsumeFailure,
    CouponSeries,
    Message,
    Promotion,
    PromotionAction,
    PromotionActivity,
    named_milestones,
)
from .selectors import LIABILITY_COLUMNS, liability_report
from .templating import PLACEHOLDERS

#: the live parts of the promotion form (htmx): the condition check and an action's fields
CHECK_URL = "admin:promotions_promotion_check_condition"
ACTION_FIELDS_URL = "admin:promotions_promotion_action_fields"
ACTION_ROW = re.compile(r"(actions-\d+)-(?:type|basis|channel)")

#: what the condition editor's Insert button writes for the picked target (`%s`: its name
#: as a rule-language text, quoted and escaped)
CONDITION_SNIPPETS = [
    ("currentEvent.targetAchieved(%s)", "its achieved value: targetAchieved"),
    ("currentEvent.targetDefined(%s)", "its target value: targetDefined"),
    (
        "currentEvent.targetAchieved(%s) >= currentEvent.targetDefined(%s)",
        "it is reached: targetAchieved >= targetDefined",
    ),
    ("currentEvent.targetGaps(%s)", "what is left to reach it: targetGaps"),
    ("currentEvent.targetExists(%s)", "the customer is in it: targetExists"),
    ("currentEvent.targetName.contains(%s)", "the event is about it: targetName.contains"),
]

#: the fields of each action type, in the order shown (services.action_fields says which apply)
ACTION_SECTIONS = [
    (ActionType.AWARD_POINTS, ("basis", "points", "percent", "rounding", "expiry_days",
                               "points_type")),
    (ActionType.ISSUE_COUPON, ("series",)),
    (ActionType.SEND_MESSAGE, ("channel", "subject", "template")),
]  # fmt: skip


class PromotionForm(forms.ModelForm):
    class Meta:
        model = Promotion
        fields = ["name", "description", "activity", "start", "end", "is_active", "condition"]
        widgets = {"condition": forms.Textarea(attrs={"rows": 5, "cols": 100})}
        help_texts = {
            "condition": 'A rule on the target event, e.g. currentEvent.targetAchieved("ABC") '
            '>= currentEvent.targetDefined("ABC") && currentEvent.isTargetAchievedEvent == true. '
            "Pick a target below to insert its exact name; the rule is checked as you type.",
        }

    def __init__(self, *args, organisation_id=None, check_url="", **kwargs):
        super().__init__(*args, **kwargs)
        if organisation_id and not self.instance.organisation_id:
            # Promotion.clean() checks the rule's names against this organisation.
            self.instance.organisation_id = organisation_id
        condition = self.fields["condition"].widget
        condition.attrs.update({
            "spellcheck": "false",
            "class": "pa-condition",
            # the live check below the box describes it, valid or not
            "aria-describedby": "id_condition_helptext id_condition_check",
            "hx-post": check_url,
            "hx-trigger": "input changed delay:400ms, change from:#id_activity",
            "hx-target": "#id_condition_check",
            "hx-swap": "innerHTML",
            "hx-sync": "this:replace",  # the latest text wins over a check still running
        })  # fmt: skip

    def clean_name(self):
        """Unique per organisation, said at the field (the database would refuse it too)."""
        name = self.cleaned_data["name"]
        organisation_id = self.instance.organisation_id or self.data.get("organisation")
        if organisation_id:
            others = Promotion.objects.filter(organisation_id=organisation_id, name=name)
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                raise ValidationError("Another promotion of the organisation has this name.")
        return name


class ActionInlineForm(forms.ModelForm):
    """One action. The fields shown are those of its type (and of its points basis and
    message channel): changing one of these three re-renders the row's fields (htmx). On
    save the fields that do not apply are cleared and their errors dropped, so the form is
    right without JavaScript too."""

    #: the message template's placeholder picker: (what is inserted, what it means)
    placeholder_options = [(f"{{{name}}}", meaning) for name, meaning in PLACEHOLDERS.items()]

    class Meta:
        model = PromotionAction
        fields = ["position", "type", "basis", "points", "percent", "rounding", "expiry_days",
                  "points_type", "series", "channel", "subject", "template"]  # fmt: skip
        widgets = {"template": forms.Textarea(attrs={"rows": 3, "cols": 60})}
        labels = {
            "series": "Coupon series",
            "template": "Message",
            "expiry_days": "Expires after (days)",
        }
        help_texts = {
            "position": "The order the actions run in: 0 first.",
            "expiry_days": "Days the points stay valid; blank: they do not expire.",
            "subject": "For an email.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("points", "percent"):  # 100, not 100.0000
            if getattr(self.instance, name, None) is not None:
                self.initial[name] = plain(getattr(self.instance, name))
        url = reverse(ACTION_FIELDS_URL)
        for name, target in (("type", "next .pa-fields"), ("basis", "closest .pa-fields"),
                             ("channel", "closest .pa-fields")):  # fmt: skip
            self.fields[name].widget.attrs.update({
                "hx-post": url,
                "hx-trigger": "change",
                "hx-target": target,
                "hx-swap": "outerHTML",
            })  # fmt: skip

    def chosen(self, name: str) -> str:
        value = self[name].value()
        return value if isinstance(value, str) else ""

    @property
    def chosen_type(self) -> str:
        return self.chosen("type")

    def applicable(self) -> tuple[str, ...]:
        return services.action_fields(
            self.chosen("type"), basis=self.chosen("basis"), channel=self.chosen("channel")
        )

    def shown_fields(self):
        """The bound fields of the chosen type, in order."""
        keep = set(self.applicable())
        return [self[n] for _t, names in ACTION_SECTIONS for n in names if n in keep]

    def other_sections(self):
        """The fields that do not apply, by type: listed only without JavaScript (<noscript>),
        where nothing re-renders the row when the type changes."""
        keep = set(self.applicable())
        labels = dict(ActionType.choices)
        sections = []
        for action_type, names in ACTION_SECTIONS:
            fields = [self[n] for n in names if n not in keep]
            if fields:
                sections.append({"label": labels[action_type], "fields": fields})
        return sections

    def has_changed(self):
        """A new row without a type is blank unless something was typed in it: its position,
        rounding and points type have defaults, and the rounding and points type are not on
        the page (so not posted) until a type is chosen."""
        if self.instance.pk or self.chosen("type"):
            return super().has_changed()
        return any(n not in ("position", "rounding", "points_type") for n in self.changed_data)

    def _post_clean(self):
        if self.has_error("type"):
            return  # the model's checks all hang on the type: "Unknown action type" again
        super()._post_clean()

    def clean(self):
        data = super().clean()
        keep = set(
            services.action_fields(
                data.get("type") or "",
                basis=data.get("basis") or "",
                channel=data.get("channel") or "",
            )
        )
        for name in services.TYPE_FIELDS:
            if name in keep:
                continue
            self._errors.pop(name, None)
            field = PromotionAction._meta.get_field(name)
            data[name] = None if field.null else ""
        return data


class PromotionActionInline(OrgScopedInline):
    """The coupon series to choose from are the organisation's (OrgScopedInline)."""

    model = PromotionAction
    form = ActionInlineForm
    template = "admin/promotions/promotion/actions_inline.html"
    extra = 0
    ordering = ["position"]

    def get_extra(self, request, obj=None, **kwargs):
        """A new promotion opens with one blank action (left blank, it is not saved): without
        JavaScript there is no "Add another" button."""
        return 1 if obj is None else 0

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


def condition_targets(organisation) -> list[dict]:
    """The condition editor's pickers: the organisation's milestones (live, then upcoming,
    then ended; by name), each with its targets and their sub-targets, each option's value
    the name as a rule-language text. A unified milestone is offered by its own name too
    (what its events carry)."""
    if organisation is None:
        return []
    today = org_today(organisation)
    targets = Target.objects.order_by("ordinal", "id").prefetch_related(
        Prefetch("sub_targets", queryset=SubTarget.objects.order_by("value", "id"))
    )
    groups = (
        TargetGroup.objects.filter(organisation=organisation)
        .prefetch_related(Prefetch("targets", queryset=targets))
        .order_by("name")
    )
    order = {MilestoneStatus.LIVE: 0, MilestoneStatus.UPCOMING: 1, MilestoneStatus.ENDED: 2}
    out = []
    for group in groups:
        group.organisation = organisation
        status = group.status(today)
        options = [(services.rule_text(t.name), t.name) for t in group.targets.all()]
        if group.unified_mode:
            options.insert(
                0, (services.rule_text(group.name), f"{group.name} (the whole milestone)")
            )
        subs = [
            (services.rule_text(s.name), f"{s.name} (of {t.name})")
            for t in group.targets.all()
            for s in t.sub_targets.all()
        ]
        out.append({
            "label": f"{group.name} ({status.label})",
            "order": order[status],
            "options": options,
            "sub_targets": subs,
        })  # fmt: skip
    out.sort(key=lambda g: g["order"])
    return out


def marked(source: str, problems) -> list[dict]:
    """Each problem with the condition cut around its position, for a <mark> on what is
    there (the whole word, text or operator that starts there, else the one character; a
    space past the end), and its line and column (1-based)."""
    try:
        starts = {t.pos: len(t.text) for t in tokenize(source) if t.text}
    except RuleError:
        starts = {}
    out = []
    for problem in problems:
        item = {"message": problem.message, "position": problem.position}
        at = problem.position
        if at is not None and 0 <= at <= len(source):
            end = at + starts.get(at, 1)
            item.update(
                before=source[:at],
                mark=source[at:end] if at < len(source) else " ",
                at_end=at >= len(source),
                after=source[end:],
                line=source.count("\n", 0, at) + 1,
                column=at - (source.rfind("\n", 0, at) + 1) + 1,
            )
        out.append(item)
    return out


def check_context(check, source: str) -> dict:
    """What _condition_check.html shows: None (nothing typed) or the check's outcome."""
    if check is None:
        return {"check": None}
    return {
        "check": check,
        "problems": marked(source, check.problems),
        "warnings": check.warnings,
    }


def error_summary(form, formsets) -> list[dict]:
    """Every error of the promotion form and its actions, each with the id of its input (the
    summary at the top links to them)."""
    items = []

    def add(label, message, anchor):
        items.append({"label": label, "message": message, "anchor": anchor})

    for name, errors in form.errors.items():
        field = form.fields.get(name)
        for message in errors:
            if field is None:
                add("", message, "content-main")
            else:
                add(field.label or name, message, form[name].id_for_label)
    for formset in formsets:
        for message in formset.non_form_errors():
            add("Actions", message, f"{formset.prefix}-group")
        for index, action_form in enumerate(formset.forms):
            for name, errors in action_form.errors.items():
                field = action_form.fields.get(name)
                for message in errors:
                    if field is None:
                        add(f"Action {index + 1}", message, f"{formset.prefix}-{index}")
                    else:
                        label = f"Action {index + 1}, {(field.label or name).lower()}"
                        add(label, message, action_form[name].id_for_label)
    return items


@admin.register(Promotion)
class PromotionAdmin(OrgScopedAdmin):
    form = PromotionForm
    inlines = [PromotionActionInline]
    change_form_template = "admin/promotions/promotion/change_form.html"
    list_display = [
        "name",
        "activity",
        "start",
        "end",
        "is_active",
        "milestones",
        "action_count",
        "spend_against_caps",
    ]
    list_filter = ["activity", "is_active"]
    search_fields = ["name", "condition"]
    ordering = ["id"]  # the model's, kept explicit: the annotated queryset drops Meta.ordering

    class Media:
        css = {"all": ["promotions/promotion_form.css"]}
        js = ["promotions/promotion_form.js"]

    def get_fieldsets(self, request, obj=None):
        """The condition has a section of its own (change_form.html), after these."""
        fields = [name for name in PromotionForm.Meta.fields if name != "condition"]
        if sees_every_organisation(request.user):
            fields.insert(0, "organisation")
        caps = (
            "Budget caps",
            {
                "fields": list(Promotion.CAP_FIELDS),
                "description": "Blank: no cap. An award that would pass a cap is recorded as "
                "'capped' with the reason, and nothing is given; at 80 % of a total cap the "
                "configurers get an email.",
            },
        )
        return [(None, {"fields": fields}), caps]

    def get_form(self, request, obj=None, change=False, **kwargs):
        fields = kwargs.pop("fields", None) or flatten_fieldsets(self.get_fieldsets(request, obj))
        fields = [*fields, *(["condition"] if "condition" not in fields else [])]
        fields = [*fields, *(f for f in Promotion.CAP_FIELDS if f not in fields)]
        form = super().get_form(request, obj, change=change, fields=fields, **kwargs)
        organisation_id = request.user.organisation_id
        check_url = reverse(CHECK_URL)
        if obj is not None:
            check_url += f"?object={obj.pk}"

        class Bound(form):
            def __init__(self, *args, **kw):
                kw.setdefault("organisation_id", organisation_id)
                kw.setdefault("check_url", check_url)
                super().__init__(*args, **kw)

        return Bound

    def get_queryset(self, request):
        return with_spend(
            super()
            .get_queryset(request)
            .select_related("organisation")
            .annotate(n_actions=Count("actions"))
        )

    @admin.display(description="Spent / cap")
    def spend_against_caps(self, obj):
        spend = spend_for(obj)
        parts = []
        if obj.cap_points_total is not None:
            parts.append(f"{grouped(spend.points)} / {grouped(obj.cap_points_total)} points")
        if obj.cap_coupons_total is not None:
            parts.append(f"{grouped(spend.coupons)} / {grouped(obj.cap_coupons_total)} coupons")
        if obj.cap_points_per_customer_per_cycle is not None:
            parts.append(
                f"≤ {grouped(obj.cap_points_per_customer_per_cycle)} per customer and cycle"
            )
        return "; ".join(parts) or "no cap"

    def changelist_view(self, request, extra_context=None):
        """A banner for each capped promotion at 80 % of a cap or more."""
        if request.method == "GET":
            promotions = self.get_queryset(request).filter(is_active=True)
            for line in caps_near_limit(promotions):
                self.message_user(request, f"Near its budget cap: {line}", messages.WARNING)
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        extra = [
            path(
                "check-condition/",
                self.admin_site.admin_view(self.check_condition_view),
                name="promotions_promotion_check_condition",
            ),
            path(
                "action-fields/",
                self.admin_site.admin_view(self.action_fields_view),
                name="promotions_promotion_action_fields",
            ),
        ]
        return extra + super().get_urls()

    def _may_edit(self, request) -> bool:
        return self.has_add_permission(request) or self.has_change_permission(request)

    def _organisation(self, request, object_id=None):
        """The organisation the form is for: the user's, or (an operations account) the
        edited promotion's."""
        if request.user.organisation_id:
            return request.user.organisation
        promotion = self.get_queryset(request).filter(pk=_int(object_id)).first()
        return promotion.organisation if promotion else None

    def check_condition_view(self, request):
        """The live check under the rule box (htmx, on each pause in typing): valid or the
        errors with their positions marked, and the doctor's warnings."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._may_edit(request):
            raise PermissionDenied
        source = request.POST.get("condition", "")
        check = None
        if source.strip():
            check = condition_check(
                organisation=self._organisation(request, request.GET.get("object")),
                condition=source,
                activity=request.POST.get("activity") or PromotionActivity.TARGET_PERIOD_ELAPSED,
            )
        return TemplateResponse(
            request,
            "admin/promotions/promotion/_condition_check.html",
            check_context(check, source),
        )

    def action_fields_view(self, request):
        """An action's fields for the type (points basis, channel) just chosen, keeping what
        was typed (htmx: the select that changed names the row)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._may_edit(request):
            raise PermissionDenied
        trigger = (request.htmx.trigger_name if request.htmx else None) or request.POST.get(
            "_trigger", ""
        )
        match = ACTION_ROW.fullmatch(trigger or "")
        if not match:
            return HttpResponseBadRequest("Say which action: the name of its type field.")
        prefix = match.group(1)
        inline = PromotionActionInline(self.model, self.admin_site)
        form = inline.get_formset(request, None).form(prefix=prefix)
        form.initial = {  # what the row holds; a field it did not show keeps its default
            name: field.widget.value_from_datadict(
                request.POST, request.FILES, form.add_prefix(name)
            )
            for name, field in form.fields.items()
            if form.add_prefix(name) in request.POST
        }
        return TemplateResponse(
            request, "admin/promotions/promotion/_action_fields.html", {"form": form, "live": True}
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        organisation = self._organisation(request, getattr(obj, "pk", None))
        formsets = [f.formset for f in context.get("inline_admin_formsets", [])]
        source = form["condition"].value() or ""
        if form.is_bound:
            problems = condition_problems(form.errors.get("condition", []))
            warnings = []
            if not problems and organisation is not None:
                activity = form["activity"].value() or PromotionActivity.TARGET_PERIOD_ELAPSED
                warnings = ConditionDoctor(organisation).warnings(source, activity)
            check = ConditionCheck(problems, warnings)
        elif source.strip():
            check = condition_check(
                organisation=organisation,
                condition=source,
                activity=form["activity"].value() or PromotionActivity.TARGET_PERIOD_ELAPSED,
            )
        else:
            check = None
        targets = condition_targets(organisation)
        context.update(
            condition_field=form["condition"],
            condition_organisation=organisation,
            condition_targets=targets,
            condition_has_sub_targets=any(g["sub_targets"] for g in targets),
            condition_snippets=CONDITION_SNIPPETS,
            error_summary=error_summary(form, formsets) if form.is_bound else [],
            **check_context(check, source),
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

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
                    "period", "points_shown", "points_type", "coupon_code", "awarded_at",
                    "reason"]  # fmt: skip
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

    @admin.display(description="Points", ordering="points")
    def points_shown(self, obj):
        return grouped(obj.points, empty="—")

    @admin.display(description="Why nothing was given")
    def reason(self, obj):
        return obj.error or ""

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
