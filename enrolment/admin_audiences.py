"""The audience group screens: a filter builder, a CSV upload for lists, a member list.

The add/change page is the admin's change form with a template of its own
(templates/admin/enrolment/audiencegroup/): only the fields of the chosen kind are shown
(CSS `:has()` on the kind; the others are cleared on save) and every error is shown at its
input at once, with a summary at the top linking to them.

- A filter is built from condition rows ("achieved target [picker] at least [value] in
  [cycle]", or a customer field compared with a value); a row is added, and its cycle picker
  drawn again for the chosen target, by htmx fragments from `condition/`; the inputs that
  apply to the row's choices are shown by CSS. The rows make the JSON definition the service stores; "Advanced: edit as
  JSON" writes it directly. A stored filter the rows cannot show opens as JSON.
- A list group takes a CSV file of identifiers (`selectors.audience_list_identifiers`: bad
  rows reported by row, nothing added unless "Skip bad rows").
- The change page shows the member count, the members (paginated, this organisation's
  customers only) and "Refresh now" (POST `refresh/`).

The rules (a known target, a merge that does not include itself) are the service's
(`audiences.audience_group_errors`, `audience_group_create`, `audience_group_update`), which
the API calls too; this module only places their messages at the inputs.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from common.admin import OrgScopedAdmin
from common.numbers import grouped, plain
from milestones.models import Period, Target

from .audiences import (
    CUSTOMER_FIELDS,
    MAX_CONDITIONS,
    audience_group_create,
    audience_group_errors,
    audience_group_refresh_now,
    audience_group_update,
    audience_members,
    filter_problems,
)
from .identifiers import IDENTIFIER_TYPES
from .importing.spec import RowsRefused
from .models import AudienceGroup, AudienceKind, AudienceRefreshStatus
from .selectors import audience_list_identifiers

ROWS = "cond"  # the prefix of the condition rows: cond-0-target, ..., cond-TOTAL_FORMS
MEMBERS_PER_PAGE = 50
FILE_ERRORS_SHOWN = 20
ROWS_MARKED = "Some conditions need fixing: see the marked inputs."

FILTER_EXAMPLE = (
    '{"conditions": [\n'
    '  {"target": "Gold", "achieved": true, "min_value": 100, "cycle": "current"},\n'
    '  {"field": "attributes.city", "op": "eq", "value": "Pune"}\n'
    "]}"
)
INVALID_JSON = (
    "This is not valid JSON. Write every key and text value in double quotes, as in "
    '{"conditions": [{"field": "name", "op": "eq", "value": "Asha"}]}.'
)

# --- one condition row -------------------------------------------------------------------------

KIND_CHOICES = [("target", "a target's result"), ("customer", "a customer field")]
ACHIEVED_CHOICES = [("yes", "achieved"), ("any", "took part in (achieved or not)")]
WHEN_CHOICES = [("", "at any time"), ("last_days", "in the last … days"), ("between", "between")]
FIELD_LABELS = {
    "name": "Name",
    "mobile": "Mobile",
    "email": "Email",
    "external_id": "External id",
    "joined_on": "Joined on (date)",
    "is_loyalty_member": "Loyalty member",
    "created_at": "Created on (date)",
}
ATTRIBUTE = "attribute"
FIELD_CHOICES = [*FIELD_LABELS.items(), (ATTRIBUTE, "An attribute…")]
OP_LABELS = {
    "eq": "is",
    "ne": "is not",
    "gt": "is more than / after",
    "gte": "is at least / on or after",
    "lt": "is less than / before",
    "lte": "is at most / on or before",
    "in": "is one of (comma-separated)",
    "contains": "contains",
    "exists": "is filled in",
}
FLAG_CHOICES = [("true", "yes"), ("false", "no")]
# the service's key of a condition -> the row's input that shows its problem
TARGET_INPUTS = {"target": "target", "achieved": "achieved", "min_value": "min_value",
                 "cycle": "cycle", "from": "date_from", "to": "date_to",
                 "last_days": "last_days"}  # fmt: skip


def _field_kind(field: str | None) -> str:
    return "attribute" if field == ATTRIBUTE else CUSTOMER_FIELDS.get(field or "", "text")


def _uses_flag(field: str | None, op: str | None) -> bool:
    return op == "exists" or _field_kind(field) == "bool"


def _uses_date(field: str | None, op: str | None) -> bool:
    return _field_kind(field) in ("date", "datetime") and op not in ("in", "exists")


def _value_input(field: str | None, op: str | None) -> str:
    """The row's input that holds a customer condition's value."""
    if _uses_flag(field, op):
        return "flag"
    return "value_date" if _uses_date(field, op) else "value"


def _scalar(text: str):
    """An attribute's value as typed: a number, true, false or null as JSON; text in double
    quotes as that text ("5" stays text); anything else as the text itself."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, (list, dict)):
        return text
    return value


