"""The run search language: a tokenizer and a recursive-descent parser.

``metrics.acc > 0.9 and (params.lr = '0.01' or tags.`team name` IN ('a', 'b'))``
becomes a small typed tree (:class:`Comparison`, :class:`And`, :class:`Or`,
:class:`Not`); ``metrics.acc DESC`` becomes an :class:`OrderTerm`. Nothing here
touches SQL: :mod:`shipyard.tracking.search` turns the tree into SQLAlchemy
expressions with bound parameters.

Grammar (keywords are case-insensitive; AND binds tighter than OR)::

    filter     := or_expr EOF
    or_expr    := and_expr (OR and_expr)*
    and_expr   := not_expr (AND not_expr)*
    not_expr   := NOT not_expr | '(' or_expr ')' | comparison
    comparison := field ( cmp_op value
                        | [NOT] (LIKE | ILIKE) value
                        | [NOT] IN '(' value (',' value)* ')'
                        | IS [NOT] NULL )
    cmp_op     := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    field      := (metrics|params|tags|attributes) '.' key | attribute_name
                | datasets '.' (name|digest|context)
    key        := bare_key | `quoted` | "quoted"
    value      := 'string' | "string" | number
    order_term := field [ASC | DESC]

A bare key is letters, digits and ``_ . - /``; anything else goes in backticks
or double quotes. Inside a quoted token the quote character is written twice
to stand for itself (``'it''s'``). Positions in error messages are 0-based
character offsets into the string that was parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NoReturn

from shipyard.errors import InvalidInput
from shipyard.int64 import INT64_MAX, INT64_MIN, parse_int64
from shipyard.tracking.types import text_problem

FieldKind = Literal["metric", "param", "tag", "attribute", "dataset"]

MAX_LENGTH = 20_000
MAX_DEPTH = 64

# Prefix spellings users write (MLflow accepts the singular forms too).
_PREFIXES: dict[str, FieldKind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "datasets": "dataset",
    "dataset": "dataset",
}
# What ``datasets.<field>`` may name: a run's inputs (MLflow's spelling).
DATASET_FIELDS = ("name", "digest", "context")

# Every accepted attribute spelling -> the canonical name the compiler knows.
ATTRIBUTE_ALIASES: dict[str, str] = {
    "status": "status",
    "name": "name",
    "run_name": "name",
    "user": "user",
    "start_time": "start_time",
    "end_time": "end_time",
    "run_id": "run_id",
    "id": "run_id",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_run_id",
}
VALID_ATTRIBUTES = ", ".join(sorted(ATTRIBUTE_ALIASES))

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "like", "ilike", "asc", "desc"})
_CMP_OPS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_OPERATORS_HINT = "an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)"

# Tokenizing with a regex is fine: its output only ever becomes bound values. ASCII
# digits only (\d would take '٢' too, which float() and int() read as 2).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_]")


# --- The tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """What a comparison or an ordering looks at: ``kind`` plus the key (for an
    attribute, its canonical name)."""

    kind: FieldKind
    key: str
    pos: int

    @property
    def label(self) -> str:
        """How the field reads in messages, e.g. ``metrics.acc``."""
        prefix = {"metric": "metrics", "param": "params", "tag": "tags", "dataset": "datasets"}.get(
            self.kind
        )
        return f"{prefix}.{self.key}" if prefix else f"attributes.{self.key}"


@dataclass(frozen=True)
class Number:
    """A numeric literal; ``text`` keeps its spelling for string comparisons."""

    value: int | float
    text: str


Value = str | Number


@dataclass(frozen=True)
class Comparison:
    """``field op value``. ``value`` is a tuple for IN / NOT IN, None for IS [NOT] NULL."""

    field: Field
    op: str
    value: Value | tuple[Value, ...] | None
    pos: int


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """``item`` does not hold."""

    item: Expr


Expr = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderTerm:
    """One ``order_by`` item."""

    field: Field
    descending: bool


# --- Tokens ------------------------------------------------------------------------

TokenKind = Literal["word", "number", "string", "op", "lparen", "rparen", "comma", "eof"]


@dataclass(frozen=True)
class Token:
    """One lexical unit and where it starts in the source."""

    kind: TokenKind
    text: str  # for a string: its content, unquoted
    pos: int
    quote: str = ""  # the quote character of a string token

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words

    def shown(self) -> str:
        if self.kind == "eof":
            return "the end"
        if self.kind == "string":
            return f"{self.quote}{self.text}{self.quote}"
        return f"'{self.text}'"


_PUNCTUATION: dict[str, TokenKind] = {"(": "lparen", ")": "rparen", ",": "comma"}


def tokenize(source: str, what: str = "filter") -> list[Token]:
    """Split ``source`` into tokens; InvalidInput on a character that starts none."""
    tokens: list[Token] = []
    i, n = 0, len(source)
    if text_problem(source) is not None:  # no stored text holds NUL or a lone surrogate
        pos = next(at for at, ch in enumerate(source) if text_problem(ch) is not None)
        bad = "NUL character (\\x00)" if source[pos] == "\x00" else "lone UTF-16 surrogate"
        parse_error(what, bad, pos)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[ch], ch, i))
            i += 1
        elif ch in "'\"`":
            text, end = _read_quoted(source, i, what)
            tokens.append(Token("string", text, i, quote=ch))
            i = end
        elif source.startswith(("<=", ">=", "!=", "<>"), i):
            tokens.append(Token("op", source[i : i + 2], i))
            i += 2
        elif ch in "=<>":
            tokens.append(Token("op", ch, i))
            i += 1
        elif (m := _NUMBER.match(source, i)) is not None:
            end = m.end()
            if end < n and _WORD_CHAR.match(source[end]):
                parse_error(what, f"malformed number {source[i : end + 1]!r}", i)
            tokens.append(Token("number", m.group(), i))
            i = end
        elif (m := _WORD.match(source, i)) is not None:
            tokens.append(Token("word", m.group(), i))
            i = m.end()
        else:
            parse_error(what, f"unexpected character {ch!r}", i)
    tokens.append(Token("eof", "", n))
    return tokens


def _read_quoted(source: str, start: int, what: str) -> tuple[str, int]:
    quote = source[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = source.find(quote, i)
        if j < 0:
            parse_error(what, f"unterminated {quote}-quoted text starting", start)
        parts.append(source[i:j])
        if source.startswith(quote * 2, j):  # a doubled quote stands for itself
            parts.append(quote)
            i = j + 2
            continue
        return "".join(parts), j + 1


def parse_error(what: str, message: str, pos: int, hint: str = "") -> NoReturn:
    text = f"{what}: {message} at position {pos}" + (f"; {hint}" if hint else "")
    raise InvalidInput(text, {"position": pos})


# --- Parser ------------------------------------------------------------------------


class TokenCursor:
    """The tokens of ``source`` and a position in them: the base of every parser over
    this tokenizer (the run filter here, MLflow's registry and experiment filters)."""

    def __init__(self, source: str, what: str = "filter") -> None:
        self.tokens = tokenize(source, what)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok


class Parser(TokenCursor):
    def __init__(self, source: str, what: str) -> None:
        if len(source) > MAX_LENGTH:
            raise InvalidInput(f"{what}: longer than {MAX_LENGTH} characters")
        super().__init__(source, what)
        self.what = what
        self.depth = 0

    def expected(self, what: str, after: Token | None = None, hint: str = "") -> NoReturn:
        tok = self.tok
        where = f" after {after.shown()}" if after is not None else ""
        got = "" if tok.kind == "eof" else f", got {tok.shown()}"
        parse_error(self.what, f"expected {what}{where}{got}", tok.pos, hint)

    # -- boolean structure
    def or_expr(self) -> Expr:
        items = [self.and_expr()]
        while self.tok.is_keyword("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.not_expr()]
        while self.tok.is_keyword("and"):
            self.advance()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            parse_error(self.what, f"nested deeper than {MAX_DEPTH} levels", self.tok.pos)
        try:
            if self.tok.is_keyword("not"):
                self.advance()
                return Not(self.not_expr())
            if self.tok.kind == "lparen":
                opening = self.advance()
                inner = self.or_expr()
                if self.tok.kind != "rparen":
                    self.expected("')'", hint=f"the '(' at position {opening.pos} is not closed")
                self.advance()
                return inner
            return self.comparison()
        finally:
            self.depth -= 1

    # -- comparisons
    def comparison(self) -> Comparison:
        field = self.field()
        last = self.tokens[self.i - 1]
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            return Comparison(field, _CMP_OPS[tok.text], self.value(after=tok), tok.pos)
        negated = False
        if tok.is_keyword("not"):
            negated = True
            self.advance()
            if not self.tok.is_keyword("like", "ilike", "in"):
                self.expected("LIKE, ILIKE or IN", after=tok)
        kw = self.tok
        prefix = "NOT " if negated else ""
        if kw.is_keyword("like", "ilike"):
            self.advance()
            op = prefix + kw.text.upper()
            return Comparison(field, op, self.value(after=kw), tok.pos)
        if kw.is_keyword("in"):
            self.advance()
            return Comparison(field, prefix + "IN", self.value_list(after=kw), tok.pos)
        if kw.is_keyword("is"):
            self.advance()
            op = "IS NULL"
            if self.tok.is_keyword("not"):
                self.advance()
                op = "IS NOT NULL"
            if not self.tok.is_keyword("null"):
                self.expected("NULL", after=self.tokens[self.i - 1])
            self.advance()
            return Comparison(field, op, None, kw.pos)
        self.expected(_OPERATORS_HINT, after=last)

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            self.expected("a field (metrics.<key>, params.<key>, tags.<key> or an attribute)")
        self.advance()
        word = tok.text
        if "." not in word:
            return Field("attribute", self.attribute(word, tok.pos), tok.pos)
        prefix, key = word.split(".", 1)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            parse_error(
                self.what,
                f"unknown field {word!r}",
                tok.pos,
                "expected metrics.<key>, params.<key>, tags.<key>, datasets.<field>, "
                f"attributes.<name> or an attribute ({VALID_ATTRIBUTES})",
            )
        if not key:
            quoted = self.tok
            if quoted.kind != "string" or quoted.quote not in "`\"'" or not quoted.text:
                self.expected('a key (bare, `backticked` or "double-quoted")', after=tok)
            self.advance()
            key = quoted.text
        if kind == "attribute":
            key = self.attribute(key, tok.pos)
        elif kind == "dataset":
            if key.lower() not in DATASET_FIELDS:
                parse_error(
                    self.what,
                    f"unknown field {word!r}",
                    tok.pos,
                    f"datasets.<field> is one of {', '.join(DATASET_FIELDS)}",
                )
            key = key.lower()
        return Field(kind, key, tok.pos)

    def attribute(self, name: str, pos: int) -> str:
        canonical = ATTRIBUTE_ALIASES.get(name.lower())
        if canonical is None:
            parse_error(
                self.what,
                f"unknown attribute {name!r}",
                pos,
                f"valid attributes: {VALID_ATTRIBUTES}",
            )
        return canonical

    # -- values
    def value(self, after: Token) -> Value:
        tok = self.tok
        if tok.kind == "string" and tok.quote in "'\"":
            self.advance()
            return tok.text
        if tok.kind == "number":
            self.advance()
            return Number(number_value(tok, self.what), tok.text)
        if tok.kind == "string":  # backticks quote keys, never values
            self.expected("a value", after, hint="backticks quote keys; quote strings with '...'")
        self.expected("a value", after)

    def value_list(self, after: Token) -> tuple[Value, ...]:
        if self.tok.kind != "lparen":
            self.expected("'(' to open a list of values", after)
        prev = self.advance()
        values = [self.value(after=prev)]
        while self.tok.kind == "comma":
            prev = self.advance()
            values.append(self.value(after=prev))
        if self.tok.kind != "rparen":
            self.expected("',' or ')' in the list of values")
        self.advance()
        return tuple(values)

    def end(self, what: str) -> None:
        if self.tok.kind != "eof":
            self.expected(what)


def number_value(tok: Token, what: str = "filter") -> int | float:
    """The value of a number token: a float when written with a point or an exponent,
    else an int, which must fit 64 bits (every integer column does; InvalidInput
    naming the literal otherwise)."""
    text = tok.text
    if any(c in text for c in ".eE"):
        return float(text)
    value = parse_int64(text)
    if value is None:
        parse_error(
            what,
            f"integer {text[:40]} is out of the 64-bit range ({INT64_MIN} to {INT64_MAX})",
            tok.pos,
            "write a larger number with a decimal point or an exponent (e.g. 1e30)",
        )
    return value


def parse_filter(source: str) -> Expr | None:
    """Parse a filter string; None when it is empty or only whitespace."""
    parser = Parser(source, "filter")
    if parser.tok.kind == "eof":
        return None
    expr = parser.or_expr()
    parser.end("AND, OR or the end of the filter")
    return expr


def parse_order_by(source: str, index: int = 0) -> OrderTerm:
    """Parse one ``order_by`` item such as ``metrics.acc DESC``."""
    parser = Parser(source, f"order_by[{index}]")
    field = parser.field()
    descending = False
    if parser.tok.is_keyword("asc", "desc"):
        descending = parser.advance().text.lower() == "desc"
    parser.end("ASC, DESC or the end of the order_by item")
    return OrderTerm(field, descending)
