"""What a simulation is asked for, as the API takes it (../shared/API.md, "Simulations"):

    {"target_group": {...the create shape...} | "target_group_id": ID, "changes": {...PATCH...},
     "window": {"start": "2026-01-01", "end": "2026-03-31"},
     "promotions": [ID, ...], "draft_promotions": [{...the promotion shape...}]}

The milestone and promotion parts are read by the same serializers as the milestone and
promotion endpoints, so a value of the wrong type is refused with the same message; what
the configuration rules say is checked by the milestone and promotion services when the
simulation is built (`simulations.scenario`). The request is stored as it came and parsed
again by the worker (`parse`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from rest_framework import serializers

from common.api import MAX_ID
from milestones.api_config import TargetGroupIn
from milestones.models import Organisation
from milestones.selectors import org_today
from promotions.api import PromotionSerializer

MAX_WINDOW_DAYS = 731  # two years of stored activity at most
MAX_PROMOTIONS = 20


class SimulationRefused(Exception):
    """A request the simulation cannot run, with the API's error shape: field -> messages
    (nested for the milestone and promotion parts, as their own endpoints answer)."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class Window:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class SimulationRequest:
    window: Window
    target_group: dict | None = None  # the create shape, validated by TargetGroupIn
    target_group_id: int | None = None
    changes: dict = field(default_factory=dict)  # the PATCH shape, validated likewise
    promotions: list[int] = field(default_factory=list)
    draft_promotions: list[dict] = field(default_factory=list)  # PromotionSerializer's data


class WindowIn(serializers.Serializer):
    start = serializers.DateField(help_text="First day of the past window replayed.")
    end = serializers.DateField(help_text="Last day of the window (before today).")


class SimulationIn(serializers.Serializer):
    target_group = serializers.JSONField(
        required=False,
        help_text="An unsaved milestone, in the create shape of `/api/v1/target-groups/`.",
    )
    target_group_id = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID,
        help_text="An existing milestone of the organisation (instead of `target_group`).",
    )  # fmt: skip
    changes = serializers.JSONField(
        required=False,
        help_text="With `target_group_id`: changed values, in the PATCH shape of "
        "`/api/v1/target-groups/{id}/`.",
    )
    window = WindowIn(help_text="The past days replayed; the milestone's cycles are laid over it.")
    promotions = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False,
        max_length=MAX_PROMOTIONS,
        help_text="Existing promotions (ids) that name the milestone or its targets.",
    )  # fmt: skip
    draft_promotions = serializers.JSONField(
        required=False,
        help_text="Unsaved promotions, in the shape of `/api/v1/promotions/` (their dates are "
        "laid over the window).",
    )


def _nested(serializer_class, data, *, partial=False):
    if not isinstance(data, dict):
        raise serializers.ValidationError("Give an object.")
    nested = serializer_class(data=data, partial=partial)
    if not nested.is_valid():
        raise serializers.ValidationError(nested.errors)
    return nested.validated_data


def parse(raw, *, organisation: Organisation) -> SimulationRequest:
    """The request, checked for its shape (types, which parts go together, the window);
    raises SimulationRefused."""
    outer = SimulationIn(data=raw if isinstance(raw, dict) else {})
    if not isinstance(raw, dict):
        raise SimulationRefused({"detail": "Send a JSON object."})
    if not outer.is_valid():
        raise SimulationRefused(dict(outer.errors))
    data = outer.validated_data
    errors: dict = {}
    request = SimulationRequest(window=Window(data["window"]["start"], data["window"]["end"]))

    has_group, has_id = "target_group" in data, "target_group_id" in data
    if has_group == has_id:
        errors["target_group"] = [
            "Give either `target_group` (an unsaved milestone) or `target_group_id` (an "
            "existing one), not both."
            if has_group
            else "Give the milestone to simulate: `target_group` (an unsaved milestone, in "
            "the create shape) or `target_group_id` (an existing one)."
        ]
    elif has_group:
        try:
            request.target_group = dict(_nested(TargetGroupIn, data["target_group"]))
        except serializers.ValidationError as exc:
            errors["target_group"] = exc.detail
    else:
        request.target_group_id = data["target_group_id"]
    if "changes" in data:
        if not has_id:
            errors["changes"] = ["`changes` go with `target_group_id` (an existing milestone)."]
        else:
            try:
                request.changes = dict(_nested(TargetGroupIn, data["changes"], partial=True))
            except serializers.ValidationError as exc:
                errors["changes"] = exc.detail

    window_errors = window_problems(request.window, organisation)
    if window_errors:
        errors["window"] = window_errors

    request.promotions = list(dict.fromkeys(data.get("promotions") or []))
    drafts = data.get("draft_promotions")
    if drafts is not None:
        if not isinstance(drafts, list):
            errors["draft_promotions"] = ["Give a list of promotions."]
        elif len(drafts) > MAX_PROMOTIONS:
            errors["draft_promotions"] = [
                f"At most {MAX_PROMOTIONS} draft promotions, got {len(drafts)}."
            ]
        else:
            parsed, item_errors = [], []
            dates = {"start": request.window.start, "end": request.window.end}
            for item in drafts:
                try:
                    # laid over the window anyway: their own dates may be left out
                    item = {**dates, **item} if isinstance(item, dict) else item
                    parsed.append(dict(_nested(PromotionSerializer, item)))
                    item_errors.append({})
                except serializers.ValidationError as exc:
                    item_errors.append(exc.detail)
            if any(item_errors):
                errors["draft_promotions"] = item_errors
            request.draft_promotions = parsed
    if errors:
        raise SimulationRefused(errors)
    return request


def window_problems(window: Window, organisation: Organisation) -> list[str]:
    """A window is past days (it ends before today, in the organisation's time zone), starts
    on or before it ends and spans at most MAX_WINDOW_DAYS."""
    today = org_today(organisation)
    problems = []
    if window.end < window.start:
        problems.append(f"The window ends on {window.end}, before it starts on {window.start}.")
    if window.end >= today:
        problems.append(
            f"The window must lie in the past: it ends on {window.end}, and the last day "
            f"with complete activity is {today - timedelta(days=1)}."
        )
    if window.end >= window.start and window.days > MAX_WINDOW_DAYS:
        problems.append(
            f"The window spans {window.days} days; a simulation replays at most "
            f"{MAX_WINDOW_DAYS} days."
        )
    return problems
