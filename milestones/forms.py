"""Forms of the milestone configuration screens (admin).

These forms only parse what a configurer typed into the API's `data` shape (see
../shared/API.md), and back: `initial_from_group` builds on the one data shape of a
milestone, `target_group_as_data`. Every configuration rule is checked by
milestones.services.target_groups; its ValidationError is mapped back onto the forms by
`apply_service_errors`, each message at the input it is about (the service's error codes name
it), so the screens and the API refuse the same things with the same messages.

What the screen shows follows the choices (`kpi_fields`, `cycle_fields_for`, the enrolment
mode): a field that does not apply is not rendered and is cleared on save, with or without
JavaScript. The live parts (the cycles listed as they are computed, the per-cycle values grid,
the rule checked while typing, sub-target thresholds in values) are computed here too and
re-rendered as fragments by the admin views (htmx).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory
from django.utils.html import format_html

from common.numbers import grouped, plain
from rules import RuleError, validate_rule

from .catalogue import (
    BACKDATE_MONTHS,
    CUSTOMER_EVENTS,
    KPI_ENTITIES,
    LOCKED_WHEN_LIVE,
    MAX_CYCLES,
    PERCENTAGE_KPIS,
)
from .models import (
    CycleType,
    EnrolmentMode,
    Entity,
    EventKind,
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
from .selectors import closest_event_name, event_catalogue
from .services.target_groups import (
    TARGET_FIELD_CODE,
    milestones_achieved_source_problems,
    target_group_as_data,
)
from .services.target_groups.validation.cycles import resolve_cycles
from .services.target_groups.validation.errors import FIELD_CODE, Errors
from .thresholds import threshold

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
CYCLE_FIELDS = ("cycle_type", "cycle_frequency", "cycle_days", "cycle_start", "cycle_count")
DAY = "%d %b %Y"  # how a calendar date is shown: 01 Jan 2026


def _blank(label: str, choices) -> list[tuple[str, str]]:
    return [("", label), *choices]


# --- what applies to a choice ----------------------------------------------------------------

#: The cycle fields each cycle type asks for (custom periods: the grid of periods instead).
CYCLE_TYPE_FIELDS = {
    CycleType.FIXED_CALENDAR: ("cycle_frequency", "cycle_days", "cycle_start", "cycle_count"),
    CycleType.CYCLIC: ("cycle_frequency", "cycle_days", "cycle_start", "cycle_count"),
    CycleType.CUSTOM_PERIODS: (),
    CycleType.TILL_ACHIEVEMENT: ("cycle_start", "cycle_count"),
}


def cycle_fields_for(cycle_type: str, frequency: str) -> tuple[str, ...]:
    """The cycle fields shown for a cycle type ("Number of days" only with "Every N days")."""
    names = CYCLE_TYPE_FIELDS.get(cycle_type, CYCLE_TYPE_FIELDS[CycleType.FIXED_CALENDAR])
    return tuple(n for n in names if n != "cycle_days" or frequency == Frequency.DAYS)


def kpi_fields(kpi: str) -> tuple[str, ...]:
    """The tracking fields a KPI needs besides the target's name and KPI (what the service
    checks in `_check_what_the_kpi_needs`, `_points_type` and `_source`)."""
    shown = []
    if len(KPI_ENTITIES.get(kpi, ())) > 1:
        shown.append("entity")
    if kpi.startswith(("event_", "customer_event_")):
        shown.append("event_name")
    if kpi in (Kpi.EVENT_SUM, Kpi.EVENT_DAILY_MAX_SUM):
        shown.append("attribute")
    if kpi.startswith("extended_field_"):
        shown.append("extended_field")
    if kpi == Kpi.EXTENDED_FIELD_COUNT:
        shown.append("extended_field_value")
    if kpi == Kpi.POINTS:
        shown.append("points_type")
    if kpi == Kpi.MILESTONES_ACHIEVED:
        shown.append("source_target_group")
    return tuple(shown)


def hx(url: str | None, part: str, target: str, *, trigger: str = "change", swap="outerHTML",
       **vals) -> dict:  # fmt: skip
    """htmx attributes for an input that re-renders `part` of the form when it changes (the
    whole form is posted: htmx sends the enclosing form's values)."""
    if not url:
        return {}
    payload = ", ".join(f'"{k}": "{v}"' for k, v in {"_part": part, **vals}.items())
    return {
        "hx-post": url,
        "hx-trigger": trigger,
        "hx-target": target,
        "hx-swap": swap,
        "hx-vals": "{" + payload + "}",
    }


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


def _as_text(field: forms.Field, value) -> str:
    """A locked value as a person reads it: a choice's label, a date, a plain number."""
    choices = dict(getattr(field, "choices", ()) or ())
    if value in (None, ""):
        return str(choices.get("", "—")) if "" in choices and choices[""][:1] != "—" else "—"
    if isinstance(value, date):
        return value.strftime(DAY)
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        return grouped(value)
    if isinstance(value, TargetGroup):
        return value.name
    return str(choices.get(value, choices.get(str(value), value)))


def lock(field: forms.Field, value, *, disabled: bool = True) -> None:
    """Show `field` as text. `disabled`: the posted value is ignored (the form keeps its
    initial); otherwise the hidden input sends it back for the service to check."""
    field.widget = LockedText(value.pk if isinstance(value, TargetGroup) else value,
                              _as_text(field, value))  # fmt: skip
    field.disabled = disabled
    field.locked = True
    field.help_text = ""  # how to fill it in no longer applies


def _forget(form: forms.Form, names) -> None:
    """Fields the choices do not show: whatever was posted in them is neither checked nor
    kept (cleared on save)."""
    for name in names:
        form._errors.pop(name, None)
        form.cleaned_data[name] = form.fields[name].empty_value if hasattr(
            form.fields[name], "empty_value") else None  # fmt: skip


def _peek(form: forms.Form, name: str):
    """What a field of `form` holds now, parsed; None when blank or not (yet) valid. For the
    live parts: no error is recorded."""
    bf = form[name]
    try:
        return bf.field.clean(bf.value())
    except ValidationError:
        return None


# --- structured text fields (still accepted: the shape of older pages and scripts) ---------


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


# --- the cycles as they are computed -----------------------------------------------------------


@dataclass
class CycleRow:
    ordinal: int
    name: str
    start: date | None = None  # None: each customer's own dates (cyclic, till achievement)
    end: date | None = None
    dropped: bool = False  # a live milestone's cycle that ends after the new end date

    @property
    def starts(self) -> str:
        return f"{self.start:{DAY}} 00:00" if self.start else "—"

    @property
    def ends(self) -> str:
        return f"{self.end:{DAY}} 23:59:59" if self.end else "—"


@dataclass
class CyclePreview:
    """The milestone's cycles as its fields stand (what the service will compute)."""

    rows: list[CycleRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    note: str = ""
    cycle_fields: dict | None = None  # the service's cycle fields when accepted
    timezone: str = "UTC"

    @property
    def per_customer(self) -> bool:
        return bool(self.rows) and self.rows[0].start is None

    @property
    def dropped(self) -> list[CycleRow]:
        return [r for r in self.rows if r.dropped]

    def ordinal_of(self, key: str) -> int | None:
        """The cycle a per-cycle value key names ("P2", "2" or a period's name)."""
        for row in self.rows:
            if row.name == key:
                return row.ordinal
        match = re.fullmatch(r"[PpCc]?(\d+)", str(key).strip())
        return int(match.group(1)) if match else None


def _messages(errors: Errors) -> list[str]:
    out = []
    for items in errors.items.values():
        for item in items:
            out.append(item.message if isinstance(item, ValidationError) else str(item))
    return out


def _per_customer_rows(count) -> list[CycleRow]:
    return [CycleRow(k, f"Cycle {k}") for k in range(1, min(int(count or 0), MAX_CYCLES) + 1)]


# --- the milestone (parts 1 to 3 and the advanced settings) ----------------------------------


class MilestoneForm(forms.Form):
    # 1. Milestone details
    name = forms.CharField(
        max_length=200,
        help_text="Cannot be changed after creation; think twice before saving.",
        error_messages={"required": "A milestone needs a name."},
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )
    start = forms.DateField(
        widget=DATE_INPUT,
        help_text=f"At most {BACKDATE_MONTHS} months in the past.",
        error_messages={"required": "Choose the day the milestone starts."},
    )
    end = forms.DateField(
        widget=DATE_INPUT, error_messages={"required": "Choose the day the milestone ends."}
    )
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
    )
    cycle_days = forms.IntegerField(required=False, label="Number of days", min_value=1)
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
    # The custom periods as lines of text ("start, end[, name]"): no longer shown (the grid of
    # period_N_start/end/name rows replaces it), still read when sent.
    periods = forms.CharField(required=False, widget=forms.HiddenInput)
    # 3. Customer enrolment
    enrolment_mode = forms.ChoiceField(
        choices=EnrolmentMode.choices,
        initial=EnrolmentMode.ALL_CUSTOMERS,
        widget=forms.RadioSelect,
        label="Enrol",
        help_text="Different targets for each customer are uploaded as a custom list.",
    )
    audience_group = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        required=False,
        label="Audience group",
        help_text="Its members are enrolled, and follow it as it changes. Blank: link one later.",
        error_messages={"invalid_choice": "Choose one of your organisation's audience groups."},
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
    # Edit of a started milestone only: shown when the new end date cuts its last cycles.
    drop_cycles = forms.BooleanField(required=False, label="Drop the cycles")

    DETAILS = ("name", "description", "start", "end", "till", "target_value_mode", "unified_mode")
    ADVANCED = ("leaderboard_enabled", "offset_days", "send_enrolment_trigger")
    CYCLES = (*CYCLE_FIELDS, "periods")
    ENROLMENT = ("enrolment_mode", "audience_group")

    def __init__(self, *args, organisation, group: TargetGroup | None = None,
                 audience_groups=(), hx_url: str | None = None, **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.group = group
        self.hx_url = hx_url
        self.fields["till"].queryset = Store.objects.filter(
            organisation=organisation, is_till=True
        ).order_by("code")
        self.fields["till"].shown_required = True
        self.fields["audience_group"].choices = _blank(
            "— choose an audience group —", [(str(k), v) for k, v in audience_groups]
        )
        if organisation is not None:
            self.fields["offset_days"].help_text += f" (now {organisation.offset_days})."
        self.cycles_locked = group is not None and group.status() != MilestoneStatus.UPCOMING
        self._add_period_rows()
        self._live_checks()
        if group is not None:
            for name in self.locked_fields(group):
                lock(self.fields[name], self.initial.get(name, self.fields[name].initial))
        else:
            del self.fields["rename_in_promotions"]
        if not (self.cycles_locked and group.has_fixed_periods):
            del self.fields["drop_cycles"]
        self._preview: CyclePreview | None = None

    # --- what is chosen, and what it shows ----------------------------------------------------

    def chosen(self, name: str) -> str:
        """The value of a choice as it stands (posted, else initial)."""
        value = self[name].value()
        return "" if value is None else str(value)

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

    def section(self, names):
        return [self[name] for name in names if name in self.fields]

    def details_fields(self):
        return self.section(self.DETAILS)

    def advanced_fields(self):
        return self.section(self.ADVANCED)

    def cycle_fields(self):
        """The cycle fields of the chosen cycle type."""
        ctype = self.chosen("cycle_type") or CycleType.FIXED_CALENDAR
        names = ("cycle_type", *cycle_fields_for(ctype, self.chosen("cycle_frequency")))
        return self.section(names)

    def enrolment_fields(self):
        names = ["enrolment_mode"]
        if self.chosen("enrolment_mode") == EnrolmentMode.AUDIENCE_GROUP:
            names.append("audience_group")
        return self.section(names)

    def shows_periods(self) -> bool:
        return self.chosen("cycle_type") == CycleType.CUSTOM_PERIODS and not self.cycles_locked

    # --- the custom periods grid ----------------------------------------------------------------

    def _add_period_rows(self) -> None:
        if self.is_bound:
            rows = 0
            while self.add_prefix(f"period_{rows + 1}_start") in self.data:
                rows += 1
            given = []
        else:
            given = list(self.initial.get("period_rows") or [])
            rows = len(given) + 1  # and one blank row to fill
        self.period_rows = 0 if self.cycles_locked else max(rows, 1)
        for i in range(1, self.period_rows + 1):
            existing = given[i - 1] if i <= len(given) else {}
            self.fields[f"period_{i}_name"] = forms.CharField(
                required=False, max_length=200, label=f"Name of cycle {i}",
                initial=existing.get("name"),
            )  # fmt: skip
            self.fields[f"period_{i}_start"] = forms.DateField(
                required=False, widget=DATE_INPUT, label=f"Start of cycle {i}",
                initial=existing.get("start"),
            )  # fmt: skip
            self.fields[f"period_{i}_end"] = forms.DateField(
                required=False, widget=DATE_INPUT, label=f"End of cycle {i}",
                initial=existing.get("end"),
            )  # fmt: skip

    def period_row_fields(self):
        return [
            {
                "number": i,
                "start": self[f"period_{i}_start"],
                "end": self[f"period_{i}_end"],
                "name": self[f"period_{i}_name"],
            }
            for i in range(1, self.period_rows + 1)
        ]

    # --- live checks --------------------------------------------------------------------------

    def _live_checks(self) -> None:
        url = self.hx_url
        fields = self.fields
        for name in ("cycle_type", "cycle_frequency"):
            fields[name].widget.attrs.update(hx(url, "cycles", "#ms-cycles"))
        preview = hx(url, "preview", "#ms-cycle-preview")
        for name in ("name", "start", "end", "cycle_days", "cycle_start", "cycle_count",
                     "target_value_mode"):  # fmt: skip
            fields[name].widget.attrs.update(preview)
        for i in range(1, self.period_rows + 1):
            for part in ("start", "end", "name"):
                fields[f"period_{i}_{part}"].widget.attrs.update(preview)
        fields["enrolment_mode"].widget.attrs.update(hx(url, "enrolment", "#ms-enrolment"))

    def cycle_preview(self) -> CyclePreview:
        if self._preview is None:
            self._preview = self._compute_preview()
        return self._preview

    def _compute_preview(self) -> CyclePreview:
        tz = self.organisation.timezone if self.organisation is not None else "UTC"
        group = self.group
        if self.cycles_locked:
            end = _peek(self, "end") or group.end
            fields = {name: getattr(group, name) for name in CYCLE_FIELDS}
            if group.has_fixed_periods:
                rows = [CycleRow(p.ordinal, p.name, p.start, p.end, dropped=p.end > end)
                        for p in group.periods.all()]  # fmt: skip
            else:
                rows = _per_customer_rows(group.cycle_count)
            return CyclePreview(rows, [], _cycle_note(fields), fields, tz)
        start, end = _peek(self, "start"), _peek(self, "end")
        if not start or not end or end < start:
            return CyclePreview(
                note="Fill in the milestone's start and end dates to see its cycles.", timezone=tz
            )
        ctype = self.chosen("cycle_type") or CycleType.FIXED_CALENDAR
        frequency = self.chosen("cycle_frequency")
        cycle = {
            "type": ctype,
            "frequency": frequency,
            "days": _peek(self, "cycle_days") if frequency == Frequency.DAYS else None,
            "start": _peek(self, "cycle_start"),
            "count": _peek(self, "cycle_count"),
            "periods": self._periods_now(),
        }
        errors = Errors()
        name = (group.name if group else self.chosen("name").strip()) or "Milestone"
        mode = self.chosen("target_value_mode") or TargetValueMode.SAME_FOR_ALL
        fields, periods = resolve_cycles(name, start, end, cycle, mode, errors)
        problems = _messages(errors)
        if problems:
            return CyclePreview([], problems, "", None, tz)
        if periods:
            rows = [CycleRow(p.ordinal, p.name, p.start, p.end) for p in periods]
        else:
            rows = _per_customer_rows(fields.get("cycle_count"))
        return CyclePreview(rows, [], _cycle_note(fields), fields, tz)

    def _periods_now(self) -> list[dict]:
        out = []
        for i in range(1, self.period_rows + 1):
            start, end = _peek(self, f"period_{i}_start"), _peek(self, f"period_{i}_end")
            name = (self.chosen(f"period_{i}_name") or "").strip()
            if start or end or name:
                out.append({"start": start, "end": end, **({"name": name} if name else {})})
        return out

    def drop_names(self) -> list[str]:
        """The cycles a started milestone's new end date would drop."""
        if "drop_cycles" not in self.fields:
            return []
        return [r.name for r in self.cycle_preview().dropped]

    def drop_field(self):
        """The "Drop cycles ..." checkbox, labelled with the cycles, when the end cuts some."""
        names = self.drop_names()
        if not names:
            return None
        plural = "s" if len(names) > 1 else ""
        self.fields["drop_cycles"].label = (
            f"Drop cycle{plural} {', '.join(names)} that end{'' if plural else 's'} after the "
            "new end date"
        )
        drop = self.fields["drop_cycles"]
        drop.help_text = (
            "Only cycles not started yet can be dropped; their per-cycle values go too."
        )
        return self["drop_cycles"]

    def target_context(self, *, catalogue: list[dict] | None = None) -> TargetContext:
        """What every target block needs from the milestone: its cycles (the per-cycle values
        grid, the 'milestones achieved' sources that qualify), the event catalogue, the
        stores."""
        preview = self.cycle_preview()
        return TargetContext(
            organisation=self.organisation,
            group=self.group,
            cycles=preview,
            cycle_type=self.chosen("cycle_type") or CycleType.FIXED_CALENDAR,
            dates=(_peek(self, "start"), _peek(self, "end")),
            hx_url=self.hx_url,
            catalogue=catalogue,
        )

    # --- cleaning -----------------------------------------------------------------------------

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_periods(self):
        return parse_periods(self.cleaned_data.get("periods") or "")

    def clean(self):
        data = super().clean()
        # the periods typed as lines (older pages), then the grid's rows, in order
        periods = list(data.get("periods") or [])
        self.legacy_periods = len(periods)
        self.sent_period_rows: list[int] = []
        for i in range(1, self.period_rows + 1):
            start, end = data.get(f"period_{i}_start"), data.get(f"period_{i}_end")
            name = (data.get(f"period_{i}_name") or "").strip()
            raw = [self[f"period_{i}_{p}"].value() for p in ("start", "end", "name")]
            if not any(raw):
                continue  # an unused row
            periods.append({"start": start, "end": end, **({"name": name} if name else {})})
            self.sent_period_rows.append(i)
        # what the choices do not show is cleared
        hidden = []
        if self.chosen("enrolment_mode") != EnrolmentMode.AUDIENCE_GROUP:
            hidden.append("audience_group")
        if not self.cycles_locked:
            shown = {bf.name for bf in self.cycle_fields()}
            hidden += [n for n in CYCLE_FIELDS if n not in shown]
            if not self.shows_periods():
                hidden += [n for n in self.fields if n.startswith("period_")]
                periods = []
                self.sent_period_rows = []
        _forget(self, hidden)
        data["periods"] = periods
        return data

    def field_for(self, key: str, code: str = "") -> str | None:
        """The field a service error (`key`, `code`) belongs at, if shown."""
        if key == "cycle":
            part = code[len(FIELD_CODE) :] if code.startswith(FIELD_CODE) else ""
            name = {"type": "cycle_type", "frequency": "cycle_frequency", "days": "cycle_days",
                    "start": "cycle_start", "count": "cycle_count"}.get(part)  # fmt: skip
            match = re.fullmatch(r"periods\.(\d+)\.(start|end|name)", part)
            if match and self.shows_periods():
                index = int(match.group(1)) - getattr(self, "legacy_periods", 0)
                rows = getattr(self, "sent_period_rows", [])
                if 1 <= index <= len(rows):
                    name = f"period_{rows[index - 1]}_{match.group(2)}"
            elif part == "periods" and self.shows_periods():
                name = "period_1_start"
            shown = {bf.name for bf in self.cycle_fields()}
            if name and (name in shown or name.startswith("period_")):
                return name
            return "cycle_type"
        name = FORM_KEYS.get(key)
        return name if name in self.fields else None


def _cycle_note(fields: dict) -> str:
    ctype = fields.get("cycle_type")
    frequency = Frequency(fields["cycle_frequency"]).label.lower() if fields.get(
        "cycle_frequency") else ""  # fmt: skip
    if fields.get("cycle_frequency") == Frequency.DAYS:
        frequency = f"every {fields.get('cycle_days')} days"
    first = fields.get("cycle_start")
    since = f" on or after {first:{DAY}}" if first else ""
    if ctype == CycleType.CYCLIC:
        return (
            f"Each customer's cycles start at their first tracked activity{since} and run "
            f"{frequency} on a 24-hour basis."
        )
    if ctype == CycleType.TILL_ACHIEVEMENT:
        return (
            f"A cycle starts at the customer's first tracked activity{since} and closes when the "
            "target is reached; the next begins at once."
        )
    return "Calendar days run from 00:00 to 23:59:59."


# --- a target (part 4) with its sub-targets --------------------------------------------------


@dataclass
class TargetContext:
    """What the target blocks share: the milestone's cycles as they stand, the event
    catalogue, the stores, the sources a 'milestones achieved' target may count. Read once
    per page, however many targets."""

    organisation: object = None
    group: TargetGroup | None = None
    cycles: CyclePreview = field(default_factory=CyclePreview)
    cycle_type: str = CycleType.FIXED_CALENDAR
    dates: tuple = (None, None)
    hx_url: str | None = None
    catalogue: list[dict] | None = None
    _cache: dict = field(default_factory=dict)

    def _once(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def events(self) -> list[dict]:
        if self.catalogue is None:
            self.catalogue = event_catalogue(self.organisation) if self.organisation else []
        return self.catalogue

    def event_names(self, kind: str) -> list[str]:
        return [e["name"] for e in self.events() if e["kind"] == kind]

    def attributes_of(self, name: str) -> list[str]:
        for e in self.events():
            if e["name"] == name and e["kind"] == EventKind.BEHAVIOURAL:
                return e["attributes"]
        return []

    def stores(self) -> list[tuple[str, str]]:
        return self._once("stores", lambda: [
            (s.code, str(s)) for s in Store.objects.filter(organisation=self.organisation)
        ])  # fmt: skip

    def distinct(self, column: str) -> list[str]:
        """Each zone (or concept) once, sorted."""
        return self._once(column, lambda: sorted(set(
            Store.objects.filter(organisation=self.organisation).exclude(**{column: ""})
            .values_list(column, flat=True)
        )))  # fmt: skip

    def sources(self) -> list[TargetGroup]:
        """The organisation's other milestones a 'milestones achieved' target may count
        (the reference's criteria, against this milestone's cycles when they are known)."""
        return self._once("sources", self._sources)

    def _sources(self) -> list[TargetGroup]:
        if self.organisation is None or self.cycle_type != CycleType.FIXED_CALENDAR:
            return []
        qs = (
            TargetGroup.objects.filter(
                organisation=self.organisation,
                is_active=True,
                cycle_type__in=(CycleType.FIXED_CALENDAR, CycleType.CUSTOM_PERIODS),
            )
            .prefetch_related("periods")
            .order_by("name")
        )
        if self.group is not None:
            qs = qs.exclude(pk=self.group.pk)
        fields = self.cycles.cycle_fields
        if not fields or not all(self.dates):
            return list(qs)
        return [s for s in qs if not milestones_achieved_source_problems(s, fields, self.dates)]


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
    event_name = forms.CharField(max_length=100, required=False, label="Event name")
    attribute = forms.CharField(max_length=100, required=False, label="Event attribute")
    extended_field = forms.CharField(max_length=100, required=False)
    extended_field_value = forms.CharField(max_length=200, required=False)
    points_type = forms.ChoiceField(
        choices=PointsType.choices, required=False, label="Points type",
        initial=PointsType.BOTH,
    )  # fmt: skip
    source_target_group = forms.ModelChoiceField(
        queryset=TargetGroup.objects.none(),
        required=False,
        label="Milestone achieved",
        empty_label="— choose a milestone —",
        help_text="The milestone whose achievements count: fixed calendar window, active, "
        "shorter cycles, inside this milestone's dates.",
    )
    value = forms.DecimalField(required=False, label="Target value")
    # Per-cycle values as lines ("P2 = 1500"): no longer shown (the grid's cv_N inputs replace
    # it), still read when sent.
    period_values = forms.CharField(required=False, widget=forms.HiddenInput)
    scope_stores = forms.MultipleChoiceField(
        required=False, label="Stores", widget=forms.CheckboxSelectMultiple
    )
    scope_zones = forms.MultipleChoiceField(
        required=False, label="Zones", widget=forms.CheckboxSelectMultiple
    )
    scope_concepts = forms.MultipleChoiceField(
        required=False, label="Concepts", widget=forms.CheckboxSelectMultiple
    )
    rule = forms.CharField(
        required=False,
        label="Rule",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "class": "ms-mono"}),
        help_text="e.g. currentTxn.value >= 100 — blank counts every activity. Checked as you type.",
    )

    TRACKING = ("name", "kpi", "entity", "event_name", "attribute", "extended_field",
                "extended_field_value", "points_type", "source_target_group")  # fmt: skip
    VALUE = ("value",)
    FILTERS = ("scope_stores", "scope_zones", "scope_concepts", "rule")

    def __init__(self, *args, organisation=None, group: TargetGroup | None = None,
                 context: TargetContext | None = None, **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.group = group
        self.context = context or TargetContext(organisation=organisation, group=group)
        ctx = self.context
        self.fields["scope_stores"].choices = ctx.stores()
        self.fields["scope_zones"].choices = [(z, z) for z in ctx.distinct("zone")]
        self.fields["scope_concepts"].choices = [(c, c) for c in ctx.distinct("concept")]
        for name in ("scope_stores", "scope_zones", "scope_concepts"):
            self.fields[name].filterable = True
        self.kpi = self._chosen("kpi")
        self._fit_to_kpi()
        saved_target = group is not None and (self.initial or {}).get("id")
        self.tracking_locked = bool(saved_target and group.status() != MilestoneStatus.UPCOMING)
        if self.tracking_locked:
            self.lock_tracking()
        self._add_sub_target_rows()
        self._add_cycle_value_fields()
        self._live_checks()

    def _chosen(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(self.add_prefix(name)) or "")
        return str((self.initial or {}).get(name) or "")

    # --- the fields of the chosen KPI ---------------------------------------------------------

    def _fit_to_kpi(self) -> None:
        kpi, ctx = self.kpi, self.context
        if kpi in KPI_ENTITIES:
            self.fields["entity"].choices = [(e, Entity(e).label) for e in KPI_ENTITIES[kpi]]
        event = self.fields["event_name"]
        if kpi.startswith("customer_event_"):
            names = ctx.event_names(EventKind.CUSTOMER) or list(CUSTOMER_EVENTS)
            event.widget = forms.Select(
                choices=_blank("— choose an event —", [(n, n.replace("_", " ")) for n in names])
            )
            event.help_text = "A customer-level event."
        else:
            event.widget = forms.TextInput(attrs={"list": f"events-{self.prefix}"})
            event.help_text = (
                "A behavioural event of the organisation's catalogue (names are case-sensitive)."
            )
            self.fields["attribute"].widget = forms.TextInput(
                attrs={"list": f"attributes-{self.prefix}"}
            )
        ids = [s.pk for s in ctx.sources()]
        current = (self.initial or {}).get("source_target_group")
        if current and kpi == Kpi.MILESTONES_ACHIEVED:
            ids.append(current)  # the service says why it no longer qualifies, if it does not
        self.fields["source_target_group"].queryset = TargetGroup.objects.filter(
            pk__in=ids
        ).order_by("name")
        if kpi == Kpi.MILESTONES_ACHIEVED and ctx.cycle_type != CycleType.FIXED_CALENDAR:
            self.fields["source_target_group"].help_text = (
                "Only a milestone with a fixed calendar window can count milestones achieved: "
                "choose that cycle type first."
            )

    def applicable(self) -> tuple[str, ...]:
        return kpi_fields(self.kpi)

    def lock_tracking(self) -> None:
        """A live milestone's existing target: what it tracks is shown as text (the service
        refuses a change of LOCKED_WHEN_LIVE, see milestones.catalogue)."""
        for name in LOCKED_WHEN_LIVE:
            field_ = self.fields[name]
            value = self.initial.get(name) or ""
            if name == "kpi":
                field_.choices = Kpi.choices
            lock(field_, value, disabled=False)
            field_.help_text = "Locked while the milestone is live."

    def tracking_fields(self):
        shown = self.applicable()
        names = [
            n
            for n in self.TRACKING
            if n in ("name", "kpi")
            or n in shown
            or (getattr(self.fields[n], "locked", False) and self.initial.get(n))
        ]
        return [self[n] for n in names]

    def value_fields(self):
        return [self[n] for n in self.VALUE]

    def filter_fields(self):
        return [self[n] for n in self.FILTERS]

    def scope_fields(self):
        return [self[n] for n in self.FILTERS if n != "rule"]

    def event_help(self) -> dict:
        """The event catalogue's names for the picker, and a warning about a name it does
        not know (tracking counts only that exact, case-sensitive name)."""
        if not self.kpi.startswith("event_"):
            return {}
        names = self.context.event_names(EventKind.BEHAVIOURAL)
        name = self._chosen("event_name").strip()
        out = {"names": names, "attributes": self.context.attributes_of(name), "warning": ""}
        if name and name not in names:
            near = closest_event_name(name, names)
            out["warning"] = (
                f"“{name}” has never been received and is not in the event catalogue: the "
                "target counts nothing until activities with this exact name arrive."
                + (f" Did you mean “{near}”?" if near else "")
            )
        return out

    # --- sub-targets ----------------------------------------------------------------------------

    def _add_sub_target_rows(self) -> None:
        """The existing sub-targets (criteria fixed) and, when posted, the rows added with
        "Add sub-target"."""
        subs = list((self.initial or {}).get("sub_targets") or [])
        if self.is_bound:
            rows = 0
            while self.add_prefix(f"sub_{rows + 1}_name") in self.data:
                rows += 1
            rows = max(rows, len(subs))
        else:
            rows = len(subs)
        self.sub_rows = rows
        for i in range(1, rows + 1):
            existing = subs[i - 1] if i <= len(subs) else {}
            self.fields[f"sub_{i}_id"] = forms.IntegerField(
                required=False, widget=forms.HiddenInput, initial=existing.get("id")
            )
            self.fields[f"sub_{i}_name"] = forms.CharField(
                max_length=200, required=False, label=f"Name of sub-target {i}",
                initial=existing.get("name"),
            )  # fmt: skip
            criteria = forms.ChoiceField(
                choices=SubTargetCriteria.choices,
                initial=existing.get("criteria") or SubTargetCriteria.ABSOLUTE,
                label=f"Achievement criteria of sub-target {i}",
            )
            if existing.get("id"):
                # fixed after creation: only the value can change
                lock(criteria, existing.get("criteria") or SubTargetCriteria.ABSOLUTE)
            self.fields[f"sub_{i}_criteria"] = criteria
            self.fields[f"sub_{i}_value"] = forms.DecimalField(
                required=False, label=f"Value of sub-target {i}", initial=existing.get("value")
            )
            self.fields[f"sub_{i}_delete"] = forms.BooleanField(
                required=False, label=f"Remove sub-target {i}"
            )

    def sub_target_rows(self):
        target_value = self._number("value")
        rows = []
        for i in range(1, self.sub_rows + 1):
            criteria = self[f"sub_{i}_criteria"].value() or SubTargetCriteria.ABSOLUTE
            value = self._number(f"sub_{i}_value")
            reached = ""
            if value is not None and (criteria != SubTargetCriteria.PERCENTAGE or target_value):
                try:
                    reached = grouped(threshold(criteria, value, target_value or 0))
                except (InvalidOperation, ValueError):
                    reached = ""
            rows.append(
                {
                    "number": i,
                    "id": self[f"sub_{i}_id"],
                    "name": self[f"sub_{i}_name"],
                    "criteria": self[f"sub_{i}_criteria"],
                    "value": self[f"sub_{i}_value"],
                    "delete": self[f"sub_{i}_delete"],
                    "existing": bool(self[f"sub_{i}_id"].value()),
                    "reached": reached,
                    "percentage": criteria == SubTargetCriteria.PERCENTAGE,
                }
            )
        return rows

    def percentage_allowed(self) -> bool:
        return self.kpi in PERCENTAGE_KPIS

    def _number(self, name: str) -> Decimal | None:
        value = _peek(self, name)
        return value if isinstance(value, Decimal) and value.is_finite() else None

    # --- the per-cycle values grid ---------------------------------------------------------------

    def _add_cycle_value_fields(self) -> None:
        ordinals = {row.ordinal for row in self.context.cycles.rows}
        if self.is_bound:
            pattern = re.compile(re.escape(self.add_prefix("cv_")) + r"(\d+)$")
            ordinals |= {int(m.group(1)) for k in self.data if (m := pattern.match(k))}
        initial = (self.initial or {}).get("cycle_values") or {}
        ordinals |= {int(k) for k in initial}
        self.cycle_ordinals = sorted(n for n in ordinals if 1 <= n <= MAX_CYCLES)
        for n in self.cycle_ordinals:
            self.fields[f"cv_{n}"] = forms.DecimalField(
                required=False, label=f"Target value of cycle {n}", initial=initial.get(str(n))
            )

    def cycle_value_rows(self):
        """The grid: one row per cycle of the milestone as it stands (or, before the cycles
        are known, per value already given)."""
        rows = self.context.cycles.rows or [CycleRow(n, f"Cycle {n}") for n in self.cycle_ordinals]
        return [
            {"cycle": row, "field": self[f"cv_{row.ordinal}"]}
            for row in rows
            if f"cv_{row.ordinal}" in self.fields
        ]

    def has_cycle_values(self) -> bool:
        return any(self[f"cv_{n}"].value() not in (None, "") for n in self.cycle_ordinals)

    # --- the rule, checked as it is typed ----------------------------------------------------------

    def rule_entity(self) -> str:
        entity = self._chosen("entity")
        if self.kpi in KPI_ENTITIES and entity not in KPI_ENTITIES[self.kpi]:
            entity = KPI_ENTITIES[self.kpi][0]
        return entity or Entity.TRANSACTION

    def rule_check(self) -> dict | None:
        """The rule box's verdict: None when blank; else ok, or the language's message with
        the rule split around the position it points at (marked on the page)."""
        rule = (self._chosen("rule") or "").strip()
        if not rule:
            return None
        entity = self.rule_entity()
        try:
            validate_rule(rule, purpose="target", entity=entity)
        except RuleError as exc:
            out = {"ok": False, "message": exc.message, "position": exc.position}
            if exc.position is not None:
                at = min(max(exc.position, 0), len(rule))
                out.update(
                    before=rule[:at],
                    at=rule[at : at + 1] if at < len(rule) else " ",
                    after=rule[at + 1 :],
                    end=at >= len(rule),
                    column=at + 1,
                )
            return out
        return {"ok": True, "entity": Entity(entity).label.lower()}

    # --- live checks --------------------------------------------------------------------------------

    def _live_checks(self) -> None:
        url, p = self.context.hx_url, self.prefix
        if not url or p is None:
            return
        fields = self.fields
        if not self.tracking_locked:
            fields["kpi"].widget.attrs.update(hx(url, "tracking", f"#tracking-{p}", _prefix=p))
            fields["entity"].widget.attrs.update(hx(url, "rule", f"#rule-check-{p}", _prefix=p))
            fields["event_name"].widget.attrs.update(
                hx(url, "event", f"#event-help-{p}", _prefix=p)
            )
        typing = "input changed delay:500ms, change"
        fields["rule"].widget.attrs.update(
            hx(url, "rule", f"#rule-check-{p}", _prefix=p, trigger=typing)
        )
        amounts = hx(url, "thresholds", "this", swap="none", _prefix=p, trigger=typing)
        fields["value"].widget.attrs.update(amounts)
        for i in range(1, self.sub_rows + 1):
            fields[f"sub_{i}_value"].widget.attrs.update(amounts)
            if not getattr(fields[f"sub_{i}_criteria"], "locked", False):
                fields[f"sub_{i}_criteria"].widget.attrs.update(amounts)

    # --- cleaning -------------------------------------------------------------------------------

    def clean_period_values(self):
        return parse_period_values(self.cleaned_data.get("period_values") or "")

    def clean(self):
        data = super().clean()
        shown = {bf.name for bf in self.tracking_fields()}
        _forget(self, [n for n in self.TRACKING if n not in shown])
        subs = []
        self.sent_sub_rows: list[int] = []
        for i in range(1, self.sub_rows + 1):
            sid = data.get(f"sub_{i}_id")
            name = (data.get(f"sub_{i}_name") or "").strip()
            value = data.get(f"sub_{i}_value")
            if data.get(f"sub_{i}_delete") and sid:
                continue
            if not sid and not name and value is None and not self[f"sub_{i}_value"].value():
                continue  # an unused blank row
            sub = {"name": name, "criteria": data.get(f"sub_{i}_criteria"), "value": value}
            if sid:
                sub["id"] = sid
            subs.append(sub)
            self.sent_sub_rows.append(i)
        data["sub_targets"] = subs
        # per-cycle values: the lines (older pages), then the grid, for the cycles it shows
        values = dict(data.get("period_values") or {})
        shown = {row.ordinal for row in self.context.cycles.rows} or set(self.cycle_ordinals)
        for n in self.cycle_ordinals:
            number = data.get(f"cv_{n}")
            if number is not None and n in shown:
                values[f"P{n}"] = number
        data["period_values"] = values
        return data

    def as_target_data(self) -> dict:
        """The target in the API's shape; what the KPI does not use is cleared."""
        d = self.cleaned_data
        shown = set(self.applicable()) | {
            n for n in LOCKED_WHEN_LIVE if getattr(self.fields[n], "locked", False)
        }

        def kept(name, empty=""):
            return (d.get(name) or empty) if name in shown else empty

        out = {
            "name": (d.get("name") or "").strip(),
            "kpi": d.get("kpi") or "",
            "entity": kept("entity", None),
            "event_name": kept("event_name").strip(),
            "attribute": kept("attribute").strip(),
            "extended_field": kept("extended_field").strip(),
            "extended_field_value": kept("extended_field_value"),
            "points_type": kept("points_type"),
            "source_target_group": d["source_target_group"].pk
            if d.get("source_target_group") and "source_target_group" in shown
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

    def field_for(self, service_field: str) -> str | None:
        """The input a service error about `service_field` belongs at, if shown."""
        match = re.fullmatch(r"sub_targets\.(\d+)\.(\w+)", service_field)
        if match:
            rows = getattr(self, "sent_sub_rows", [])
            j = int(match.group(1))
            name = f"sub_{rows[j - 1]}_{match.group(2)}" if 1 <= j <= len(rows) else None
            return name if name in self.fields else None
        if service_field.startswith("period_values."):
            ordinal = self.context.cycles.ordinal_of(service_field.split(".", 1)[1])
            name = f"cv_{ordinal}"
            return name if name in self.fields else None
        shown = {bf.name for bf in self.tracking_fields()} | set(self.VALUE) | set(self.FILTERS)
        return service_field if service_field in shown else None


class BaseTargetFormSet(forms.BaseFormSet):
    def __init__(self, *args, organisation=None, group=None, context=None, **kwargs):
        self.organisation = organisation
        self.group = group
        self.context = context
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"organisation": self.organisation, "group": self.group, "context": self.context}

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
        "period_rows": [
            {"name": p.get("name"), "start": _date(p.get("start")), "end": _date(p.get("end"))}
            for p in cycle.get("periods") or []
        ],
        "enrolment_mode": (payload.get("enrolment") or {}).get("mode")
        or EnrolmentMode.ALL_CUSTOMERS,
    }
    for key in ("name", "start", "end"):
        if payload.get(key):
            initial[key] = payload[key]
    targets = [_target_initial(t, stored=stored) for t in payload.get("targets") or []]
    return initial, targets


def _date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def initial_from_group(group: TargetGroup) -> tuple[dict, list[dict]]:
    """Form initial values for editing a milestone: its data shape with the ids of its
    targets and sub-targets, so the update keeps their rows."""
    return initial_from_payload(target_group_as_data(group, with_ids=True), stored=True)


def _target_initial(t: dict, *, stored: bool) -> dict:
    """A target's form values. `stored`: a milestone's own amounts, shown without the
    trailing zeros of the column (1500, not 1500.0000)."""
    amount = _normalized if stored else _as_given
    cycle_values = {}
    for key, value in (t.get("period_values") or {}).items():
        match = re.fullmatch(r"[PpCc]?(\d+)", str(key).strip())
        if match:  # keys "P1", "P2"... (target_group_as_data, templates)
            cycle_values[match.group(1)] = _normalized(value)
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
        "cycle_values": cycle_values,
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
    """The cycle in the API's shape: only what the chosen cycle type uses."""
    ctype = cd.get("cycle_type") or CycleType.FIXED_CALENDAR
    cycle: dict = {"type": ctype}
    if ctype == CycleType.CUSTOM_PERIODS:
        cycle["periods"] = cd.get("periods") or []
        return cycle
    if ctype in (CycleType.FIXED_CALENDAR, CycleType.CYCLIC):
        cycle["frequency"] = cd.get("cycle_frequency") or ""
        cycle["days"] = cd.get("cycle_days") if cycle["frequency"] == Frequency.DAYS else None
    cycle["start"] = cd.get("cycle_start")
    cycle["count"] = cd.get("cycle_count")
    return cycle


def create_data(form: MilestoneForm, targets: list[dict]) -> dict:
    cd = form.cleaned_data
    enrolment = {"mode": cd.get("enrolment_mode")}
    if cd.get("audience_group") is not None:
        enrolment["audience_group"] = cd["audience_group"]
    return {
        "name": cd.get("name") or "",
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
    """Only what an edit may change: locked fields are left out, so the service keeps them
    (and so is a date that did not parse: the form says why)."""
    cd = form.cleaned_data
    data = {
        "description": cd.get("description") or "",
        "till_code": cd["till"].code if cd.get("till") else None,
        "leaderboard_enabled": bool(cd.get("leaderboard_enabled")),
        "offset_days": cd.get("offset_days"),
        "send_enrolment_trigger": bool(cd.get("send_enrolment_trigger")),
        "targets": targets,
        "rename_in_promotions": bool(cd.get("rename_in_promotions")),
    }
    if cd.get("end") is not None:
        data["end"] = cd["end"]
    if cd.get("drop_cycles"):
        data["drop_cycles"] = True
    if not form.fields["start"].disabled and cd.get("start") is not None:
        data["start"] = cd["start"]
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
TARGET_CODE = re.compile(re.escape(TARGET_FIELD_CODE) + r"(?P<field>[^@]+)(?:@(?P<index>\d+))?$")


def apply_service_errors(
    exc: ValidationError,
    form: MilestoneForm,
    target_forms: list[TargetForm],
    *,
    second_opinion: bool = False,
) -> list[str]:
    """Put the service's messages next to what they are about: each at the input its code
    names (a target's `target_field:kpi`, a sub-target's `target_field:sub_targets.1.value`,
    a cycle's `field:frequency`), else at the top of its target or of the page.

    Returns the messages about the targets as a whole (shown at the top of part 4).
    `second_opinion`: the service checked what parsed of a form that refused something
    itself; a field that shows the form's own error (a date that did not parse, say) does
    not get the service's view of its blank value.
    """
    had = {(id(f), name) for f in (form, *target_forms) for name in f.errors}
    if not second_opinion:
        had = set()

    def add(f, name, message):
        if name is not None and (id(f), name) in had:
            return
        f.add_error(name, message)

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
                match, coded = TARGET_MESSAGE.match(message), TARGET_CODE.match(code)
                index = -1
                if coded and coded.group("index"):
                    index = int(coded.group("index")) - 1
                elif match:
                    index = int(match.group(1)) - 1
                if 0 <= index < len(target_forms):
                    tform = target_forms[index]
                    name = tform.field_for(coded.group("field")) if coded else None
                    add(tform, name, message)
                else:
                    target_errors.append(message)
            elif key == "cycle" or (key.startswith("cycle_") and key in form.fields):
                add(form, key if key != "cycle" else form.field_for(key, code), message)
            elif key in FORM_KEYS and FORM_KEYS[key] in form.fields:
                add(form, FORM_KEYS[key], message)
            elif key in ("__all__", "non_field_errors", "is_active", "template"):
                form.add_error(None, message)
            else:
                form.add_error(None, f"{key}: {message}")
    return target_errors


def error_summary(form: MilestoneForm, target_forms, target_errors=()) -> list[dict]:
    """Every error on the page, in page order, each with a link to its input: the summary
    at the top ("Please correct N errors")."""
    entries = [{"text": e, "href": "#form-errors"} for e in form.non_field_errors()]
    for bf in form:
        entries += [{"label": bf.label, "text": e, "href": _anchor(bf)} for e in bf.errors]
    entries += [{"label": "Targets", "text": e, "href": "#part-targets"} for e in target_errors]
    for number, tform in enumerate(target_forms, start=1):
        where = f"Target {number}"
        entries += [
            {"label": where, "text": e, "href": f"#target-{tform.prefix}"}
            for e in tform.non_field_errors()
        ]
        for bf in tform:
            entries += [
                {
                    "label": f"{where} › {bf.label}",
                    "text": _unprefixed(e, number),
                    "href": _anchor(bf),
                }
                for e in bf.errors
            ]
    return entries


def _unprefixed(message: str, number: int) -> str:
    """A service message without its "Target 2 (Spend): " (the summary's label says it)."""
    head = f"Target {number} ("
    if message.startswith(head) and "): " in message:
        return message.split("): ", 1)[1]
    return message


def _anchor(bf) -> str:
    if getattr(bf.field, "locked", False) or bf.is_hidden:
        return f"#{bf.auto_id}_row"
    return f"#{bf.auto_id}"


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
    audience_group = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        required=False,
        label="Audience group",
        help_text="With the audience group enrolment.",
        error_messages={"invalid_choice": "Choose one of your organisation's audience groups."},
    )

    def __init__(self, *args, audience_groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience_group"].choices = _blank(
            "— choose an audience group —", [(str(k), v) for k, v in audience_groups]
        )

    def clean(self):
        data = super().clean()
        if data.get("enrolment_mode") != EnrolmentMode.AUDIENCE_GROUP:
            data["audience_group"] = None
        return data
