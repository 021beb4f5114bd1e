"""MLflow's search syntax on Shipyard's search.

Runs: Shipyard's filter language is modelled on MLflow's (same prefixes, quoting,
LIKE/ILIKE/IN), so an MLflow filter or ``order_by`` item is rewritten token by token
only where MLflow names a thing differently: ``tags.mlflow.runName`` is the run's
name, ``tags.mlflow.parentRunId`` its parent, ``user_id`` its user, ``created`` its
start time, and ``run.`` is another spelling of ``attributes.``. The result goes to
:func:`shipyard.tracking.runs.search_runs`, which compiles it to bound SQL.

Experiments: MLflow's experiment filter (comparisons joined by AND over ``name``,
``experiment_id``, ``creation_time``, ``last_update_time`` and ``tags.<key>``) is
parsed here with Shipyard's tokenizer and evaluated over the project's experiments,
which are few.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.tracking.search_parser import Token, TokenCursor, number_value, tokenize
from shipyard.tracking.types import Experiment

# --- runs -------------------------------------------------------------------------------------

_ATTRIBUTE_PREFIXES = frozenset({"attributes", "attribute", "attr", "run"})
_TAG_PREFIXES = frozenset({"tags", "tag"})

# MLflow names of run attributes and tags that are Shipyard attributes.
_RUN_ATTRIBUTES = {
    "user_id": "user",
    "created": "start_time",
    "run name": "run_name",
}
_TAG_ATTRIBUTES = {"mlflow.runName": "run_name", "mlflow.parentRunId": "parent_run_id"}
_UNSUPPORTED_ATTRIBUTES = frozenset({"artifact_uri", "lifecycle_stage"})


def run_filter(source: str | None) -> str | None:
    """An MLflow run filter in Shipyard's search language (None when empty)."""
    if source is None or not source.strip():
        return None
    return _rewrite(source, "filter")


def run_order_by(items: Sequence[Any]) -> list[str]:
    """MLflow ``order_by`` items in Shipyard's spelling."""
    out: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidInput(f"order_by[{index}]: expected a string, got {item!r:.100}")
        out.append(_rewrite(item, f"order_by[{index}]"))
    return out


def _rewrite(source: str, what: str) -> str:
    tokens = tokenize(source, what)
    parts: list[str] = []
    changed = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.kind == "eof":
            break
        if tok.kind != "word":
            parts.append(_spelling(tok))
            continue
        prefix, dot, key = tok.text.partition(".")
        if dot and not key and i < len(tokens) and tokens[i].kind == "string":
            key = tokens[i].text  # tags.`quoted key`
            i += 1
            spelled = f"{prefix}.{_quoted_key(key)}"
        else:
            spelled = tok.text
        field = _field(prefix.lower() if dot else "", key if dot else tok.text, tok.pos, what)
        if field is None:
            parts.append(spelled)
        else:
            parts.append(field)
            changed = True
    return " ".join(parts) if changed else source


def _field(prefix: str, key: str, pos: int, what: str) -> str | None:
    """Shipyard's spelling of an MLflow field, or None when it is the same."""
    if prefix in _TAG_PREFIXES and key in _TAG_ATTRIBUTES:
        return f"attributes.{_TAG_ATTRIBUTES[key]}"
    if prefix in _ATTRIBUTE_PREFIXES or (not prefix and key.lower() in _RUN_ATTRIBUTES):
        name = key.lower()
        if name in _UNSUPPORTED_ATTRIBUTES:
            raise InvalidInput(f"{what}: attribute {key!r} cannot be searched (at position {pos})")
        if name in _RUN_ATTRIBUTES:
            return f"attributes.{_RUN_ATTRIBUTES[name]}"
        if prefix == "run":
            return f"attributes.{_quoted_key(key)}"
    return None


def _quoted_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./-]+", key):
        return key
    return "`" + key.replace("`", "``") + "`"


def _spelling(tok: Token) -> str:
    if tok.kind == "string":
        return tok.quote + tok.text.replace(tok.quote, tok.quote * 2) + tok.quote
    return tok.text


# --- experiments ------------------------------------------------------------------------------

_EXPERIMENT_ATTRIBUTES = {
    "name": "name",
    "experiment_id": "experiment_id",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}
_NUMERIC = frozenset({"creation_time", "last_update_time"})
_CMP = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class _Condition:
    kind: str  # "attribute" or "tag"
    key: str
    op: str
    value: Any


Predicate = Callable[[Experiment], bool]


def experiment_filter(source: str | None) -> Predicate:
    """A predicate over experiments for an MLflow experiment filter (AND of comparisons)."""
    if source is None or not source.strip():
        return lambda _: True
    conditions = _ExperimentParser(source).parse()
    return lambda exp: all(_holds(c, exp) for c in conditions)


