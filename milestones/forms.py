"""Forms of the milestone configuration screens (admin).

These forms only parse what a configurer typed into the API's `data` shape (see
../shared/API.md), and back: `initial_from_group` builds on the one data shape of a
milestone, `target_group_as_data`. Every configuration rule is checked by
milestones.services.target_groups; its ValidationError is mapped back onto the forms by
`apply_service_errors`, so the screens and the API refuse the same things with the same
messages.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory
from django.utils.html import format_html

from common.numbers import plain

from .catalogue import BACKDATE_MONTHS, CUSTOMER_EVENTS, LOCKED_WHEN_LIVE, MAX_CYCLES
from .models import (
    CycleType,
    EnrolmentMode,
    Entity,
    Frequency,
    Kpi,
    MilestoneStatus,
    PointsType,
    Store,
    SubTargetCriteria,
    TargetGroup,
    TargetValueMode,
    UnifiedMode,
)
from .services.target_groups import TARGET_FIELD_CODE, target_group_as_data

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
SUB_TARGET_ROWS = 3  # blank sub-target rows offered under each target
CYCLE_FIELDS = ("cycle_type", "cycle_frequency", "cycle_days", "cycle_start", "cycle_count")


def _blank(label: str, choices) -> list[tuple[str, str]]:
    return [("", label), *choices]


class LockedText(forms.Widget):
    """A value an edit may not change, shown as text. A hidden input sends the value back
    as it is, so a change made elsewhere (a tampered form, a page opened before the
    milestone went live) still reaches the service, which refuses it at this field."""

    def __init__(self, value, text: str, attrs=None):
        super().__init__(attrs)
        self.value, self.text = value, text

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        return format_html(
            '<div class="readonly ms-readonly">{}</div>'
            '<input type="hidden" name="{}" value="{}" id="{}">',
            self.text,
            name,
            "" if self.value is None else self.value,
            attrs.get("id", ""),
        )


# --- structured text fields ------------------------------------------------------------------


def parse_periods(text: str) -> list[dict]:
    """Custom periods, one per line: `start, end[, name]` with ISO dates."""
    periods = []
    problems = []
    for n, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) < 2:
            problems.append(
                f"Line {n}: write a cycle as 'start, end[, name]', e.g. 2026-01-01, 2026-01-31."
            )
            continue
        try:
            start, end = date.fromisoformat(parts[0]), date.fromisoformat(parts[1])
        except ValueError:
            problems.append(f"Line {n}: dates must be written YYYY-MM-DD, got {line!r}.")
            continue
        period = {"start": start, "end": end}
        if len(parts) == 3 and parts[2]:
            period["name"] = parts[2]
        periods.append(period)
    if problems:
        raise ValidationError(problems)
    return periods


def format_periods(periods) -> str:
    return "\n".join(
        f"{p['start']}, {p['end']}" + (f", {p['name']}" if p.get("name") else "") for p in periods
    )


def parse_period_values(text: str) -> dict:
    """Target value per cycle, one per line: `P2 = 1500` (a cycle number or a period name)."""
    values: dict[str, Decimal] = {}
    problems = []
    for raw in re.split(r"[\n;]+", text or ""):
        line = raw.strip()
        if not line:
            continue
        match = re.fullmatch(r"(.+?)\s*[=:]\s*(\S+)", line)
        if not match:
            problems.append(f"{line!r}: write one cycle per line, as P2 = 1500.")
            continue
        key, raw_value = match.group(1).strip(), match.group(2)
        try:
            number = Decimal(raw_value)
        except InvalidOperation:
            problems.append(f"{line!r}: {raw_value!r} is not a number.")
            continue
        values[key] = number
    if problems:
        raise ValidationError(problems)
    return values


def format_period_values(values: dict) -> str:
    return "\n".join(f"{k} = {v}" for k, v in (values or {}).items())


# --- the milestone (parts 1 to 3 and the advanced settings) ----------------------------------


class MilestoneForm(forms.Form):
    # 1. Milestone details
    name = forms.CharField(
        max_length=200,
        help_text="Cannot be changed after creation; think twice before saving.",
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )
    start = forms.DateField(
        widget=DATE_INPUT, help_text=f"At most {BACKDATE_MONTHS} months in the past."
    )
    end = forms.DateField(widget=DATE_INPUT)
    # Required, but by the service (TILL_REQUIRED at till_code, shown here): the form parses.
    till = forms.ModelChoiceField(
        queryset=Store.objects.none(),
        required=False,
        to_field_name="code",
        empty_label="— choose a till —",
        help_text="Required. Points given by this milestone are attributed to this till "
        "(a store marked as a till).",
        error_messages={
            "invalid_choice": "That store is not a till of this organisation: choose a store "
            "marked as a till.",
        },
    )
    target_value_mode = forms.ChoiceField(
        choices=TargetValueMode.choices,
        initial=TargetValueMode.SAME_FOR_ALL,
        widget=forms.RadioSelect,
        label="Target value for the customer",
    )
    unified_mode = forms.ChoiceField(
        choices=UnifiedMode.choices,
        required=False,
        label="Tracking type",
        help_text="Unified: one milestone combining at least two targets.",
    )
    # Advanced settings
    leaderboard_enabled = forms.BooleanField(required=False, label="Enable the leaderboard")
    offset_days = forms.IntegerField(
        required=False,
        label="Offset days",
        help_text="Days between a cycle's end and its evaluation; blank uses the organisation's default.",
    )
    send_enrolment_trigger = forms.BooleanField(
        required=False, initial=True, label="Send enrolment notifications"
    )
    # 2. Cycles
    cycle_type = forms.ChoiceField(
        choices=CycleType.choices,
        initial=CycleType.FIXED_CALENDAR,
        widget=forms.RadioSelect,
        label="Cycle type",
    )
    cycle_frequency = forms.ChoiceField(
        choices=_blank("—", Frequency.choices),
        required=False,
        label="Duration of each cycle",
        help_text="Fixed calendar and cyclic windows.",
    )
    cycle_days = forms.IntegerField(
        required=False, label="Number of days", help_text="Only with 'Every N days'."
    )
    cycle_start = forms.DateField(
        required=False,
        widget=DATE_INPUT,
        label="Cycles start on",
        help_text="Blank: the milestone's start date.",
    )
    cycle_count = forms.IntegerField(
        required=False,
        label="Total cycles",
        help_text=f"At most {MAX_CYCLES}. Fixed calendar: blank fits as many whole cycles as the "
        "duration holds.",
    )
    periods = forms.CharField(
        required=False,
        label="Cycles (different duration for each)",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "ms-mono"}),
        help_text="One cycle per line: start, end[, name] — e.g. 2026-01-01, 2026-01-10, January sale.",
    )
    # 3. Customer enrolment
    enrolment_mode = forms.ChoiceField(
        choices=EnrolmentMode.choices,
        initial=EnrolmentMode.ALL_CUSTOMERS,
        widget=forms.RadioSelect,
        label="Enrol",
        help_text="Different targets for each customer are uploaded as a custom list.",
    )
    audience_group = forms.IntegerField(
        required=False, label="Audience group id", help_text="With the audience group enrolment."
    )
    template = forms.IntegerField(required=False, widget=forms.HiddenInput)
    # Edit only (removed from the create form): shown with the targets.
    rename_in_promotions = forms.BooleanField(
        required=False,
        label="Also rename it in the promotions that name it",
        help_text="When you rename a target that a promotion's condition names "
        '(targetAchieved("…"), targetName.contains("…"), …), rename it in those conditions '
        "too. Without it, such a rename is refused and the promotions are listed.",
    )

    DETAILS = ("name", "description", "start", "end", "till", "target_value_mode", "unified_mode")
    ADVANCED = ("leaderboard_enabled", "offset_days", "send_enrolment_trigger")
    CYCLES = (*CYCLE_FIELDS, "periods")
    ENROLMENT = ("enrolment_mode", "audience_group")

    def __init__(self, *args, organisation, group: TargetGroup | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.group = group
        self.fields["till"].queryset = Store.objects.filter(
            organisation=organisation, is_till=True
        ).order_by("code")
        self.fields["till"].shown_required = True
        if organisation is not None:
            self.fields["offset_days"].help_text += f" (now {organisation.offset_days})."
        if group is not None:
            self.lock(*self.locked_fields(group))
        else:
            del self.fields["rename_in_promotions"]

    def rename_field(self):
        """The "also rename it in the promotions" checkbox (edit only), or None."""
        return self["rename_in_promotions"] if "rename_in_promotions" in self.fields else None

    @staticmethod
    def locked_fields(group: TargetGroup) -> list[str]:
        """What an edit may not change (the service refuses or ignores these)."""
        locked = ["name", "target_value_mode", "unified_mode", "enrolment_mode"]
        if group.status() != MilestoneStatus.UPCOMING:
            locked += ["start", *MilestoneForm.CYCLES]
        return locked

    def lock(self, *names: str) -> None:
        for name in names:
            self.fields[name].disabled = True
            self.fields[name].widget.attrs["title"] = "Not editable"

    def section(self, names):
        return [self[name] for name in names]

    def details_fields(self):
        return self.section(self.DETAILS)

    def advanced_fields(self):
        return self.section(self.ADVANCED)

    def cycle_fields(self):
        return self.section(self.CYCLES)

    def enrolment_fields(self):
        return self.section(self.ENROLMENT)

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_periods(self):
        return parse_periods(self.cleaned_data.get("periods") or "")


# --- a target (part 4) with its sub-targets --------------------------------------------------


class TargetForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(max_length=200, required=False)
    kpi = forms.ChoiceField(
        choices=_blank("— choose a KPI —", Kpi.choices), required=False, label="KPI"
    )
    entity = forms.ChoiceField(
        choices=_blank("default for the KPI", Entity.choices),
        required=False,
        label="Tracked on",
        help_text="Line-item rules need the line item.",
    )
    event_name = forms.CharField(
        max_length=100,
        required=False,
        label="Event name",
        help_text=f"Behavioural event, or a customer-level event: {', '.join(CUSTOMER_EVENTS)}.",
    )
    attribute = forms.CharField(max_length=100, required=False, label="Event attribute")
    extended_field = forms.CharField(max_length=100, required=False)
    extended_field_value = forms.CharField(max_length=200, required=False)
    points_type = forms.ChoiceField(
        choices=_blank("—", PointsType.choices), required=False, label="Points type"
    )
    source_target_group = forms.ModelChoiceField(
        queryset=TargetGroup.objects.none(),
        required=False,
        label="Milestone achieved",
        help_text="For 'Milestones achieved': the shorter fixed-window milestone whose achievements count.",
    )
    value = forms.DecimalField(required=False, label="Target value")
    period_values = forms.CharField(
        required=False,
        label="Different value per cycle",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 30, "class": "ms-mono"}),
        help_text="One per line, e.g. P2 = 1500; other cycles use the target value.",
    )
    scope_stores = forms.MultipleChoiceField(
        required=False, label="Stores", widget=forms.SelectMultiple(attrs={"size": 4})
    )
    scope_zones = forms.MultipleChoiceField(
        required=False, label="Zones", widget=forms.SelectMultiple(attrs={"size": 4})
    )
    scope_concepts = forms.MultipleChoiceField(
        required=False, label="Concepts", widget=forms.SelectMultiple(attrs={"size": 4})
    )
    rule = forms.CharField(
        required=False,
        label="Rule",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "class": "ms-mono"}),
        help_text="e.g. currentTxn.value >= 100 — blank counts every activity.",
    )

    TRACKING = ("name", "kpi", "entity", "event_name", "attribute", "extended_field",
                "extended_field_value", "points_type", "source_target_group")  # fmt: skip
    VALUE = ("value", "period_values")
    FILTERS = ("scope_stores", "scope_zones", "scope_concepts", "rule")

    def __init__(self, *args, organisation=None, group: TargetGroup | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        stores = Store.objects.filter(organisation=organisation)
        self.fields["scope_stores"].choices = [(s.code, str(s)) for s in stores]
        self.fields["scope_zones"].choices = [
            (z, z) for z in stores.exclude(zone="").values_list("zone", flat=True).distinct()
        ]
        self.fields["scope_concepts"].choices = [
            (c, c) for c in stores.exclude(concept="").values_list("concept", flat=True).distinct()
        ]
        sources = TargetGroup.objects.filter(organisation=organisation)
        if group is not None:
            sources = sources.exclude(pk=group.pk)
        self.fields["source_target_group"].queryset = sources
        saved_target = group is not None and (self.initial or {}).get("id")
        if saved_target and group.status() != MilestoneStatus.UPCOMING:
            self.lock_tracking()
        # Sub-target rows: the existing ones (criteria fixed) plus a few blank ones.
        subs = list((self.initial or {}).get("sub_targets") or [])
        if self.is_bound:
            rows = 0
            while self.add_prefix(f"sub_{rows + 1}_name") in self.data:
                rows += 1
            rows = max(rows, len(subs))
        else:
            rows = len(subs) + SUB_TARGET_ROWS
        self.sub_rows = rows
        for i in range(1, rows + 1):
            existing = subs[i - 1] if i <= len(subs) else {}
            self.fields[f"sub_{i}_id"] = forms.IntegerField(
                required=False, widget=forms.HiddenInput, initial=existing.get("id")
            )
            self.fields[f"sub_{i}_name"] = forms.CharField(
                max_length=200, required=False, label="Name", initial=existing.get("name")
            )
            criteria = forms.ChoiceField(
                choices=SubTargetCriteria.choices,
                initial=existing.get("criteria") or SubTargetCriteria.ABSOLUTE,
                label="Criteria",
            )
            if existing.get("id"):
                criteria.disabled = True  # fixed after creation: only the value can change
                criteria.widget.attrs["title"] = "Not editable after creation"
            self.fields[f"sub_{i}_criteria"] = criteria
            self.fields[f"sub_{i}_value"] = forms.DecimalField(
                required=False, label="Value", initial=existing.get("value")
            )
            self.fields[f"sub_{i}_delete"] = forms.BooleanField(required=False, label="Remove")

    def lock_tracking(self) -> None:
        """A live milestone's existing target: what it tracks is shown as text (the service
        refuses a change of LOCKED_WHEN_LIVE, see milestones.catalogue)."""
        for name in LOCKED_WHEN_LIVE:
            field = self.fields[name]
            value = self.initial.get(name) or ""
            text = dict(getattr(field, "choices", ())).get(value, value) if value else "—"
            field.widget = LockedText(value, str(text))
            field.locked = True
            field.help_text = "Locked while the milestone is live."

    def tracking_fields(self):
        return [self[n] for n in self.TRACKING]

    def value_fields(self):
        return [self[n] for n in self.VALUE]

    def filter_fields(self):
        return [self[n] for n in self.FILTERS]

    def sub_target_rows(self):
        return [
            {
                "number": i,
                "id": self[f"sub_{i}_id"],
                "name": self[f"sub_{i}_name"],
                "criteria": self[f"sub_{i}_criteria"],
                "value": self[f"sub_{i}_value"],
                "delete": self[f"sub_{i}_delete"],
                "existing": bool(self[f"sub_{i}_id"].value()),
            }
            for i in range(1, self.sub_rows + 1)
        ]

    def clean_period_values(self):
        return parse_period_values(self.cleaned_data.get("period_values") or "")

    def clean(self):
        data = super().clean()
        subs = []
        for i in range(1, self.sub_rows + 1):
            sid = data.get(f"sub_{i}_id")
            name = (data.get(f"sub_{i}_name") or "").strip()
            value = data.get(f"sub_{i}_value")
            if data.get(f"sub_{i}_delete") and sid:
                continue
            if not sid and not name and value is None:
                continue  # an unused blank row
            sub = {"name": name, "criteria": data.get(f"sub_{i}_criteria"), "value": value}
            if sid:
                sub["id"] = sid
            subs.append(sub)
        data["sub_targets"] = subs
        return data

    def as_target_data(self) -> dict:
        d = self.cleaned_data
        out = {
            "name": (d.get("name") or "").strip(),
            "kpi": d.get("kpi") or "",
            "entity": d.get("entity") or None,
            "event_name": d.get("event_name") or "",
            "attribute": d.get("attribute") or "",
            "extended_field": d.get("extended_field") or "",
            "extended_field_value": d.get("extended_field_value") or "",
            "points_type": d.get("points_type") or "",
            "source_target_group": d["source_target_group"].pk
            if d.get("source_target_group")
            else None,
            "value": d.get("value"),
            "period_values": d.get("period_values") or {},
            "scope": {
                "stores": list(d.get("scope_stores") or []),
                "zones": list(d.get("scope_zones") or []),
                "concepts": list(d.get("scope_concepts") or []),
            },
            "rule": d.get("rule") or "",
            "sub_targets": d.get("sub_targets") or [],
        }
        if d.get("id"):
            out["id"] = d["id"]
        return out


class BaseTargetFormSet(forms.BaseFormSet):
    def __init__(self, *args, organisation=None, group=None, **kwargs):
        self.organisation = organisation
        self.group = group
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"organisation": self.organisation, "group": self.group}

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            organisation=self.organisation,
            group=self.group,
            renderer=self.renderer,
        )
        self.add_fields(form, None)
        return form

    def filled_forms(self) -> list[TargetForm]:
        """The forms that hold a target (blank rows are left out)."""
        keys = ("id", "name", "kpi", "rule", "sub_targets", "period_values")
        return [
            f
            for f in self.forms
            if any(f.cleaned_data.get(k) for k in keys) or f.cleaned_data.get("value") is not None
        ]


def target_formset(*, extra: int):
    return formset_factory(
        TargetForm, formset=BaseTargetFormSet, extra=extra, max_num=1000, absolute_max=1000
    )


# --- initial values --------------------------------------------------------------------------


def initial_from_payload(payload: dict, *, stored: bool = False) -> tuple[dict, list[dict]]:
    """Form initial values from the API's create shape: a template's payload (no name or
    dates), or a milestone's (`stored`, see initial_from_group)."""
    cycle = payload.get("cycle") or {}
    initial = {
        "description": payload.get("description") or "",
        "till": payload.get("till_code") or None,
        "target_value_mode": payload.get("target_value_mode") or TargetValueMode.SAME_FOR_ALL,
        "unified_mode": payload.get("unified_mode") or "",
        "leaderboard_enabled": bool(payload.get("leaderboard_enabled")),
        "offset_days": payload.get("offset_days"),
        "send_enrolment_trigger": payload.get("send_enrolment_trigger", True) is not False,
        "cycle_type": cycle.get("type") or CycleType.FIXED_CALENDAR,
        "cycle_frequency": cycle.get("frequency") or "",
        "cycle_days": cycle.get("days"),
        "cycle_start": cycle.get("start"),
        "cycle_count": cycle.get("count"),
        "periods": format_periods(cycle.get("periods") or []),
        "enrolment_mode": (payload.get("enrolment") or {}).get("mode")
        or EnrolmentMode.ALL_CUSTOMERS,
    }
    for key in ("name", "start", "end"):
        if payload.get(key):
            initial[key] = payload[key]
    targets = [_target_initial(t, stored=stored) for t in payload.get("targets") or []]
    return initial, targets