def _scalar_text(value) -> str:
    """The inverse of `_scalar`: what to show in the value box."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if _scalar(value) != value else value
    return json.dumps(value)


def _number(text: str):
    """A typed number as JSON keeps it: a whole number as an integer, else the plain text."""
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return text
    if not number.is_finite():
        return text
    return int(number) if number == number.to_integral_value() else plain(number)


def condition_from_row(values: dict) -> dict:
    """The definition's condition for one row's values (strings, as posted): the inputs of
    the row's kind only (the others are cleared)."""
    if values.get("kind") == "target":
        ref = (values.get("target") or "").strip()
        cond: dict = {"target": int(ref) if ref.isdigit() else ref}
        if values.get("achieved", "yes") != "any":
            cond["achieved"] = True
        if (values.get("min_value") or "").strip():
            cond["min_value"] = _number(values["min_value"])
        if values.get("cycle"):
            cond["cycle"] = values["cycle"]
        when = values.get("when") or ""
        if when == "last_days" and (values.get("last_days") or "").strip():
            days = values["last_days"].strip()
            cond["last_days"] = int(days) if days.isdigit() else days
        if when == "between":
            for key, name in (("from", "date_from"), ("to", "date_to")):
                if (values.get(name) or "").strip():
                    cond[key] = values[name].strip()
        return cond
    field = values.get("field") or "name"
    op = values.get("op") or "eq"
    name = f"attributes.{(values.get('attribute') or '').strip()}" if field == ATTRIBUTE else field
    cond = {"field": name, "op": op}
    kind = _field_kind(field)
    if _uses_flag(field, op):
        cond["value"] = values.get("flag", "true") == "true"
        return cond
    text = values.get(_value_input(field, op)) or ""
    if op == "in":
        items = [item.strip() for item in text.split(",") if item.strip()]
        cond["value"] = [_scalar(i) for i in items] if kind == "attribute" else items
    elif kind == "attribute":
        cond["value"] = _scalar(text)
    else:
        cond["value"] = text.strip()
    return cond


def row_from_condition(cond, organisation) -> dict | None:
    """A row's values for a stored condition; None when the rows cannot show it."""
    if not isinstance(cond, dict):
        return None
    if "target" in cond:
        target = _target(organisation, cond["target"])
        if target is None:
            return None
        row = {"kind": "target", "target": str(target.pk)}
        row["achieved"] = "yes" if cond.get("achieved") is True else "any"
        if cond.get("min_value") not in (None, ""):
            row["min_value"] = plain(cond["min_value"])
        if cond.get("cycle") not in (None, ""):
            row["cycle"] = str(cond["cycle"])
        if cond.get("last_days") not in (None, ""):
            row.update(when="last_days", last_days=str(cond["last_days"]))
        elif cond.get("from") or cond.get("to"):
            row.update(
                when="between", date_from=cond.get("from") or "", date_to=cond.get("to") or ""
            )
        return row
    field, op, value = cond.get("field"), cond.get("op") or "eq", cond.get("value")
    if not isinstance(field, str) or op not in OP_LABELS:
        return None
    row = {"kind": "customer", "op": op}
    if field.startswith("attributes."):
        row.update(field=ATTRIBUTE, attribute=field.split(".", 1)[1])
    elif field in FIELD_LABELS:
        row["field"] = field
    else:
        return None
    if _uses_flag(row["field"], op):
        row["flag"] = "true" if value is True else "false"
    elif _uses_date(row["field"], op):
        row["value_date"] = "" if value is None else str(value)
    elif op == "in" and isinstance(value, list):
        show = _scalar_text if row["field"] == ATTRIBUTE else str
        row["value"] = ", ".join(show(v) for v in value)
    elif row["field"] == ATTRIBUTE:
        row["value"] = _scalar_text(value)
    else:
        row["value"] = "" if value is None else str(value)
    return row


