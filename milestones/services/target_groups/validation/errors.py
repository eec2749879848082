"""How refusals are collected: one `ValidationError` names every refused field at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

#: The code of a "Target N (...): ..." error about one field of the target: `target_field:kpi`.
TARGET_FIELD_CODE = "target_field:"


@dataclass
class Errors:
    """Collects refusals so one answer lists every problem of a request."""

    items: dict[str, list[str | ValidationError]] = field(default_factory=dict)

    def add(self, key: str, message: str, *, target_field: str | None = None) -> None:
        """`target_field`: the field of the target a "Target N (...): ..." message is about,
        carried as the error's code (`target_field:kpi`) so a screen can show it there."""
        if target_field:
            self.items.setdefault(key, []).append(
                ValidationError(message, code=f"{TARGET_FIELD_CODE}{target_field}")
            )
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

    def add(self, message: str, *, target_field: str | None = None) -> None:
        self.errors.add(self.key, f"{self.label}: {message}", target_field=target_field)

    def within(self, label: str) -> About:
        """A part of this thing: "Target 2 (Spend), sub-target 1 (Half): ..."."""
        return About(self.errors, self.key, f"{self.label}, {label}")


def amount(value, about: About, what: str) -> Decimal | None:
    """`value` as a Decimal that is finite, not negative and not too large; None (with a
    refusal about `what`, e.g. "the target value") when it is not, or blank."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        about.add(f"{what} must be a number, got {value!r}.")
        return None
    if not number.is_finite():
        about.add(f"{what} must be a finite number.")
        return None
    if number < 0:
        about.add(f"{what} cannot be negative.")
        return None
    if abs(number) >= Decimal("1e14"):
        about.add(f"{what} is too large.")
        return None
    return number