def initial_from_group(group: TargetGroup) -> tuple[dict, list[dict]]:
    """Form initial values for editing a milestone: its data shape with the ids of its
    targets and sub-targets, so the update keeps their rows."""
    return initial_from_payload(target_group_as_data(group, with_ids=True), stored=True)


def _target_initial(t: dict, *, stored: bool) -> dict:
    """A target's form values. `stored`: a milestone's own amounts, shown without the
    trailing zeros of the column (1500, not 1500.0000) and its cycle values in order."""
    amount = _normalized if stored else _as_given
    period_values = t.get("period_values") or {}
    if stored:  # keys "P1", "P2"... (target_group_as_data)
        period_values = dict(sorted(period_values.items(), key=lambda kv: int(kv[0][1:])))
    scope = t.get("scope") or {}
    out = {
        "name": t.get("name") or "",
        "kpi": t.get("kpi") or "",
        "entity": t.get("entity") or "",
        "event_name": t.get("event_name") or "",
        "attribute": t.get("attribute") or "",
        "extended_field": t.get("extended_field") or "",
        "extended_field_value": t.get("extended_field_value") or "",
        "points_type": t.get("points_type") or "",
        "source_target_group": t.get("source_target_group"),
        "value": amount(t.get("value")),
        "period_values": format_period_values({k: amount(v) for k, v in period_values.items()}),
        "scope_stores": scope.get("stores") or [],
        "scope_zones": scope.get("zones") or [],
        "scope_concepts": scope.get("concepts") or [],
        "rule": t.get("rule") or "",
        "sub_targets": [_sub_target_initial(s, amount) for s in t.get("sub_targets") or []],
    }
    if t.get("id"):
        out["id"] = t["id"]
    return out