def _target(organisation, ref) -> Target | None:
    if organisation is None or isinstance(ref, bool) or not isinstance(ref, int | str):
        return None
    targets = Target.objects.filter(organisation=organisation)
    text = str(ref).strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:
        found = targets.filter(pk=int(text)).first()
        if found:
            return found
    return targets.filter(name=text).first()


def rows_from_definition(definition, organisation) -> list[dict] | None:
    """The rows showing a stored filter, or None when they cannot show it exactly (then the
    screen opens it as JSON). A target named by name is shown, and saved again, by id."""
    if not isinstance(definition, dict) or set(definition) != {"conditions"}:
        return None
    conditions = definition["conditions"]
    if not isinstance(conditions, list) or not conditions or len(conditions) > MAX_CONDITIONS:
        return None
    rows, same = [], []
    for cond in conditions:
        row = row_from_condition(cond, organisation)
        if row is None:
            return None
        rows.append(row)
        same.append({**cond, "target": int(row["target"])} if "target" in cond else cond)
    rebuilt = [condition_from_row(row) for row in rows]
    if json.dumps(rebuilt, sort_keys=True) != json.dumps(same, sort_keys=True, default=str):
        return None
    return rows


def target_choices(organisation) -> list:
    """The organisation's targets, grouped by milestone."""
    choices: list = [("", "Choose a target")]
    if organisation is None:
        return choices
    groups: dict[str, list] = {}
    rows = Target.objects.filter(organisation=organisation).select_related("target_group")
    for target in rows.order_by("target_group__name", "ordinal", "pk"):
        groups.setdefault(target.target_group.name, []).append((str(target.pk), target.name))
    return choices + list(groups.items())


def cycle_choices(organisation, target_id) -> list:
    """Any cycle, the current or previous one, and the named cycles of the chosen target."""
    choices: list = [
        ("", "any cycle"),
        ("current", "the current cycle"),
        ("previous", "the previous cycle"),
    ]
    target = _target(organisation, target_id) if target_id else None
    if target is not None:
        periods = Period.objects.filter(target_group_id=target.target_group_id).order_by("ordinal")
        named = [(p.name, f"{p.name} ({p.start:%d %b %Y} – {p.end:%d %b %Y})") for p in periods]
        if named:
            choices.append((f"Cycles of {target.target_group.name}", named))
    return choices


