"""A version's schema in API form, from Arrow."""

from __future__ import annotations

import base64

import pyarrow as pa

from shipyard.datasets.types import ColumnSchema


def columns_of(schema: pa.Schema) -> list[ColumnSchema]:
    """The version's column list from an Arrow schema."""
    return [ColumnSchema(name=f.name, type=str(f.type), nullable=f.nullable) for f in schema]


def schema_text(schema: pa.Schema) -> str:
    """The Arrow IPC schema as base64, for exact round trips."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    """The Arrow schema :func:`schema_text` wrote."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))
