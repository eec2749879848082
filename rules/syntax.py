"""Tokenizer and parser for the rule language (the CEL expression grammar, minus
comprehension macros, message construction and bytes).

This module only builds a small syntax tree with character positions, so that
validation can point at the offending character and so that the compiled CEL text
can be normalised (numbers as doubles, hidden helper functions). Evaluation is
done by CEL (``common-expression-language``), never by Python ``eval``.

Pure Python, no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RuleError

#: Deepest allowed nesting of parentheses, brackets, braces, call arguments,
#: unary-operator chains and conditional (``?:``) branches.
MAX_NESTING_DEPTH = 20

#: Deepest allowed syntax tree (operator chains such as ``a && b && c`` count as one
#: level; member chains such as ``a.b.c`` count one level per step).
MAX_TREE_DEPTH = 100

INT64_MAX = 2**63 - 1

# CEL reserves these words; they cannot be used as names.
_RESERVED = frozenset(
    "as break const continue else for function if import let loop package namespace "
    "return var void while".split()
)

_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}

_WHITESPACE = " \t\n\r\f"
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")

_TWO_CHAR_OPS = ("&&", "||", "==", "!=", "<=", ">=")
_ONE_CHAR_OPS = frozenset("!<>+-*/%?:.,()[]{}")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "ident" | "int" | "float" | "string" | "op" | "eof"
    text: str
    value: object
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens; raise :class:`RuleError` with the position of
    the first character that cannot start a token."""
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        c = source[i]
        if c in _WHITESPACE:
            i += 1
            continue
        if source.startswith("//", i):  # comment to end of line
            j = source.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        start = i
        if c in _IDENT_START:
            while i < n and source[i] in _IDENT_CHARS:
                i += 1
            word = source[start:i]
            # String prefixes: r"..." (raw), b"..." (bytes, refused).
            if i < n and source[i] in "'\"" and word.lower() in ("r", "b", "rb", "br"):
                if "b" in word.lower():
                    raise RuleError("Bytes literals are not supported", start)
                value, i = _read_string(source, i, raw=True)
                tokens.append(Token("string", source[start:i], value, start))
                continue
            tokens.append(Token("ident", word, word, start))
            continue
        if c in _DIGITS or (c == "." and i + 1 < n and source[i + 1] in _DIGITS):
            tok, i = _read_number(source, i)
            tokens.append(tok)
            continue
        if c in "'\"":
            value, i = _read_string(source, i, raw=False)
            tokens.append(Token("string", source[start:i], value, start))
            continue
        two = source[i : i + 2]
        if two in _TWO_CHAR_OPS:
            tokens.append(Token("op", two, two, start))
            i += 2
            continue
        if c in _ONE_CHAR_OPS:
            tokens.append(Token("op", c, c, start))
            i += 1
            continue
        if c == "=":
            raise RuleError("Unexpected '=': use '==' to compare values", start)
        if c == "&":
            raise RuleError("Unexpected '&': use '&&' for 'and'", start)
        if c == "|":
            raise RuleError("Unexpected '|': use '||' for 'or'", start)
        raise RuleError(f"Unexpected character {c!r}", start)
    tokens.append(Token("eof", "", None, n))
    return tokens


def _read_number(source: str, i: int) -> tuple[Token, int]:
    n = len(source)
    start = i
    if source.startswith(("0x", "0X"), i):
        i += 2
        while i < n and source[i] in _HEX:
            i += 1
        if i == start + 2:
            raise RuleError("Invalid hexadecimal number", start)
        value = int(source[start + 2 : i], 16)
        if i < n and source[i] in "uU":
            i += 1
        kind = "int"
    else:
        while i < n and source[i] in _DIGITS:
            i += 1
        kind = "int"
        if i + 1 < n and source[i] == "." and source[i + 1] in _DIGITS:
            kind = "float"
            i += 1
            while i < n and source[i] in _DIGITS:
                i += 1
        if i < n and source[i] in "eE":
            j = i + 1
            if j < n and source[j] in "+-":
                j += 1
            if j < n and source[j] in _DIGITS:
                kind = "float"
                i = j
                while i < n and source[i] in _DIGITS:
                    i += 1
        text = source[start:i]
        if kind == "float":
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise RuleError("Number is too large", start)
        else:
            value = int(text)
            if i < n and source[i] in "uU":
                i += 1
    if kind == "int" and value > INT64_MAX + 1:
        raise RuleError(
            "Integer is too large (the limit is 9223372036854775807; write a decimal "
            "number such as 1e20 instead)",
            start,
        )
    if i < n and source[i] in _IDENT_START:
        raise RuleError(f"Invalid number {source[start : i + 1]!r}", start)
    return Token(kind, source[start:i], value, start), i