def _sub_target_initial(s: dict, amount) -> dict:
    out = {"name": s.get("name"), "criteria": s.get("criteria"), "value": amount(s.get("value"))}
    if s.get("id"):
        out["id"] = s["id"]
    return out


def _as_given(value):
    return value


def _normalized(value):
    """A stored amount as a person edits it: 10000.0000 -> "10000", never "1E+4"."""
    return plain(value) if value is not None else None


# --- from the forms to the service's data, and back ------------------------------------------


def cycle_data(cd: dict) -> dict:
    ctype = cd.get("cycle_type") or CycleType.FIXED_CALENDAR
    cycle: dict = {"type": ctype}
    if ctype == CycleType.CUSTOM_PERIODS:
        cycle["periods"] = cd.get("periods") or []
        return cycle
    if ctype in (CycleType.FIXED_CALENDAR, CycleType.CYCLIC):
        cycle["frequency"] = cd.get("cycle_frequency") or ""
        cycle["days"] = cd.get("cycle_days")
    cycle["start"] = cd.get("cycle_start")
    cycle["count"] = cd.get("cycle_count")
    return cycle


def create_data(form: MilestoneForm, targets: list[dict]) -> dict:
    cd = form.cleaned_data
    enrolment = {"mode": cd.get("enrolment_mode")}
    if cd.get("audience_group") is not None:
        enrolment["audience_group"] = cd["audience_group"]
    return {
        "name": cd["name"],
        "description": cd.get("description") or "",
        "start": cd.get("start"),
        "end": cd.get("end"),
        "till_code": cd["till"].code if cd.get("till") else None,
        "target_value_mode": cd.get("target_value_mode"),
        "unified_mode": cd.get("unified_mode") or "",
        "leaderboard_enabled": bool(cd.get("leaderboard_enabled")),
        "offset_days": cd.get("offset_days"),
        "send_enrolment_trigger": bool(cd.get("send_enrolment_trigger")),
        "cycle": cycle_data(cd),
        "enrolment": enrolment,
        "targets": targets,
    }