class ConditionForm(forms.Form):
    """One condition of the filter builder. Every input of both kinds is in the row; the
    page shows those of the chosen kind (and "when", attribute, yes/no) and only those are
    read (`condition_from_row`)."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, label="Customers by")
    # a target's result
    achieved = forms.ChoiceField(choices=ACHIEVED_CHOICES, label="who", required=False)
    target = forms.ChoiceField(choices=(), label="target", required=False)
    min_value = forms.CharField(
        label="with at least",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 8, "placeholder": "any"}),
    )
    cycle = forms.ChoiceField(choices=(), label="in", required=False)
    when = forms.ChoiceField(choices=WHEN_CHOICES, label="when", required=False)
    last_days = forms.CharField(
        label="days",
        required=False,
        max_length=6,
        widget=forms.NumberInput(attrs={"min": 1, "max": 36500, "size": 5}),
    )
    date_from = forms.CharField(
        label="from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.CharField(
        label="to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    # a customer field
    field = forms.ChoiceField(choices=FIELD_CHOICES, label="field", required=False)
    attribute = forms.CharField(
        label="attribute name",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"size": 12, "placeholder": "city"}),
    )
    # every comparison; the page hides those the chosen field does not take, and the
    # service refuses them at this input (OPS_BY_KIND)
    op = forms.ChoiceField(choices=list(OP_LABELS.items()), label="comparison", required=False)
    value = forms.CharField(label="value", required=False, max_length=20000)
    value_date = forms.CharField(
        label="date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    flag = forms.ChoiceField(choices=FLAG_CHOICES, label="yes or no", required=False)

    def __init__(self, *args, organisation=None, number: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.number = number
        self.fields["target"].choices = target_choices(organisation)
        self.fields["cycle"].choices = cycle_choices(organisation, self.raw("target"))
        # choosing a target draws the cycle picker again with that target's named cycles
        self.fields["target"].widget.attrs.update(
            {
                "hx-get": reverse("admin:enrolment_audiencegroup_condition"),
                "hx-trigger": "change",
                "hx-include": "closest .ag-cond",
                "hx-target": "next .ag-in-cycle",
                "hx-select": ".ag-in-cycle",
                "hx-swap": "outerHTML",
            }
        )

    @property
    def index(self) -> int:
        """The row's place in the posted data (cond-<index>-...)."""
        return int(self.prefix.rsplit("-", 1)[1])

    def raw(self, name: str):
        """The row's value for an input as posted (bound) or given (initial)."""
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        return self.initial.get(name)

    def clean(self):
        data = super().clean()
        if data.get("kind") == "target":
            if not data.get("target"):
                self.add_error("target", "Choose a target.")
            when = data.get("when")
            if when == "last_days" and not (data.get("last_days") or "").strip():
                self.add_error("last_days", "Give the number of days.")
            if when == "between" and not (data.get("date_from") or data.get("date_to")):
                self.add_error("date_from", "Give a start date, an end date, or both.")
        elif data.get("kind") == "customer":
            field, op = data.get("field") or "name", data.get("op") or "eq"
            if field == ATTRIBUTE and not (data.get("attribute") or "").strip():
                self.add_error("attribute", "Name the attribute, as in city.")
            where = _value_input(field, op)
            if where != "flag" and not (data.get(where) or "").strip():
                self.add_error(where, "Give a value to compare with.")
        return data

    def condition(self) -> dict:
        return condition_from_row({k: v for k, v in self.cleaned_data.items() if v is not None})

    def input_for(self, key: str | None) -> str | None:
        """The input that shows a problem the service found with this row's condition."""
        if key is None:
            return None
        if self.cleaned_data.get("kind") == "target":
            return TARGET_INPUTS.get(key, "target")
        field, op = self.cleaned_data.get("field"), self.cleaned_data.get("op")
        if key == "field":
            return "attribute" if field == ATTRIBUTE else "field"
        if key == "value":
            return _value_input(field, op)
        return "op" if key == "op" else "value"


class ConditionRows:
    """The builder's rows: `cond-<i>-<input>` for i below `cond-TOTAL_FORMS`. A row with no
    input in the data was removed on the page and is skipped."""

    def __init__(self, *, organisation, data=None, initial: list[dict] | None = None):
        self.organisation = organisation
        self.forms: list[ConditionForm] = []
        if data is not None:
            try:
                total = int(data.get(f"{ROWS}-TOTAL_FORMS") or 0)
            except ValueError:
                total = 0
            self.total = max(0, min(total, MAX_CONDITIONS * 2))
            keys = set(data)
            for i in range(self.total):
                if any(k.startswith(f"{ROWS}-{i}-") for k in keys):
                    self.forms.append(
                        ConditionForm(data, prefix=f"{ROWS}-{i}", organisation=organisation)
                    )
        else:
            rows = initial or [{"kind": "target", "achieved": "yes"}]
            self.forms = [
                ConditionForm(initial=row, prefix=f"{ROWS}-{i}", organisation=organisation)
                for i, row in enumerate(rows)
            ]
            self.total = len(self.forms)
        for number, form in enumerate(self.forms, start=1):
            form.number = number

    def unchecked(self) -> ConditionRows:
        """The same rows with their values, not validated (for a kind that does not read
        them: they are shown again as they were, without errors)."""
        rows = [{name: form.raw(name) for name in form.fields} for form in self.forms]
        return ConditionRows(organisation=self.organisation, initial=rows or None)

    @staticmethod
    def posted(data) -> bool:
        return f"{ROWS}-TOTAL_FORMS" in data

    def is_valid(self) -> bool:
        return all([form.is_valid() for form in self.forms])  # every row's errors, at once

    def definition(self) -> dict:
        return {"conditions": [form.condition() for form in self.forms]}


