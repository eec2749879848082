"""Validation of a parsed rule and its translation to the CEL text that runs.

The translation is a normalisation, not a new language: every number becomes a CEL
double (so ``currentTxn.value >= 100`` and ``currentTxn.value * 2`` work whatever
the amounts' type), ``currentEvent.targetAchieved("T")`` and its siblings become
calls of hidden helper functions, and ``.contains`` on a list or a map becomes CEL's
``in``. Nothing else changes.
"""

from __future__ import annotations

import math

from .errors import RuleError
from .schema import (
    ENTITY_LABELS,
    ENTITY_PROFILES,
    LINE_ITEM,
    LINE_ITEM_MESSAGE,
    PROFILES,
    TENDER_MESSAGE,
    is_tender_name,
)
from .syntax import (
    LEVEL_ADD,
    LEVEL_AND,
    LEVEL_CONDITIONAL,
    LEVEL_MEMBER,
    LEVEL_OR,
    LEVEL_PRIMARY,
    LEVEL_RELATION,
    LEVEL_UNARY,
    Call,
    Chain,
    Conditional,
    Ident,
    Index,
    ListLit,
    Literal,
    MapLit,
    Node,
    Select,
    Unary,
)

#: Hidden CEL functions the translation calls (the user cannot name them: a rule may
#: only name the four profiles, and the global functions below).
TARGET_FUNCTIONS = {
    "targetAchieved": "_targetAchieved",
    "targetDefined": "_targetDefined",
    "targetExists": "_targetExists",
    "targetGaps": "_targetGaps",
}
CONTAINS_FUNCTION = "_contains"
MOD_FUNCTION = "_mod"
DIV_FUNCTION = "_div"

GLOBAL_FUNCTIONS = {"size": "number", "int": "number", "double": "number", "string": "string"}
METHODS = {"contains": "bool", "startsWith": "bool", "endsWith": "bool", "matches": "bool"}
COMPREHENSIONS = frozenset(("all", "exists", "exists_one", "map", "filter"))

_COMPREHENSION_MESSAGE = (
    "'{name}' is not supported: list comprehensions (all, exists, exists_one, map, "
    "filter) are disabled to keep the cost of a rule bounded"
)


class Translation:
    """What the compiler learnt about a rule."""

    __slots__ = ("cel_source", "attributes", "target_names", "target_functions", "helpers")

    def __init__(self) -> None:
        self.cel_source = ""
        self.attributes: dict[str, set[str]] = {}  # profile -> attributes read
        self.target_names: set[str] = set()  # literal target names passed to currentEvent.*
        self.target_functions: set[str] = set()  # targetAchieved, ... used
        self.helpers: set[str] = set()  # _contains, _mod, _div used