def _read_string(source: str, i: int, *, raw: bool) -> tuple[str, int]:
    n = len(source)
    start = i
    quote = source[i]
    triple = source.startswith(quote * 3, i)
    delim = quote * 3 if triple else quote
    i += len(delim)
    out: list[str] = []
    while True:
        if i >= n:
            raise RuleError("Unterminated string", start)
        if source.startswith(delim, i):
            return "".join(out), i + len(delim)
        c = source[i]
        if c in "\r\n" and not triple:
            raise RuleError("Unterminated string (strings cannot span lines)", start)
        if c == "\\" and not raw:
            i = _read_escape(source, i, out)
            continue
        out.append(c)
        i += 1


def _read_escape(source: str, i: int, out: list[str]) -> int:
    n = len(source)
    if i + 1 >= n:
        raise RuleError("Unterminated string", i)
    c = source[i + 1]
    if c in _ESCAPES:
        out.append(_ESCAPES[c])
        return i + 2
    width = {"x": 2, "X": 2, "u": 4, "U": 8}.get(c)
    if width is not None:
        digits = source[i + 2 : i + 2 + width]
        if len(digits) != width or any(d not in _HEX for d in digits):
            raise RuleError(f"Invalid escape sequence '\\{c}'", i)
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise RuleError("Invalid Unicode code point in escape sequence", i)
        out.append(chr(code))
        return i + 2 + width
    if c in "0123":
        digits = source[i + 1 : i + 4]
        if len(digits) == 3 and all(d in "01234567" for d in digits):
            out.append(chr(int(digits, 8)))
            return i + 4
    raise RuleError(f"Invalid escape sequence '\\{c}'", i)


# --------------------------------------------------------------------------- AST
#
# Operator chains of one precedence level (``a && b && c``, ``a + b - c``) are kept
# flat in a ``Chain`` so that a long list of conditions does not make a deep tree;
# every node knows its depth, and a tree deeper than MAX_TREE_DEPTH is refused
# while it is built (so no later recursive walk can exhaust the Python stack).


class Node:
    __slots__ = ("pos", "depth")

    def __init__(self, pos: int, *children: Node):
        self.pos = pos
        self.depth = 1 + max((c.depth for c in children), default=0)
        if self.depth > MAX_TREE_DEPTH:
            raise RuleError(
                f"Rule is too deeply nested (the limit is {MAX_TREE_DEPTH} levels)", pos
            )


class Literal(Node):
    __slots__ = ("kind", "value")

    def __init__(self, pos: int, kind: str, value: object):
        super().__init__(pos)
        self.kind = kind  # "int" | "float" | "string" | "bool" | "null"
        self.value = value


class Ident(Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str):
        super().__init__(pos)
        self.name = name


class Select(Node):
    """``operand.field``; ``pos`` is the position of ``field``."""

    __slots__ = ("operand", "field")

    def __init__(self, pos: int, operand: Node, field: str):
        super().__init__(pos, operand)
        self.operand = operand
        self.field = field


class Call(Node):
    """``name(args)`` or ``target.name(args)``; ``pos`` is the position of ``name``."""

    __slots__ = ("name", "target", "args")

    def __init__(self, pos: int, name: str, target: Node | None, args: list[Node]):
        super().__init__(pos, *([target] if target is not None else []), *args)
        self.name = name
        self.target = target
        self.args = args


class Index(Node):
    __slots__ = ("operand", "index")

    def __init__(self, pos: int, operand: Node, index: Node):
        super().__init__(pos, operand, index)
        self.operand = operand
        self.index = index


