"""The milestone's own fields: name, dates, till, target value mode, enrolment, tracking
type, offset; and what an edit may no longer change once the milestone has started."""

from __future__ import annotations

from datetime import date

from ....catalogue import BACKDATE_MONTHS, MAX_OFFSET_DAYS
from ....cycles import add_months
from ....models import (
    EnrolmentMode,
    Store,
    TargetGroup,
    TargetValueMode,
    UnifiedMode,
)
from ....selectors import org_today
from .errors import Errors

TILL_REQUIRED = (
    "A till is required: points this milestone gives are attributed to it. Give the code "
    "of a store of this organisation marked as a till."
)


def check_new_name(org, name: str, errors: Errors) -> None:
    if not name:
        errors.add("name", "A milestone needs a name.")
    elif TargetGroup.objects.filter(organisation=org, name=name).exists():
        errors.add(
            "name", f"A milestone named {name!r} already exists: milestone names are unique."
        )


def check_dates(
    org,
    start: date | None,
    end: date | None,
    errors: Errors,
    warnings: list[str],
    via_api: bool,
    today: date | None = None,
) -> None:
    if start is None or end is None:
        errors.add(
            "start" if start is None else "end", "The milestone needs a start and an end date."
        )
        return
    if end < start:
        errors.add("end", f"The end date {end} is before the start date {start}.")
    _check_backdating(start, today or org_today(org), errors, warnings, via_api)


def _check_backdating(start: date, today: date, errors: Errors, warnings: list[str], via_api):
    """The screens refuse a start more than BACKDATE_MONTHS ago; the API warns. A start in
    the past always warns: the stored activities count only once re-processed."""
    limit = add_months(today, -BACKDATE_MONTHS)
    if start < limit:
        if via_api:
            warnings.append(
                f"The start date {start} is more than {BACKDATE_MONTHS} months in the past; past activities "
                "must be re-processed, and backdated milestones suit immediate-benefit use only."
            )
        else:
            errors.add(
                "start",
                f"A milestone can start at most {BACKDATE_MONTHS} months in the past (on or after {limit}).",
            )
    elif start < today:
        warnings.append(
            f"The start date {start} is in the past: re-process the stored activities to count them "
            "(backdated milestones suit immediate-benefit use only)."
        )


def resolve_value_mode(data: dict, errors: Errors) -> str:
    mode = data.get("target_value_mode") or TargetValueMode.SAME_FOR_ALL
    if mode not in TargetValueMode.values:
        errors.add("target_value_mode", "Use same_for_all or per_customer.")
    return mode


def resolve_enrolment_mode(enrolment: dict, mode: str, errors: Errors) -> str:
    """Per-customer targets come with a custom list; otherwise all customers by default."""
    enrolment_mode = enrolment.get("mode") or (
        EnrolmentMode.CUSTOM_LIST
        if mode == TargetValueMode.PER_CUSTOMER
        else EnrolmentMode.ALL_CUSTOMERS
    )
    if enrolment_mode not in EnrolmentMode.values:
        errors.add("enrolment", f"Unknown enrolment mode {enrolment_mode!r}.")
    elif mode == TargetValueMode.PER_CUSTOMER and enrolment_mode != EnrolmentMode.CUSTOM_LIST:
        errors.add(
            "enrolment",
            "Different targets for each customer are uploaded as a custom list: use the custom_list enrolment.",
        )
    return enrolment_mode


def resolve_till(org, till_code, errors: Errors) -> Store | None:
    """The milestone's till: required, a store of the organisation marked as a till
    (the reference: "Till is a mandatory parameter for point allocation")."""
    if till_code is None or not str(till_code).strip():
        errors.add("till_code", TILL_REQUIRED)
        return None
    till = Store.objects.filter(organisation=org, code=till_code).first()
    if till is None:
        errors.add(
            "till_code",
            f"Unknown till code {till_code!r}: no store of this organisation has that code.",
        )
        return None
    if not till.is_till:
        errors.add(
            "till_code",
            f"The store {till_code!r} is not a till: choose a store marked as a till "
            "(points are attributed to a till).",
        )
        return None
    return till


def resolve_unified_mode(data: dict, errors: Errors) -> str:
    """Unified milestones combine their targets with 'all' or 'any' (`tracking_type:
    unified` alone means 'all'); blank: single targets."""
    unified = data.get("unified_mode") or (
        UnifiedMode.ALL if data.get("tracking_type") == "unified" else ""
    )
    if unified not in UnifiedMode.values:
        errors.add("unified_mode", "Unified targets combine with 'all' or 'any'.")
    return unified


def check_offset(offset, errors: Errors) -> None:
    if offset is not None and not (0 <= int(offset) <= MAX_OFFSET_DAYS):
        errors.add("offset_days", f"Offset days must be between 0 and {MAX_OFFSET_DAYS}.")


def check_unchangeable(group: TargetGroup, data: dict, started: bool, errors: Errors) -> None:
    """The name and the target value mode never change; once the milestone has `started`,
    neither do its start nor its cycles."""
    if "name" in data and (data["name"] or "").strip() != group.name:
        errors.add("name", "The milestone's name cannot be changed after creation.")
    if "target_value_mode" in data and data["target_value_mode"] != group.target_value_mode:
        errors.add("target_value_mode", "The target value mode cannot be changed after creation.")
    if started:
        if "start" in data and data["start"] != group.start:
            errors.add("start", "The start date cannot be changed once the milestone has started.")
        if "cycle" in data and data["cycle"]:
            errors.add("cycle", "Cycles cannot be changed once the milestone has started.")