def update_data(form: MilestoneForm, targets: list[dict]) -> dict:
    """Only what an edit may change: locked fields are left out, so the service keeps them."""
    cd = form.cleaned_data
    data = {
        "description": cd.get("description") or "",
        "end": cd.get("end"),
        "till_code": cd["till"].code if cd.get("till") else None,
        "leaderboard_enabled": bool(cd.get("leaderboard_enabled")),
        "offset_days": cd.get("offset_days"),
        "send_enrolment_trigger": bool(cd.get("send_enrolment_trigger")),
        "targets": targets,
        "rename_in_promotions": bool(cd.get("rename_in_promotions")),
    }
    if not form.fields["start"].disabled:
        data["start"] = cd.get("start")
        data["cycle"] = cycle_data(cd)
    if cd.get("audience_group") is not None:
        data["enrolment"] = {"audience_group": cd["audience_group"]}
    return data


FORM_KEYS = {
    "name": "name",
    "description": "description",
    "start": "start",
    "end": "end",
    "till_code": "till",
    "till": "till",
    "target_value_mode": "target_value_mode",
    "unified_mode": "unified_mode",
    "offset_days": "offset_days",
    "leaderboard_enabled": "leaderboard_enabled",
    "cycle": "cycle_type",
    "enrolment": "enrolment_mode",
    "enrolment_mode": "enrolment_mode",
    "rename_in_promotions": "rename_in_promotions",
}
TARGET_MESSAGE = re.compile(r"^Target (\d+)\b")


