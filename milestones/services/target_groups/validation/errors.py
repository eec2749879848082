"""How refusals are collected: one `ValidationError` names every refused field at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

#: The code of a "Target N (...): ..." error about one field of the target: `target_field:kpi`
#: (a sub-target's: `target_field:sub_targets.2.value`, the second sub-target sent; a cycle's
#: value: `target_field:period_values.P2`). An error about a target that does not start with
#: "Target N" carries the target's position too: `target_field:name@2`.
TARGET_FIELD_CODE = "target_field:"
#: The code of an error about one part of a milestone-level key, e.g. the "cycle" error about
#: its frequency: `field:frequency`, or about the end of the second custom period:
#: `field:periods.2.end`.
FIELD_CODE = "field:"


@dataclass
class Errors:
    """Collects refusals so one answer lists every problem of a request."""

    items: dict[str, list[str | ValidationError]] = field(default_factory=dict)

    def add(
        self,
        key: str,
        message: str,
        *,
        target_field: str | None = None,
        target: int | None = None,
        field: str | None = None,
    ) -> None:
        """`target_field`: the field of the target a "Target N (...): ..." message is about,
        carried as the error's code (`target_field:kpi`, with `@N` when the message does not
        name the target's position `target`) so a screen can show it there; `field`: the part
        of `key` it is about (`field:frequency`). The API shows the message alone."""
        code = None
        if target_field:
            code = f"{TARGET_FIELD_CODE}{target_field}" + (f"@{target}" if target else "")
        elif field:
            code = f"{FIELD_CODE}{field}"
        if code:
            self.items.setdefault(key, []).append(ValidationError(message, code=code))
        else:
            self.items.setdefault(key, []).append(message)

    def has(self, key: str) -> bool:
        return bool(self.items.get(key))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.items)


@dataclass
class About:
    """Refusals about one thing (a target, a sub-target): filed under `key`, each message
    starting with `label`, e.g. "Target 2 (Spend): ..."."""

    errors: Errors
    key: str
    label: str
    field_prefix: str = ""  # a part's fields: "sub_targets.1." (see TARGET_FIELD_CODE)

    def add(self, message: str, *, target_field: str | None = None) -> None:
        if target_field:
            target_field = f"{self.field_prefix}{target_field}"
        self.errors.add(self.key, f"{self.label}: {message}", target_field=target_field)

    def within(self, label: str, field_prefix: str = "") -> About:
        """A part of this thing: "Target 2 (Spend), sub-target 1 (Half): ..."."""
        return About(self.errors, self.key, f"{self.label}, {label}", field_prefix)


def amount(value, about: About, what: str, field: str | None = None) -> Decimal | None:
    """`value` as a Decimal that is finite, not negative and not too large; None (with a
    refusal about `what`, e.g. "the target value", at the target's `field`) when it is not,
    or blank."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        about.add(f"{what} must be a number, got {value!r}.", target_field=field)
        return None
    if not number.is_finite():
        about.add(f"{what} must be a finite number.", target_field=field)
        return None
    if number < 0:
        about.add(f"{what} cannot be negative.", target_field=field)
        return None
    if abs(number) >= Decimal("1e14"):
        about.add(f"{what} is too large.", target_field=field)
        return None
    return number
