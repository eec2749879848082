"""The Simulate form of an existing milestone: the past window, a target value to try for
each target (and, to compare, a second one), the promotions to run with. It builds the
API's requests (`requests`); the service checks them."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from django import forms

from common.numbers import grouped, plain
from milestones.cycles import add_months
from milestones.models import TargetGroup
from milestones.selectors import org_today

from .inputs import MAX_WINDOW_DAYS


class SimulateForm(forms.Form):
    window_start = forms.DateField(
        label="Window from", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The first past day replayed: the milestone's cycles start here.",
    )  # fmt: skip
    window_end = forms.DateField(
        label="Window to", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day replayed (before today).",
    )  # fmt: skip

    def __init__(self, *args, group: TargetGroup, promotions, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group
        self.targets = list(group.targets.order_by("ordinal", "id"))
        today = org_today(group.organisation)
        first = today.replace(day=1)
        self.fields["window_start"].initial = add_months(first, -3)
        self.fields["window_end"].initial = first - timedelta(days=1)
        for t in self.targets:
            self.fields[f"value_{t.pk}"] = forms.DecimalField(
                label=f"Target value of {t.name}", min_value=Decimal(0), max_digits=22,
                decimal_places=4, initial=plain(t.value),
                widget=forms.TextInput(attrs={"inputmode": "decimal"}),
            )  # fmt: skip
            self.fields[f"compare_{t.pk}"] = forms.DecimalField(
                label=f"Compare {t.name} with", min_value=Decimal(0), max_digits=22,
                decimal_places=4, required=False,
                help_text="Optional: a second run with this value, shown side by side.",
                widget=forms.TextInput(attrs={"inputmode": "decimal"}),
            )  # fmt: skip
        self.fields["promotions"] = forms.ModelMultipleChoiceField(
            label="Promotions to run with", required=False,
            queryset=group.organisation.promotions.filter(pk__in=[p.pk for p in promotions]),
            widget=forms.CheckboxSelectMultiple,
            help_text="Active promotions that name this milestone or its targets (or name "
            "none). Their awards are counted, never paid.",
        )  # fmt: skip
        self.fields["promotions"].initial = [p.pk for p in promotions]

    @property
    def target_rows(self):
        return [
            {"target": t, "current": grouped(t.value), "value": self[f"value_{t.pk}"],
             "compare": self[f"compare_{t.pk}"]}
            for t in self.targets
        ]  # fmt: skip

    @property
    def comparing(self) -> bool:
        return any(self.cleaned_data.get(f"compare_{t.pk}") is not None for t in self.targets)

    def requests(self) -> list[tuple[str, dict]]:
        """[(label, API request)]: the run with the values asked for, and the comparison's
        when a value to compare is given (the others as in the first run)."""
        data = self.cleaned_data
        window = {"start": data["window_start"].isoformat(), "end": data["window_end"].isoformat()}
        promotions = [p.pk for p in data.get("promotions") or []]

        def run(values: dict) -> tuple[str, dict]:
            changed = [(t, v) for t, v in values.items() if v != t.value]
            body = {"target_group_id": self.group.pk, "window": window, "promotions": promotions}
            if changed:
                body["changes"] = {"targets": [{"id": t.pk, "value": plain(v)} for t, v in changed]}
            label = ", ".join(f"{t.name} {grouped(v)}" for t, v in changed) or "As configured"
            return label, body

        first = {t: data[f"value_{t.pk}"] for t in self.targets}
        runs = [run(first)]
        if self.comparing:
            second = {
                t: data.get(f"compare_{t.pk}")
                if data.get(f"compare_{t.pk}") is not None
                else first[t]
                for t in self.targets
            }
            runs.append(run(second))
        return runs

    def clean(self):
        data = super().clean()
        start, end = data.get("window_start"), data.get("window_end")
        if start and end:
            today = org_today(self.group.organisation)
            if end >= today:
                self.add_error(
                    "window_end",
                    f"The window must lie in the past: end it on {today - timedelta(days=1)} "
                    "or earlier.",
                )
            if end < start:
                self.add_error(
                    "window_end", f"The window ends on {end}, before it starts on {start}."
                )
            elif (end - start).days + 1 > MAX_WINDOW_DAYS:
                self.add_error(
                    "window_start", f"A simulation replays at most {MAX_WINDOW_DAYS} days."
                )
        return data

    def add_refusal(self, errors: dict) -> None:
        """Put a refused request's messages at their fields: the window's at its first day,
        a target's ("Target 1 (Spend): ...") at that target's value, promotions' at the
        promotions, the rest at the top (the summary lists them all)."""
        by_name = {t.name: f"value_{t.pk}" for t in self.targets}
        for key, value in errors.items():
            for message in _messages(value):
                if key == "window":
                    self.add_error("window_start", message)
                elif key == "promotions":
                    self.add_error("promotions", message)
                else:
                    named = re.match(r"(?:targets: )?Target \d+ \((.+?)\)", message)
                    field = by_name.get(named.group(1)) if named else None
                    self.add_error(field, message)


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += [
                f"{k}: {m}" if k not in ("non_field_errors", "__all__") else m for m in _messages(v)
            ]
        return out
    if isinstance(value, list):
        out = []
        for v in value:
            out += _messages(v)
        return out
    return [str(value)] if value not in (None, "", {}) else []