def apply_service_errors(
    exc: ValidationError, form: MilestoneForm, target_forms: list[TargetForm]
) -> list[str]:
    """Put the service's messages next to what they are about.

    Returns the messages about the targets as a whole (shown at the top of part 4). A message
    "Target 2 (...): ..." goes on the second target sent, at the field its code names
    (`target_field:kpi`) if any; a key the form does not know goes to the non-field errors at
    the top of the page.
    """
    target_errors: list[str] = []
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return target_errors
    for key, errors in exc.error_dict.items():
        for error in errors:
            message = next(iter(error))
            code = error.code or ""
            if key == "targets":
                match = TARGET_MESSAGE.match(message)
                index = int(match.group(1)) - 1 if match else -1
                field = (
                    code[len(TARGET_FIELD_CODE) :] if code.startswith(TARGET_FIELD_CODE) else None
                )
                if 0 <= index < len(target_forms):
                    tform = target_forms[index]
                    tform.add_error(field if field in tform.fields else None, message)
                else:
                    target_errors.append(message)
            elif key.startswith("cycle_") and key in form.fields:
                form.add_error(key, message)
            elif key in FORM_KEYS and FORM_KEYS[key] in form.fields:
                form.add_error(FORM_KEYS[key], message)
            elif key in ("__all__", "non_field_errors", "is_active", "template"):
                form.add_error(None, message)
            else:
                form.add_error(None, f"{key}: {message}")
    return target_errors


class NameForm(forms.Form):
    """The intermediate page of 'clone' and 'save as template': a new name."""

    name = forms.CharField(max_length=200, label="New name")

    def clean_name(self):
        return self.cleaned_data["name"].strip()


class CloneForm(NameForm):
    enrolment_mode = forms.ChoiceField(
        choices=EnrolmentMode.choices,
        widget=forms.RadioSelect,
        label="Customer enrolment",
        help_text="Enrolment is never copied: choose it for the clone.",
    )
    audience_group = forms.IntegerField(required=False, label="Audience group id")