# --- the group's form --------------------------------------------------------------------------


class PrettyJSONField(forms.JSONField):
    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


class AudienceGroupForm(forms.ModelForm):
    """The group's fields, the builder's rows, the JSON, the list file. `clean` reads the
    filter from the rows (or the JSON when "use JSON" is ticked, or when no rows were posted,
    as a script posting only `filter` does), clears the fields of the other kinds, and asks
    the service (`audience_group_errors`) what it would refuse; each message goes to its
    input. The file's customers are read here: `cleaned_data["customer_ids"]`."""

    organisation = None  # set by AudienceGroupAdmin.get_form: the group's or the user's

    filter = PrettyJSONField(
        required=False,
        label="Filter as JSON",
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "ms-mono"}),
        error_messages={"invalid": INVALID_JSON},
        help_text="All the conditions must hold. Keys and text in double quotes, e.g. "
        + FILTER_EXAMPLE,
    )
    use_json = forms.BooleanField(
        required=False, label="Use this JSON instead of the conditions above"
    )
    list_file = forms.FileField(
        required=False,
        label="Customers file (CSV)",
        help_text="One customer a row, with a header row naming the identifier column "
        "(mobile, email or external_id). Every identifier must name a customer of the "
        "organisation.",
    )
    identifier_type = forms.ChoiceField(
        choices=[(k, k.replace("_", " ")) for k in IDENTIFIER_TYPES],
        initial="mobile",
        required=False,
        label="Identifier in the file",
    )
    identifier_column = forms.CharField(
        required=False,
        max_length=200,
        label="Identifier column",
        help_text="Blank: the column named like the identifier (mobile, email or external_id).",
    )
    skip_bad_rows = forms.BooleanField(
        required=False,
        label="Skip bad rows",
        help_text="Add the customers of the good rows and leave the bad rows out. Unticked, "
        "a file with a bad row adds no one.",
    )

    class Meta:
        model = AudienceGroup
        fields = ["name", "kind", "description", "filter", "sources"]
        widgets = {"kind": forms.RadioSelect, "description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk and self.organisation is None:
            self.organisation = instance.organisation
        self.stored_fits_rows = True
        if self.is_bound and ConditionRows.posted(self.data):
            self.rows = ConditionRows(organisation=self.organisation, data=self.data)
        else:
            initial = None
            if instance.pk and instance.kind == AudienceKind.FILTER:
                initial = rows_from_definition(instance.filter, self.organisation)
                self.stored_fits_rows = initial is not None
                self.initial.setdefault("use_json", not self.stored_fits_rows)
            self.rows = ConditionRows(organisation=self.organisation, initial=initial)
        if "kind" in self.fields:
            self.fields["kind"].choices = list(AudienceKind.choices)
            self.fields["kind"].help_text = ""
        sources = self.fields.get("sources")
        if sources is not None:
            sources.widget = forms.CheckboxSelectMultiple()
            # the group itself stays a valid choice (the service refuses it by name) but is
            # not offered
            sources.widget.choices = [
                c for c in sources.choices if str(c[0]) != str(instance.pk or "")
            ]
            sources.label = "Groups to merge"
            sources.help_text = (
                "Two or more of the organisation's groups; the members are everyone in any "
                "of them, and follow them."
            )
        self.builder_errors: list[str] = []

    def _organisation(self, data):
        return data.get("organisation") or self.organisation

    def clean(self):
        data = super().clean()
        kind = data.get("kind") if "kind" in self.fields else self.instance.kind
        organisation = self._organisation(data)
        from_rows = False
        if kind == AudienceKind.FILTER:
            from_rows = ConditionRows.posted(self.data) and not data.get("use_json")
            if from_rows:
                self._errors.pop("filter", None)  # the JSON box is not read: no error there
                if not self.rows.forms:
                    self._builder_error("Add at least one condition.")
                elif self.rows.is_valid():
                    data["filter"] = self.rows.definition()
                else:
                    self._builder_error(ROWS_MARKED)
            else:
                self.rows = self.rows.unchecked()  # the JSON is read, not the rows
        else:
            data["filter"] = {}  # the filter of another kind is not kept
            self._errors.pop("filter", None)
            self.rows = self.rows.unchecked()  # its rows are not checked either
        if kind != AudienceKind.MERGE:
            data["sources"] = AudienceGroup.objects.none()
        data["customer_ids"] = self._list_customers(data, kind, organisation)
        if organisation is None or not kind or self.errors.get("filter") or self.builder_errors:
            return data
        errors = audience_group_errors(
            organisation=organisation,
            name=data.get("name"),
            kind=kind,
            filter=data.get("filter"),
            sources=list(data.get("sources") or []),
            audience_group=self.instance if self.instance.pk else None,
        )
        for field, found in errors.items():
            if field == "filter":
                self._filter_errors(organisation, data.get("filter"), from_rows)
            elif field in self.fields and field not in self.errors:
                for message in found:
                    self.add_error(field, message)
            elif field not in self.fields:
                for message in found:
                    self.add_error(None, message)
        return data

    def _builder_error(self, message: str) -> None:
        self.builder_errors.append(message)
        self.add_error(None, forms.ValidationError(message, code="conditions"))

    def _filter_errors(self, organisation, definition, from_rows: bool) -> None:
        """The service's refusals of the filter, each at its row's input (or on the JSON)."""
        problems = filter_problems(organisation, definition)
        if not from_rows:
            for problem in problems:
                self.add_error("filter", problem.message)
            return
        marked = False
        for problem in problems:
            index = (problem.condition or 0) - 1
            if 0 <= index < len(self.rows.forms):
                row = self.rows.forms[index]
                prefix = f"Condition {problem.condition}: "
                message = problem.message.removeprefix(prefix)
                row.add_error(row.input_for(problem.key) or "kind", message)
                marked = True
            else:
                self._builder_error(problem.message)
        if marked:
            self._builder_error(ROWS_MARKED)

    def _list_customers(self, data, kind, organisation) -> list[int] | None:
        """A list group's customers from the uploaded file (a new group needs one)."""
        upload = data.get("list_file")
        if kind != AudienceKind.LIST:
            return None
        if upload is None:
            if not self.instance.pk:
                self.add_error("list_file", "Upload the group's customers as a CSV file.")
            return None
        if organisation is None:
            return None
        kind_of_id = data.get("identifier_type") or "mobile"
        try:
            return audience_list_identifiers(
                organisation=organisation,
                file=upload,
                identifier_type=kind_of_id,
                identifier_column=(data.get("identifier_column") or "").strip() or kind_of_id,
                skip_bad_rows=bool(data.get("skip_bad_rows")),
            )
        except RowsRefused as refused:
            for error in refused.errors[:FILE_ERRORS_SHOWN]:
                where = f"Row {error['row']}" if error["row"] else "The file"
                column = f" ({error['column']})" if error.get("column") else ""
                self.add_error("list_file", f"{where}{column}: {error['message']}")
            if refused.count > FILE_ERRORS_SHOWN:
                self.add_error(
                    "list_file", f"… and {refused.count - FILE_ERRORS_SHOWN} more problems."
                )
            if refused.errors and any(e["row"] for e in refused.errors):
                self.add_error(
                    "list_file",
                    f"Nothing was added: {refused.count} bad row(s). Fix them, or tick "
                    "“Skip bad rows” to add the good rows only.",
                )
            return None

    def error_summary(self) -> list[dict]:
        """Every error of the page, in page order, each with the id of its input."""
        found = []
        for message in self.non_field_errors():
            if message == ROWS_MARKED:  # the rows' own errors are listed below
                continue
            found.append({"href": "#ag-conditions-section", "label": "Filter", "message": message})
        for name in self.fields:
            for message in self.errors.get(name, []):
                bound = self[name]
                found.append(
                    {"href": f"#{bound.auto_id}", "label": bound.label, "message": message}
                )
        for row in self.rows.forms:
            if not row.is_bound or not hasattr(row, "cleaned_data"):
                continue
            for name, errors in row.errors.items():
                bound = row[name] if name in row.fields else row["kind"]
                for message in errors:
                    found.append(
                        {
                            "href": f"#{bound.auto_id}",
                            "label": f"Condition {row.number}, {bound.label}",
                            "message": message,
                        }
                    )
        return found


# --- the admin ---------------------------------------------------------------------------------


@admin.register(AudienceGroup)
class AudienceGroupAdmin(OrgScopedAdmin):
    """A group whose refresh failed shows why (refresh status and reason); "Refresh now"
    retries it; saving a group calls the service (`audience_group_create` /
    `audience_group_update`), which refreshes a filter or merge group at once."""

    form = AudienceGroupForm
    change_form_template = "admin/enrolment/audiencegroup/change_form.html"
    list_display = ["name", "kind", "member_count", "refreshed_at", "refresh_state"]
    list_filter = ["kind", "refresh_status"]
    exclude = ["created_by"]
    actions = ["refresh_now"]

    @admin.display(description="Refresh", ordering="refresh_status")
    def refresh_state(self, obj):
        if obj.refresh_status == AudienceRefreshStatus.OK:
            return obj.get_refresh_status_display()
        return format_html(
            '<strong title="{}">{}</strong>: {}',
            obj.refresh_error,
            obj.get_refresh_status_display(),
            Truncator(obj.refresh_error).chars(120),
        )

    # the form

    def get_fields(self, request, obj=None):
        fields = ["organisation", "name", "kind", "description", "filter", "use_json", "sources",
                  "list_file", "identifier_type", "identifier_column", "skip_bad_rows"]  # fmt: skip
        if obj is not None:
            fields.remove("kind")  # a group keeps its kind
            fields.remove("organisation")
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.organisation = obj.organisation if obj is not None else request.user.organisation
        return form

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            outcome = audience_group_update(
                audience_group=obj,
                name=data["name"],
                description=data.get("description", ""),
                filter=data.get("filter"),
                sources=list(data.get("sources") or []),
                customer_ids=data.get("customer_ids"),
            )
            obj.refresh_from_db()
            self._report(request, obj, outcome, change=True)
            return
        group = audience_group_create(
            organisation=obj.organisation if obj.organisation_id else request.user.organisation,
            name=data["name"],
            kind=data["kind"],
            description=data.get("description", ""),
            user=request.user,
            customer_ids=data.get("customer_ids"),
            filter=data.get("filter"),
            sources=list(data.get("sources") or []),
        )
        obj.pk = obj.id = group.pk
        obj._state.adding = False
        obj._state.db = group._state.db
        obj.member_count = group.member_count
        self._report(request, group, None, change=False)

    def save_related(self, request, form, formsets, change):
        """Nothing: the service wrote the merge's sources with the group."""

    def _report(self, request, group, outcome, *, change: bool) -> None:
        if outcome is not None and outcome.status != AudienceRefreshStatus.OK:
            self.message_user(request, f"{group.name}: {outcome.reason}", messages.WARNING)
            return
        text = f"“{group.name}” has {grouped(group.member_count)} member(s)"
        if change and group.kind == AudienceKind.LIST and outcome is not None:
            text += f" ({grouped(outcome.added)} added from the file)"
        self.message_user(request, text + ".", messages.INFO)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        context.update(
            {
                "form": form,
                "rows": form.rows,
                "summary": form.error_summary() if form.is_bound else [],
                "condition_url": reverse("admin:enrolment_audiencegroup_condition"),
                "group": obj,
                "group_id": obj.pk if obj is not None else "",
                "sample_csv_url": reverse("audience-group-sample-csv"),
            }
        )
        if obj is not None:
            context.update(self._members_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    # the members, "Refresh now", the builder's rows

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("condition/", wrap(self.condition_view), name="enrolment_audiencegroup_condition"),
            path(
                "<path:object_id>/refresh/",
                wrap(self.refresh_view),
                name="enrolment_audiencegroup_refresh",
            ),
            path(
                "<path:object_id>/members/",
                wrap(self.members_view),
                name="enrolment_audiencegroup_members",
            ),
            *super().get_urls(),
        ]

    def _group_or_404(self, request, object_id) -> AudienceGroup:
        group = self.get_object(request, unquote(object_id))
        if group is None:
            raise Http404("No audience group with this id in your organisation.")
        return group

    def _members_context(self, request, group, outcome=None) -> dict:
        page_number = request.GET.get("members_page") or request.GET.get("page") or 1
        page = Paginator(audience_members(audience_group=group), MEMBERS_PER_PAGE).get_page(
            page_number
        )
        return {
            "group": group,
            "members": page,
            "member_count": grouped(group.member_count),
            "members_url": reverse("admin:enrolment_audiencegroup_members", args=[group.pk]),
            "refresh_url": reverse("admin:enrolment_audiencegroup_refresh", args=[group.pk]),
            "may_refresh": group.kind != AudienceKind.LIST
            and self.has_change_permission(request, group),
            "outcome": outcome,
            "customer_url": "admin:enrolment_customer_change",
        }

    def members_view(self, request, object_id):
        group = self._group_or_404(request, object_id)
        if not self.has_view_permission(request, group):
            raise PermissionDenied
        return TemplateResponse(
            request,
            "admin/enrolment/audiencegroup/_members.html",
            self._members_context(request, group),
        )

    def refresh_view(self, request, object_id):
        """ "Refresh now": recompute the group at once and say what changed."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        group = self._group_or_404(request, object_id)
        if not self.has_change_permission(request, group):
            raise PermissionDenied
        outcome = audience_group_refresh_now(audience_group=group)
        group.refresh_from_db()
        if outcome.status == AudienceRefreshStatus.OK:
            text = (
                f"Refreshed: {grouped(group.member_count)} member(s) "
                f"({grouped(outcome.added)} added, {grouped(outcome.removed)} removed)."
            )
        else:
            text = f"Not refreshed. {outcome.reason}"
        if request.htmx:
            context = self._members_context(
                request, group, outcome={"ok": outcome.status == "ok", "text": text}
            )
            return TemplateResponse(request, "admin/enrolment/audiencegroup/_status.html", context)
        ok = outcome.status == AudienceRefreshStatus.OK
        self.message_user(request, text, messages.SUCCESS if ok else messages.ERROR)
        return HttpResponseRedirect(
            reverse("admin:enrolment_audiencegroup_change", args=[group.pk])
        )

    def condition_view(self, request):
        """A builder row (htmx): `add` -> a new row at `cond-TOTAL_FORMS` and the new total;
        `index` -> row `index` drawn again for its values (the page takes the cycle picker,
        with the cycles of the chosen target); `remove` -> nothing (the row is dropped on the page)."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        if request.GET.get("remove"):
            return HttpResponse("")
        organisation = request.user.organisation
        if request.GET.get("group"):
            organisation = self._group_or_404(request, request.GET["group"]).organisation
        try:
            total = int(request.GET.get(f"{ROWS}-TOTAL_FORMS") or 0)
            index = int(request.GET["index"]) if "index" in request.GET else None
        except ValueError:
            return HttpResponse("Not a row number.", status=400)
        if index is None:  # a new row
            if not 0 <= total < MAX_CONDITIONS * 2:
                return HttpResponse(f"At most {MAX_CONDITIONS} conditions.", status=400)
            index, initial = total, {"kind": "target", "achieved": "yes"}
        else:
            if not 0 <= index < MAX_CONDITIONS * 2:
                return HttpResponse("Not a row number.", status=400)
            prefix = f"{ROWS}-{index}-"
            initial = {
                k.removeprefix(prefix): v for k, v in request.GET.items() if k.startswith(prefix)
            }
            total = None
        row = ConditionForm(
            initial=initial, prefix=f"{ROWS}-{index}", organisation=organisation, number=index + 1
        )
        return TemplateResponse(
            request,
            "admin/enrolment/audiencegroup/_condition.html",
            {
                "row": row,
                "condition_url": reverse("admin:enrolment_audiencegroup_condition"),
                "group": None,
                "new_total": index + 1 if total is not None else None,
                "group_id": request.GET.get("group") or "",
            },
        )

    @admin.action(description="Refresh now")
    def refresh_now(self, request, queryset):
        done = 0
        for group in queryset.select_related("organisation"):
            outcome = audience_group_refresh_now(audience_group=group)
            if outcome.status == AudienceRefreshStatus.OK:
                done += 1
            else:
                self.message_user(request, f"{group.name}: {outcome.reason}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} audience group(s) refreshed.", messages.SUCCESS)
