"""What a rule is evaluated against, and its conversion to CEL values.

Only the profiles and attributes a rule reads are converted, once per evaluation:
numbers become floats (CEL doubles), texts stay texts, maps and lists are copied
with their numbers converted the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import RuleError

_MAX_VALUE_DEPTH = 16


@dataclass
class EventProfile:
    """The ``currentEvent`` profile.

    ``targets`` maps the name of every target the customer is enrolled in (not only
    the event's own) to ``(achieved, defined)`` for the cycle being evaluated, so one
    rule can combine several targets.
    """

    name: str = ""
    attributes: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    is_target_achieved_event: bool = False
    is_near_miss_event: bool = False
    milestone_value_defined: Decimal | None = None
    target_milestone_trigger: list = field(default_factory=list)
    target_name: str = ""
    target_period: str = ""


@dataclass
class RuleContext:
    """The activity a rule is evaluated against; a profile left as ``None`` is absent
    (a rule reading it fails with :class:`RuleError`)."""

    txn: dict | None = None
    line_item: dict | None = None
    event: EventProfile | dict | None = None
    customer: dict | None = None


#: profile name -> RuleContext field
SLOTS = {
    "currentTxn": "txn",
    "currentLineItem": "line_item",
    "currentEvent": "event",
    "currentCustomer": "customer",
}


def as_rule_context(context: object) -> RuleContext:
    if isinstance(context, RuleContext):
        return context
    if context is None:
        return RuleContext()
    if isinstance(context, Mapping):
        # {"currentTxn": {...}, ...} or {"txn": {...}, ...}
        kwargs = {}
        for profile, slot in SLOTS.items():
            value = context.get(profile, context.get(slot))
            if value is not None:
                kwargs[slot] = value
        return RuleContext(**kwargs)
    raise RuleError(f"Cannot evaluate a rule against a {type(context).__name__}")


# ----------------------------------------------------------------- conversion


def to_number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, (int, Decimal)):  # bool is an int: True -> 1.0
        try:
            return float(value)
        except (OverflowError, ValueError):
            raise RuleError(f"Number out of range: {value!r}") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise RuleError(f"Not a number: {value!r}") from None
    raise RuleError(f"Not a number: {type(value).__name__}")


def to_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(plain(value))


def to_bool(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def to_list(value: object) -> list | None:
    if value is None:
        return []
    result = plain(value)
    return result if isinstance(result, list) else [result]


def to_map(value: object) -> dict | None:
    if value is None:
        return {}
    result = plain(value)
    if not isinstance(result, dict):
        raise RuleError(f"Not a map: {type(value).__name__}")
    return result


def plain(value: object, depth: int = 0) -> object:
    """A CEL-friendly copy of ``value``: numbers as floats, maps with text keys."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, (int, Decimal)):
        return to_number(value)
    if depth >= _MAX_VALUE_DEPTH:
        raise RuleError("Value is too deeply nested")
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str) else str(k)): plain(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


CONVERTERS: dict[str, Callable[[object], object]] = {
    "number": to_number,
    "string": to_text,
    "bool": to_bool,
    "list": to_list,
    "map": to_map,
}


# ------------------------------------------------------------------ functions


def _pair(targets: object, name: object) -> tuple[object, object] | None:
    if not isinstance(name, str) or not isinstance(targets, Mapping):
        return None
    entry = targets.get(name)
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        return entry.get("achieved"), entry.get("defined")
    try:
        achieved, defined = entry
    except (TypeError, ValueError):
        return None
    return achieved, defined


def _zero(value: object) -> float | None:
    """``value`` as a float, 0 for None; None (a CEL null) if it is not a number."""
    try:
        number = to_number(value)
    except RuleError:
        return None
    return 0.0 if number is None else number


def target_functions(targets: object, used: frozenset[str]) -> dict[str, Callable]:
    """``currentEvent.targetAchieved("T")`` and its siblings, over ``targets``.

    A target the customer is not in reads as achieved 0, defined 0, gap 0 and
    ``targetExists`` false.
    """
    functions: dict[str, Callable] = {}
    if "targetAchieved" in used:

        def achieved(name: object) -> float | None:
            if not isinstance(name, str):
                return None
            pair = _pair(targets, name)
            return 0.0 if pair is None else _zero(pair[0])

        functions["_targetAchieved"] = achieved
    if "targetDefined" in used:

        def defined(name: object) -> float | None:
            if not isinstance(name, str):
                return None
            pair = _pair(targets, name)
            return 0.0 if pair is None else _zero(pair[1])

        functions["_targetDefined"] = defined
    if "targetExists" in used:

        def exists(name: object) -> bool | None:
            if not isinstance(name, str):
                return None
            pair = _pair(targets, name)
            return pair is not None and pair[1] is not None

        functions["_targetExists"] = exists
    if "targetGaps" in used:

        def gaps(name: object) -> float | None:
            if not isinstance(name, str):
                return None
            pair = _pair(targets, name)
            if pair is None:
                return 0.0
            achieved_value, defined_value = _zero(pair[0]), _zero(pair[1])
            if achieved_value is None or defined_value is None:
                return None
            return defined_value - achieved_value

        functions["_targetGaps"] = gaps
    return functions


def contains(container: object, item: object) -> bool:
    """``x.contains(y)`` when ``x`` is not known to be a text: text, list or map."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise TypeError(f"a text contains texts, not a {_cel_type(item)}")
        return item in container
    if isinstance(container, list):
        return item in container
    if isinstance(container, dict):
        return isinstance(item, (str, int, float, bool)) and item in container
    raise TypeError(f"contains() needs a text, a list or a map, not a {_cel_type(container)}")


def _numbers(a: object, b: object, op: str) -> tuple[float, float]:
    if (
        not isinstance(a, (int, float))
        or not isinstance(b, (int, float))
        or isinstance(a, bool)
        or isinstance(b, bool)
    ):
        raise TypeError(f"'{op}' needs numbers, not {_cel_type(a)} and {_cel_type(b)}")
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return float(a), float(b)


def _cel_type(value: object) -> str:
    return {bool: "bool", str: "string", list: "list", dict: "map", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


def div(dividend: object, divisor: object) -> float:
    """``a / b`` on numbers; a zero divisor is an error (not infinity)."""
    a, b = _numbers(dividend, divisor, "/")
    return a / b


def mod(dividend: object, divisor: object) -> float:
    """``a % b`` on numbers: the remainder with the sign of ``a`` (as CEL's int %)."""
    a, b = _numbers(dividend, divisor, "%")
    return math.fmod(a, b)


#: Helpers the compiled CEL may call, by name.
HELPERS: dict[str, Callable] = {"_contains": contains, "_div": div, "_mod": mod}


class _QuietHelperErrors(logging.Filter):
    """The CEL engine logs a warning whenever a Python function raises; our helpers
    raise on purpose (division by zero, wrong types), and the error reaches the
    caller as a RuleError, so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f"function '{name}' failed" in message for name in HELPERS)


logging.getLogger("cel").addFilter(_QuietHelperErrors())


def targets_of(event: object) -> object:
    if isinstance(event, EventProfile):
        return event.targets
    if isinstance(event, Mapping):
        return event.get("targets") or {}
    return {}