class Unary(Node):
    __slots__ = ("op", "operand")

    def __init__(self, pos: int, op: str, operand: Node):
        super().__init__(pos, operand)
        self.op = op
        self.operand = operand


class Chain(Node):
    """``operands[0] ops[0] operands[1] ops[1] ...`` (left-associative, one level).
    ``positions[i]`` is where ``ops[i]`` is written."""

    __slots__ = ("level", "ops", "operands", "positions")

    def __init__(self, level: int, ops: list[str], operands: list[Node], positions: list[int]):
        super().__init__(positions[0], *operands)
        self.level = level
        self.ops = ops
        self.operands = operands
        self.positions = positions


class Conditional(Node):
    __slots__ = ("cond", "then", "otherwise")

    def __init__(self, pos: int, cond: Node, then: Node, otherwise: Node):
        super().__init__(pos, cond, then, otherwise)
        self.cond = cond
        self.then = then
        self.otherwise = otherwise


class ListLit(Node):
    __slots__ = ("items",)

    def __init__(self, pos: int, items: list[Node]):
        super().__init__(pos, *items)
        self.items = items


class MapLit(Node):
    __slots__ = ("entries",)

    def __init__(self, pos: int, entries: list[tuple[Node, Node]]):
        super().__init__(pos, *(n for entry in entries for n in entry))
        self.entries = entries


# Precedence levels (CEL's): higher binds tighter.
LEVEL_CONDITIONAL = 1
LEVEL_OR = 2
LEVEL_AND = 3
LEVEL_RELATION = 4
LEVEL_ADD = 5
LEVEL_MULTIPLY = 6
LEVEL_UNARY = 7
LEVEL_MEMBER = 8
LEVEL_PRIMARY = 9

_LEVEL_OPS = {
    LEVEL_OR: frozenset(("||",)),
    LEVEL_AND: frozenset(("&&",)),
    LEVEL_RELATION: frozenset(("==", "!=", "<", "<=", ">", ">=", "in")),
    LEVEL_ADD: frozenset(("+", "-")),
    LEVEL_MULTIPLY: frozenset(("*", "/", "%")),
}


def level_of(node: Node) -> int:
    if isinstance(node, Chain):
        return node.level
    if isinstance(node, Conditional):
        return LEVEL_CONDITIONAL
    if isinstance(node, Unary):
        return LEVEL_UNARY
    if isinstance(node, Literal) and node.kind in ("int", "float") and node.value < 0:
        return LEVEL_UNARY  # "-5" is written with a unary minus
    if isinstance(node, (Select, Index)) or (isinstance(node, Call) and node.target is not None):
        return LEVEL_MEMBER
    return LEVEL_PRIMARY


