"""The rule language of target filters (the rule box) and promotion conditions.

A pure module: no Django, no database. Rules are CEL expressions (Google's Common
Expression Language, run by the Rust engine of the ``common-expression-language``
package), checked against the four profiles of the reference, compiled once and
evaluated many times::

    rule = compile_rule('currentEvent.targetAchieved("ABC") > currentEvent.targetDefined("ABC")')
    rule.evaluate(RuleContext(event=EventProfile(targets={"ABC": (Decimal(700), Decimal(500))})))

See docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import cel

from .compiler import TARGET_FUNCTIONS, translate
from .context import (
    CONVERTERS,
    HELPERS,
    SLOTS,
    EventProfile,
    RuleContext,
    as_rule_context,
    target_functions,
    targets_of,
)
from .errors import RuleError
from .schema import (
    ENTITY_PROFILES,
    LINE_ITEM_MESSAGE,
    PROFILES,
    PURPOSES,
    TENDER_MESSAGE,
)
from .syntax import MAX_NESTING_DEPTH, MAX_TREE_DEPTH, parse

__all__ = [
    "ENTITIES",
    "MAX_NESTING_DEPTH",
    "MAX_RULE_LENGTH",
    "MAX_TREE_DEPTH",
    "PROFILES",
    "LINE_ITEM_MESSAGE",
    "TENDER_MESSAGE",
    "EventProfile",
    "Rule",
    "RuleContext",
    "RuleError",
    "compile_rule",
    "validate_rule",
]

MAX_RULE_LENGTH = 2000

#: The entities a target's rule box may be written for.
ENTITIES = tuple(e for e in ENTITY_PROFILES if e is not None)

_CACHE_SIZE = 4096
_TARGET_HELPERS = frozenset(TARGET_FUNCTIONS.values())
_EMPTY_WHEN_ABSENT = (CONVERTERS["map"], CONVERTERS["list"])
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


class Rule:
    """A compiled rule. Immutable and safe to share between threads."""

    __slots__ = (
        "source",
        "purpose",
        "entity",
        "cel_source",
        "profiles",
        "attributes",
        "target_names",
        "_program",
        "_plan",
        "_target_functions",
        "_helpers",
    )

    def __init__(self, source: str, purpose: str, entity: str | None):
        self.source = source
        self.purpose = purpose
        self.entity = entity
        try:
            translation = translate(_parse(source), purpose, entity)
        except RecursionError:
            raise RuleError("Rule is too deeply nested") from None
        _check_with_cel(source)
        self.cel_source = translation.cel_source
        try:
            self._program = cel.compile(translation.cel_source)
        except BaseException as exc:  # noqa: BLE001 - the Rust engine's errors vary
            if isinstance(exc, _FATAL):
                raise
            raise RuleError(f"Rule could not be compiled: {_first_line(exc)}") from None
        #: profiles the rule reads, e.g. frozenset({"currentEvent"})
        self.profiles = frozenset(translation.attributes)
        #: attributes read, by profile, e.g. {"currentTxn": frozenset({"value"})}
        self.attributes = {p: frozenset(a) for p, a in translation.attributes.items()}
        #: target names written in quotes in currentEvent.targetAchieved("...") & co.
        self.target_names = frozenset(translation.target_names)
        self._target_functions = frozenset(translation.target_functions)
        self._helpers = {name: HELPERS[name] for name in translation.helpers}
        # (CEL variable, RuleContext field, ((attribute, keys, converter), ...))
        self._plan = tuple(
            (
                profile,
                SLOTS[profile],
                tuple(
                    (
                        name,
                        PROFILES[profile].attributes[name].keys,
                        CONVERTERS[PROFILES[profile].attributes[name].type],
                    )
                    for name in sorted(attrs)
                ),
            )
            for profile, attrs in sorted(translation.attributes.items())
            if attrs
        )

    def __repr__(self) -> str:
        return f"Rule({self.source!r}, purpose={self.purpose!r}, entity={self.entity!r})"

    def __reduce__(self):
        return (_rebuild, (self.source, self.purpose, self.entity))

    def evaluate(self, context: RuleContext | None = None) -> bool:
        """True or False; :class:`RuleError` if the rule fails or is not a condition."""
        result = self.value(context)
        if result is True or result is False:
            return result
        shown = self.source if len(self.source) <= 80 else self.source[:77] + "..."
        raise RuleError(f"Rule must be true or false, but it gave {_describe(result)}: {shown}")

    def value(self, context: RuleContext | None = None) -> object:
        """The raw result (a bool, float, str, list, dict or None)."""
        try:
            activation = self._activation(as_rule_context(context))
            if type(activation) is dict:
                return self._program.execute(activation)
            return self._program.execute(cel.Context(*activation))
        except BaseException as exc:  # noqa: BLE001 - the Rust engine's errors vary
            if isinstance(exc, (RuleError, *_FATAL)):
                raise
            raise RuleError(_runtime_message(exc)) from None

    def _activation(self, context: RuleContext) -> dict | tuple[dict, dict]:
        """The CEL variables (and functions, when the rule calls helpers)."""
        variables: dict[str, object] = {}
        for var, slot, fields in self._plan:
            source = getattr(context, slot)
            if source is None:
                continue  # absent profile: reading it is an error at evaluation
            values: dict[str, object] = {}
            is_event = isinstance(source, EventProfile)
            if not is_event and not isinstance(source, Mapping):
                raise RuleError(
                    f"Rule could not be evaluated: {var} must be a dict, "
                    f"not {type(source).__name__}"
                )
            for name, keys, convert in fields:
                try:
                    if is_event:
                        values[name] = convert(getattr(source, keys[0]))
                        continue
                    for key in keys:
                        if key in source:
                            values[name] = convert(source[key])
                            break
                    else:
                        if convert in _EMPTY_WHEN_ABSENT:  # maps and lists: empty
                            values[name] = convert(None)
                except RuleError as exc:
                    raise RuleError(
                        f"Rule could not be evaluated: {var}.{name}: {exc.message}"
                    ) from None
            variables[var] = values
        if not (self._target_functions or self._helpers):
            return variables
        functions = self._helpers
        if self._target_functions and context.event is not None:
            functions = target_functions(targets_of(context.event), self._target_functions)
            functions.update(self._helpers)
        return variables, functions


def compile_rule(source: str, *, purpose: str = "promotion", entity: str | None = None) -> Rule:
    """Check and compile ``source``; raise :class:`RuleError` if it is not a valid rule.

    ``purpose`` is ``"target"`` (the rule box of a milestone target, whose tracked
    ``entity`` is one of :data:`ENTITIES`) or ``"promotion"`` (a promotion's
    condition). Compiled rules are cached.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    if entity not in ENTITY_PROFILES:
        raise ValueError(f"entity must be one of {ENTITIES} or None, not {entity!r}")
    if not isinstance(source, str):
        raise RuleError(f"A rule must be text, not {type(source).__name__}")
    return _compile(source, purpose, entity)