def experiment_sort_key(order_by: Sequence[Any]) -> Callable[[Experiment], tuple[Any, ...]]:
    """A sort key for MLflow ``order_by`` items over experiments; MLflow's default order
    is ``creation_time DESC`` then ``experiment_id ASC``."""
    terms: list[tuple[str, bool]] = []
    for index, item in enumerate(order_by):
        if not isinstance(item, str):
            raise InvalidInput(f"order_by[{index}]: expected a string, got {item!r:.100}")
        words = item.split()
        if not words or len(words) > 2:
            raise InvalidInput(f"order_by[{index}]: invalid order_by clause {item!r:.200}")
        name = words[0].removeprefix("attributes.").removeprefix("attribute.")
        name = name.strip('`"')
        if name not in _EXPERIMENT_ATTRIBUTES:
            raise InvalidInput(
                f"order_by[{index}]: invalid attribute {words[0]!r}; "
                f"expected one of {', '.join(sorted(_EXPERIMENT_ATTRIBUTES))}"
            )
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise InvalidInput(f"order_by[{index}]: invalid direction {words[1]!r}")
        terms.append((name, direction == "DESC"))
    if not terms:
        terms.append(("creation_time", True))
    if not any(name == "experiment_id" for name, _ in terms):
        terms.append(("experiment_id", False))

    def key(exp: Experiment) -> tuple[Any, ...]:
        out: list[Any] = []
        for name, descending in terms:
            value = _attribute(exp, name)
            if descending:
                value = _Reversed(value)
            out.append(value)
        return tuple(out)

    return key


class _Reversed:
    """Wraps a value so that sorting ascending orders it descending."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and bool(other.value == self.value)

    __hash__ = None  # type: ignore[assignment]


def _attribute(exp: Experiment, name: str) -> Any:
    if name == "name":
        return exp.name
    if name == "experiment_id":
        return exp.id
    if name == "creation_time":
        return exp.created_at
    return exp.updated_at


def _holds(cond: _Condition, exp: Experiment) -> bool:
    if cond.kind == "tag":
        value: Any = exp.tags.get(cond.key)
        if cond.op in ("IS NULL", "IS NOT NULL"):
            return (value is None) == (cond.op == "IS NULL")
        if value is None:
            return False
    elif cond.key == "experiment_id":
        value = str(exp.id)
    else:
        value = _attribute(exp, cond.key)
    op = cond.op
    if op in ("IN", "NOT IN"):
        return (value in cond.value) == (op == "IN")
    if op.endswith("LIKE"):
        matched = _like(cond.value, "ILIKE" in op).fullmatch(value) is not None
        return matched != op.startswith("NOT")
    return bool(_CMP[op](value, cond.value))


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    out: list[str] = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


class _ExperimentParser(TokenCursor):
    def fail(self, message: str) -> InvalidInput:
        return InvalidInput(f"filter: {message} at position {self.tok.pos}")

    def parse(self) -> list[_Condition]:
        conditions = [self.condition()]
        while self.tok.is_keyword("and"):
            self.advance()
            conditions.append(self.condition())
        if self.tok.kind != "eof":
            raise self.fail(f"expected AND or the end of the filter, got {self.tok.shown()}")
        return conditions

    def condition(self) -> _Condition:
        kind, key = self.field()
        numeric = kind == "attribute" and key in _NUMERIC
        tok = self.advance()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            if not numeric and op not in ("=", "!="):
                raise self.fail(f"{op} does not apply to {key}")
            return _Condition(kind, key, op, self.value(numeric))
        negated = tok.is_keyword("not")
        if negated:
            tok = self.advance()
        if tok.is_keyword("like", "ilike") and not numeric:
            op = ("NOT " if negated else "") + tok.text.upper()
            pattern = self.value(False)
            return _Condition(kind, key, op, pattern)
        if tok.is_keyword("in") and (kind, key) == ("attribute", "experiment_id"):
            return _Condition(kind, key, "NOT IN" if negated else "IN", self.values())
        if tok.is_keyword("is") and not negated and kind == "tag":
            op = "IS NULL"
            if self.tok.is_keyword("not"):
                self.advance()
                op = "IS NOT NULL"
            if not self.advance().is_keyword("null"):
                raise self.fail("expected NULL")
            return _Condition(kind, key, op, None)
        raise self.fail(f"invalid comparator {tok.shown()} for {key}")

    def field(self) -> tuple[str, str]:
        tok = self.advance()
        if tok.kind != "word":
            raise self.fail(f"expected a field, got {tok.shown()}")
        prefix, dot, key = tok.text.partition(".")
        if dot and not key:
            quoted = self.advance()
            if quoted.kind != "string" or not quoted.text:
                raise self.fail("expected a quoted key")
            key = quoted.text
        if not dot:
            prefix, key = "attributes", tok.text
        prefix = prefix.lower()
        if prefix in _TAG_PREFIXES:
            return "tag", key
        if prefix in ("attributes", "attribute", "attr") and key in _EXPERIMENT_ATTRIBUTES:
            return "attribute", _EXPERIMENT_ATTRIBUTES[key]
        raise InvalidInput(
            f"filter: invalid field {tok.text + (key if dot and tok.text.endswith('.') else '')!r}"
            f" at position {tok.pos}; expected tags.<key> or one of "
            f"{', '.join(sorted(_EXPERIMENT_ATTRIBUTES))}"
        )

    def value(self, numeric: bool) -> Any:
        tok = self.advance()
        if numeric:
            if tok.kind != "number":
                raise self.fail(f"expected a number, got {tok.shown()}")
            return number_value(tok)
        if tok.kind == "string" and tok.quote in "'\"":
            return tok.text
        raise self.fail(f"expected a quoted string, got {tok.shown()}")

    def values(self) -> tuple[str, ...]:
        if self.advance().kind != "lparen":
            raise self.fail("expected '('")
        items = [self.value(False)]
        while self.tok.kind == "comma":
            self.advance()
            items.append(self.value(False))
        if self.advance().kind != "rparen":
            raise self.fail("expected ')'")
        return tuple(items)