class _Parser:
    """Recursive descent over CEL's grammar::

    expr     = or ["?" or ":" expr]
    or       = and {"||" and}
    and      = relation {"&&" relation}
    relation = addition {("<"|"<="|">="|">"|"=="|"!="|"in") addition}
    addition = multiply {("+"|"-") multiply}
    multiply = unary {("*"|"/"|"%") unary}
    unary    = member | "!" {"!"} member | "-" {"-"} member
    member   = primary {"." IDENT ["(" [args] ")"] | "[" expr "]"}
    primary  = IDENT ["(" [args] ")"] | "(" expr ")" | "[" [args] [","] "]"
             | "{" [entries] [","] "}" | literal
    """

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at(self, text: str) -> bool:
        t = self.tokens[self.i]
        return t.kind == "op" and t.text == text

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def expect(self, text: str, what: str) -> Token:
        if not self.at(text):
            self.fail(f"Expected {what}")
        return self.advance()

    def fail(self, message: str, tok: Token | None = None) -> None:
        tok = tok or self.tok
        if tok.kind == "eof":
            raise RuleError(f"{message}, but the rule ended", tok.pos)
        raise RuleError(f"{message}, found {tok.text!r}", tok.pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING_DEPTH:
            raise RuleError(
                f"Rule is too deeply nested (the limit is {MAX_NESTING_DEPTH} levels)", pos
            )

    def leave(self) -> None:
        self.depth -= 1

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise RuleError("Rule is empty", 0)
        node = self.expr()
        if self.tok.kind != "eof":
            self.fail("Expected an operator or the end of the rule")
        return node

    def expr(self) -> Node:
        node = self.chain(LEVEL_OR)
        if self.at("?"):
            q = self.advance()
            self.enter(q.pos)
            then = self.chain(LEVEL_OR)
            self.expect(":", "':' of a conditional 'a ? b : c'")
            node = Conditional(q.pos, node, then, self.expr())
            self.leave()
        return node

    def chain(self, level: int) -> Node:
        sub = self.unary if level == LEVEL_MULTIPLY else lambda: self.chain(level + 1)
        first = sub()
        ops_allowed = _LEVEL_OPS[level]
        ops: list[str] = []
        operands = [first]
        positions: list[int] = []
        while True:
            t = self.tok
            if t.text in ops_allowed and (t.kind == "op" or (t.kind == "ident" and t.text == "in")):
                self.advance()
                ops.append(t.text)
                positions.append(t.pos)
                operands.append(sub())
            else:
                break
        if not ops:
            return first
        return Chain(level, ops, operands, positions)

    def unary(self) -> Node:
        if self.at("!") or self.at("-"):
            ops: list[Token] = []
            while self.at("!") or self.at("-"):
                t = self.advance()
                self.enter(t.pos)
                ops.append(t)
            node = self.member()
            for t in reversed(ops):
                if t.text == "-" and isinstance(node, Literal) and node.kind in ("int", "float"):
                    node = Literal(t.pos, node.kind, -node.value)  # a negative number
                else:
                    node = Unary(t.pos, t.text, node)
                self.leave()
            return node
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.at("."):
                self.advance()
                name = self.tok
                if name.kind != "ident":
                    self.fail("Expected a name after '.'")
                self.advance()
                if self.at("("):
                    node = Call(name.pos, name.text, node, self.args(")"))
                else:
                    node = Select(name.pos, node, name.text)
            elif self.at("["):
                b = self.advance()
                self.enter(b.pos)
                index = self.expr()
                self.expect("]", "']'")
                self.leave()
                node = Index(b.pos, node, index)
            else:
                return node

    def args(self, close: str) -> list[Node]:
        opener = self.advance()
        self.enter(opener.pos)
        items: list[Node] = []
        if not self.at(close):
            items.append(self.expr())
            while self.at(","):
                self.advance()
                if close == "]" and self.at(close):
                    break  # trailing comma in a list
                items.append(self.expr())
        self.expect(close, f"',' or '{close}'")
        self.leave()
        return items

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "ident":
            self.advance()
            if t.text in ("true", "false"):
                return Literal(t.pos, "bool", t.text == "true")
            if t.text == "null":
                return Literal(t.pos, "null", None)
            if t.text == "in" or t.text in _RESERVED:
                raise RuleError(f"'{t.text}' is a reserved word", t.pos)
            if self.at("("):
                return Call(t.pos, t.text, None, self.args(")"))
            return Ident(t.pos, t.text)
        if t.kind in ("int", "float"):
            self.advance()
            return Literal(t.pos, t.kind, t.value)
        if t.kind == "string":
            self.advance()
            return Literal(t.pos, "string", t.value)
        if self.at("("):
            self.advance()
            self.enter(t.pos)
            node = self.expr()
            self.expect(")", "')'")
            self.leave()
            return node
        if self.at("["):
            return ListLit(t.pos, self.args("]"))
        if self.at("{"):
            return self.map_literal()
        if self.at("."):
            self.fail("Names starting with '.' are not supported")
        self.fail("Expected a value, a name or '('")
        raise AssertionError("unreachable")

    def map_literal(self) -> Node:
        opener = self.advance()
        self.enter(opener.pos)
        entries: list[tuple[Node, Node]] = []
        while not self.at("}"):
            key = self.expr()
            self.expect(":", "':' between a key and its value")
            entries.append((key, self.expr()))
            if not self.at(","):
                break
            self.advance()
        self.expect("}", "',' or '}'")
        self.leave()
        return MapLit(opener.pos, entries)


def parse(source: str) -> Node:
    """Parse ``source`` into a syntax tree or raise :class:`RuleError`."""
    return _Parser(tokenize(source)).parse()