def validate_rule(source: str, *, purpose: str = "promotion", entity: str | None = None) -> None:
    """Raise :class:`RuleError` if ``source`` is not a valid rule."""
    compile_rule(source, purpose=purpose, entity=entity)


@lru_cache(maxsize=_CACHE_SIZE)
def _compile(source: str, purpose: str, entity: str | None) -> Rule:
    return Rule(source, purpose, entity)


def _rebuild(source: str, purpose: str, entity: str | None) -> Rule:
    return compile_rule(source, purpose=purpose, entity=entity)


def _parse(source: str):
    if len(source) > MAX_RULE_LENGTH:
        raise RuleError(
            f"Rule is too long: {len(source)} characters (the limit is {MAX_RULE_LENGTH})"
        )
    if not source.strip():
        raise RuleError("Rule is empty")
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RuleError("Rule contains an invalid character", exc.start) from None
    return parse(source)


def _check_with_cel(source: str) -> None:
    """The rule as written must also be valid CEL (it is what the reference shows)."""
    try:
        cel.compile(source)
    except BaseException as exc:  # noqa: BLE001 - the Rust engine's errors vary
        if isinstance(exc, _FATAL):
            raise
        message, position = _cel_syntax_error(source, exc)
        raise RuleError(message, position) from None


def _cel_syntax_error(source: str, exc: BaseException) -> tuple[str, int | None]:
    # "Failed to parse expression '...': ERROR: <input>:LINE:COL: Syntax error: ..."
    text = str(exc)
    marker = "ERROR: <input>:"
    at = text.find(marker)
    if at < 0:
        return f"Syntax error: {_first_line(exc)}", None
    rest = text[at + len(marker) :].split("\n", 1)[0]
    try:
        line_s, col_s, detail = rest.split(":", 2)
        line, col = int(line_s), int(col_s)
    except ValueError:
        return f"Syntax error: {rest}", None
    offset = sum(len(s) + 1 for s in source.split("\n")[: line - 1]) + max(col - 1, 0)
    detail = detail.strip()
    if detail.lower().startswith("syntax error:"):
        detail = detail[len("syntax error:") :].strip()
    return f"Syntax error: {detail}", min(offset, len(source))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.split("\n", 1)[0]


def _runtime_message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"Rule could not be evaluated: no value for {exc}"
    text = _first_line(exc)
    undefined = "Undefined variable or function: '"
    if text.startswith(undefined):
        name = text[len(undefined) :].split("'", 1)[0]
        if name in PROFILES or name in _TARGET_HELPERS:
            profile = name if name in PROFILES else "currentEvent"
            return f"Rule could not be evaluated: {profile} is not available for this activity"
    if isinstance(exc, ZeroDivisionError) or "ZeroDivisionError" in text:
        return "Rule could not be evaluated: division by zero"
    # A helper's error: "Function '_div' error: Python function call failed: TypeError: ..."
    marker = "Python function call failed: "
    if marker in text:
        text = text.split(marker, 1)[1].split(": ", 1)[-1]
    # Trim the engine's generic advice ("... Check that the variable is defined ...").
    for cut in (". Check ", ". CEL does not coerce", ". Convert explicitly"):
        at = text.find(cut)
        if at > 0:
            text = text[:at]
    return f"Rule could not be evaluated: {text}"


def _describe(value: object) -> str:
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