def format_number(value: float) -> str:
    text = repr(float(value))
    if not math.isfinite(float(value)):
        raise ValueError(value)
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def format_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Compiler:
    def __init__(self, purpose: str, entity: str | None):
        self.purpose = purpose
        self.entity = entity
        self.allowed = ENTITY_PROFILES[entity] if purpose == "target" else ENTITY_PROFILES[None]
        self.out = Translation()

    def translate(self, node: Node) -> Translation:
        text, _type, _level = self.value(node)
        self.out.cel_source = text
        return self.out

    # --------------------------------------------------------------- profiles
    def profile(self, node: Ident) -> str:
        name = node.name
        if name not in PROFILES:
            if self.purpose == "target" and is_tender_name(name):
                raise RuleError(TENDER_MESSAGE, node.pos)
            raise RuleError(
                f"Unknown profile '{name}': a rule can use currentTxn, currentLineItem, "
                "currentEvent and currentCustomer",
                node.pos,
            )
        if name not in self.allowed:
            if name == LINE_ITEM:
                raise RuleError(LINE_ITEM_MESSAGE, node.pos)
            allowed = ", ".join(p for p in PROFILES if p in self.allowed)
            raise RuleError(
                f"{name} is not available in the rule box of a target tracking "
                f"{ENTITY_LABELS.get(self.entity or '', self.entity)}; use {allowed}",
                node.pos,
            )
        self.out.attributes.setdefault(name, set())
        return name

    def attribute(self, node: Select) -> tuple[str, str, int]:
        assert isinstance(node.operand, Ident)
        name = self.profile(node.operand)
        spec = PROFILES[name]
        field = node.field
        attr = spec.attributes.get(field)
        if attr is None:
            if self.purpose == "target" and is_tender_name(field):
                raise RuleError(TENDER_MESSAGE, node.pos)
            if field in spec.methods:
                raise RuleError(
                    f'{name}.{field} needs a target name: write {name}.{field}("Target Name")',
                    node.pos,
                )
            known = ", ".join(spec.attributes)
            raise RuleError(
                f"Unknown attribute '{field}' of {name}; its attributes are {known}", node.pos
            )
        self.out.attributes[name].add(field)
        return f"{name}.{field}", attr.type, LEVEL_MEMBER

    # ------------------------------------------------------------------ values
    def value(self, node: Node, keep_int: bool = False) -> tuple[str, str, int]:
        """Translate ``node``; return (CEL text, static type, precedence level)."""
        if isinstance(node, Literal):
            return self.literal(node, keep_int)
        if isinstance(node, Ident):
            name = self.profile(node)
            example = next(iter(PROFILES[name].attributes))
            raise RuleError(
                f"{name} is a profile, not a value: use one of its attributes, "
                f"e.g. {name}.{example}",
                node.pos,
            )
        if isinstance(node, Select):
            if isinstance(node.operand, Ident):
                return self.attribute(node)
            text, typ, level = self.value(node.operand)
            if typ in ("number", "string", "bool", "list", "null"):
                raise RuleError(f"'{node.field}' cannot be read from a {typ}", node.pos)
            return f"{self.wrap(text, level, LEVEL_MEMBER)}.{node.field}", "dyn", LEVEL_MEMBER
        if isinstance(node, Index):
            text, typ, level = self.value(node.operand)
            if typ in ("number", "bool", "null"):
                raise RuleError(f"A {typ} cannot be indexed", node.pos)
            index, _t, _l = self.value(node.index, keep_int=True)
            return f"{self.wrap(text, level, LEVEL_MEMBER)}[{index}]", "dyn", LEVEL_MEMBER
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Chain):
            return self.chain(node)
        if isinstance(node, Conditional):
            cond, _t, lc = self.value(node.cond)
            then, t1, lt = self.value(node.then)
            other, t2, lo = self.value(node.otherwise)
            text = (
                f"{self.wrap(cond, lc, LEVEL_OR)} ? {self.wrap(then, lt, LEVEL_OR)} : "
                f"{self.wrap(other, lo, LEVEL_CONDITIONAL)}"
            )
            return text, t1 if t1 == t2 else "dyn", LEVEL_CONDITIONAL
        if isinstance(node, ListLit):
            items = [self.value(item)[0] for item in node.items]
            return "[" + ", ".join(items) + "]", "list", LEVEL_PRIMARY
        if isinstance(node, MapLit):
            parts = []
            for key, val in node.entries:
                k, kt, _l = self.value(key, keep_int=True)
                if kt not in ("string", "number", "bool", "dyn"):
                    raise RuleError(f"A {kt} cannot be a map key", key.pos)
                parts.append(f"{k}: {self.value(val)[0]}")
            return "{" + ", ".join(parts) + "}", "map", LEVEL_PRIMARY
        raise RuleError("Unsupported expression", node.pos)  # pragma: no cover

    def literal(self, node: Literal, keep_int: bool) -> tuple[str, str, int]:
        kind, val = node.kind, node.value
        if kind in ("int", "float"):
            if kind == "int" and keep_int:
                text = str(val)
            else:
                try:
                    text = format_number(val)  # type: ignore[arg-type]
                except (OverflowError, ValueError):
                    raise RuleError("Number is too large", node.pos) from None
            return text, "number", LEVEL_UNARY if text.startswith("-") else LEVEL_PRIMARY
        if kind == "string":
            return format_string(val), "string", LEVEL_PRIMARY  # type: ignore[arg-type]
        if kind == "bool":
            return ("true" if val else "false"), "bool", LEVEL_PRIMARY
        return "null", "null", LEVEL_PRIMARY

    @staticmethod
    def wrap(text: str, level: int, minimum: int) -> str:
        return text if level >= minimum else f"({text})"

    def unary(self, node: Unary) -> tuple[str, str, int]:
        text, typ, level = self.value(node.operand)
        if node.op == "!" and typ in ("number", "string", "list", "map", "null"):
            raise RuleError(f"'!' needs true or false, not a {typ}", node.pos)
        if node.op == "-" and typ in ("string", "bool", "list", "map", "null"):
            raise RuleError(f"'-' needs a number, not a {typ}", node.pos)
        same_op_chain = isinstance(node.operand, Unary) and node.operand.op == node.op
        if not same_op_chain:
            text = self.wrap(text, level, LEVEL_MEMBER)
        return f"{node.op}{text}", ("bool" if node.op == "!" else "number"), LEVEL_UNARY

    def chain(self, node: Chain) -> tuple[str, str, int]:
        level = node.level
        parts: list[str] = []
        types: list[str] = []
        for i, operand in enumerate(node.operands):
            text, typ, op_level = self.value(operand)
            types.append(typ)
            if i == 0:
                parts.append(self.wrap(text, op_level, level))
            elif node.ops[i - 1] == "%" or (
                node.ops[i - 1] == "/" and not _nonzero_number(operand)
            ):
                # CEL has no '%' on doubles, and a double divided by zero is infinity:
                # helpers compute the remainder (math.fmod) and refuse a zero divisor.
                helper = MOD_FUNCTION if node.ops[i - 1] == "%" else DIV_FUNCTION
                self.out.helpers.add(helper)
                parts[:] = [f"{helper}({''.join(parts)}, {text})"]
            else:
                op = node.ops[i - 1]
                if op == "in" and typ in ("string", "number", "bool", "null"):
                    raise RuleError(
                        f"'in' looks into a list or a map, not a {typ}"
                        + (": use .contains() to search text" if typ == "string" else ""),
                        node.positions[i - 1],
                    )
                if op in ("&&", "||") and typ in ("number", "string", "list", "map", "null"):
                    raise RuleError(f"'{op}' needs true or false, not a {typ}", operand.pos)
                parts.append(f" {op} ")
                parts.append(self.wrap(text, op_level, level + 1))
        if level in (LEVEL_OR, LEVEL_AND) and types[0] in ("number", "string", "list", "map"):
            raise RuleError(f"'{node.ops[0]}' needs true or false, not a {types[0]}", node.pos)
        if level in (LEVEL_OR, LEVEL_AND, LEVEL_RELATION):
            typ = "bool"
        elif level == LEVEL_ADD and all(t == "string" for t in types):
            typ = "string"
        elif all(t == "number" for t in types):
            typ = "number"
        else:
            typ = "dyn"
        return "".join(parts), typ, level

    # ------------------------------------------------------------------- calls
    def call(self, node: Call) -> tuple[str, str, int]:
        name, target, args = node.name, node.target, node.args
        if name in COMPREHENSIONS:
            raise RuleError(_COMPREHENSION_MESSAGE.format(name=name), node.pos)
        if target is None:
            return self.global_call(node)
        if isinstance(target, Ident):
            profile = self.profile(target)
            spec = PROFILES[profile]
            if name not in spec.methods:
                if name in spec.attributes:
                    raise RuleError(f"{profile}.{name} is an attribute, not a function", node.pos)
                hint = (
                    "; its functions are " + ", ".join(spec.methods)
                    if spec.methods
                    else f"; call functions on its attributes, e.g. {profile}.<attribute>.{name}()"
                )
                raise RuleError(f"Unknown function '{name}' of {profile}{hint}", node.pos)
            if len(args) != 1:
                raise RuleError(
                    f'{profile}.{name} takes one target name, e.g. {profile}.{name}("Target Name")',
                    node.pos,
                )
            arg = args[0]
            text, typ, _level = self.value(arg)
            if typ not in ("string", "dyn"):
                raise RuleError(
                    f'{profile}.{name} takes a target name in quotes, e.g. {name}("Target Name")',
                    arg.pos,
                )
            if isinstance(arg, Literal):
                self.out.target_names.add(arg.value)  # type: ignore[arg-type]
            self.out.target_functions.add(name)
            return f"{TARGET_FUNCTIONS[name]}({text})", spec.methods[name], LEVEL_PRIMARY
        # a method on a value
        recv_raw, rtype, rlevel = self.value(target)
        recv = self.wrap(recv_raw, rlevel, LEVEL_MEMBER)
        if name == "size":
            if args:
                raise RuleError("size() takes no argument here", node.pos)
            if rtype in ("number", "bool", "null"):
                raise RuleError(f"size() needs a text, a list or a map, not a {rtype}", node.pos)
            return f"{recv}.size()", "number", LEVEL_MEMBER
        if name not in METHODS:
            if name in TARGET_FUNCTIONS:
                raise RuleError(f'Write currentEvent.{name}("Target Name")', node.pos)
            raise RuleError(
                f"Unknown function '{name}'; the functions are contains, startsWith, "
                "endsWith, matches and size",
                node.pos,
            )
        if len(args) != 1:
            raise RuleError(f"{name}() takes one argument", node.pos)
        arg, atype, alevel = self.value(args[0])
        if name == "contains":
            if rtype == "list" or rtype == "map":
                # CEL's own contains() is for text only: a list or a map uses 'in'.
                return (
                    f"{self.wrap(arg, alevel, LEVEL_ADD)} in {recv}",
                    "bool",
                    LEVEL_RELATION,
                )
            if rtype == "string":
                return f"{recv}.contains({arg})", "bool", LEVEL_MEMBER
            if rtype in ("number", "bool", "null"):
                raise RuleError(f"contains() needs a text or a list, not a {rtype}", node.pos)
            self.out.helpers.add(CONTAINS_FUNCTION)
            return f"{CONTAINS_FUNCTION}({recv_raw}, {arg})", "bool", LEVEL_PRIMARY
        if rtype not in ("string", "dyn"):
            raise RuleError(f"{name}() needs a text, not a {rtype}", node.pos)
        if atype not in ("string", "dyn"):
            raise RuleError(f"{name}() takes a text, not a {atype}", args[0].pos)
        return f"{recv}.{name}({arg})", "bool", LEVEL_MEMBER

    def global_call(self, node: Call) -> tuple[str, str, int]:
        name, args = node.name, node.args
        if name == "has":
            if len(args) != 1 or not isinstance(args[0], Select):
                raise RuleError(
                    "has() takes one attribute, e.g. has(currentTxn.extendedFields.tax)",
                    node.pos,
                )
            text, _t, _l = self.value(args[0])
            return f"has({text})", "bool", LEVEL_PRIMARY
        if name in GLOBAL_FUNCTIONS:
            if len(args) != 1:
                raise RuleError(f"{name}() takes one argument", node.pos)
            text, _t, _l = self.value(args[0])
            return f"{name}({text})", GLOBAL_FUNCTIONS[name], LEVEL_PRIMARY
        if name in TARGET_FUNCTIONS:
            raise RuleError(f'Write currentEvent.{name}("Target Name")', node.pos)
        if name in METHODS:
            raise RuleError(f'{name}() is called on a value, e.g. x.{name}("text")', node.pos)
        raise RuleError(
            f"Unknown function '{name}'; the functions are has, size, int, double and string",
            node.pos,
        )


def _nonzero_number(node: Node) -> bool:
    return isinstance(node, Literal) and node.kind in ("int", "float") and node.value != 0


def translate(tree: Node, purpose: str, entity: str | None) -> Translation:
    return Compiler(purpose, entity).translate(tree)
