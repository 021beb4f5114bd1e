"""A version's schema in API form, from Arrow."""

from __future__ import annotations

import base64

import pyarrow as pa

from shipyard.datasets.types import ColumnKind, ColumnSchema
from shipyard.errors import Conflict


def columns_of(schema: pa.Schema) -> list[ColumnSchema]:
    """The version's column list from an Arrow schema."""
    return [ColumnSchema(name=f.name, type=str(f.type), nullable=f.nullable) for f in schema]


def schema_text(schema: pa.Schema) -> str:
    """The Arrow IPC schema as base64, for exact round trips."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    """The Arrow schema :func:`schema_text` wrote."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def schema_conflict(
    version: int, old: list[tuple[str, str]], new: list[tuple[str, str]], dataset: str = ""
) -> Conflict:
    """The error for appended data whose ``(name, type)`` columns differ from its parent's."""
    of = f" of {dataset!r}" if dataset else ""
    return Conflict(
        f"schema conflict: the appended data's columns differ from version {version}{of}: "
        + column_changes(old, new),
        {"old": [f"{n}: {t}" for n, t in old], "new": [f"{n}: {t}" for n, t in new]},
    )


def column_changes(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> str:
    """What differs between two ``(name, type)`` column lists, for people: the columns
    missing, the columns added, the types changed, or else the order."""
    before, after = dict(old), dict(new)
    parts = []
    if missing := [n for n in before if n not in after]:
        parts.append("missing " + ", ".join(missing))
    if added := [n for n in after if n not in before]:
        parts.append("new " + ", ".join(added))
    retyped = [
        f"{n} {before[n]} -> {after[n]}" for n in before if n in after and before[n] != after[n]
    ]
    if retyped:
        parts.append("type of " + ", ".join(retyped))
    return "; ".join(parts) or "same columns in another order"


def column_kind(t: pa.DataType) -> ColumnKind:
    """The broad kind of an Arrow type, as profiles and the schema expectation name it
    (a dictionary type has its values' kind)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_temporal(t) and not pa.types.is_interval(t):
        return "temporal"
    binary = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view)
    if any(f(t) for f in binary) or pa.types.is_fixed_size_binary(t):
        return "binary"
    return "other"
