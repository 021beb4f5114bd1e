"""DuckDB connections for datasets: one place that sets their limits.

Two kinds. A *sandbox* sees only the Arrow data registered on it: file access and
extensions are off and its configuration is locked, so user-written SQL (a custom
expectation's predicate) cannot read or write anything else. A *reader* may read the
Parquet files the caller names (version files in a local folder); user SQL never runs
on one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def sandbox() -> duckdb.DuckDBPyConnection:
    """A connection that can see only what is registered on it (``conn.register``)."""
    import duckdb

    conn = duckdb.connect(
        config={
            "enable_external_access": False,
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "threads": _threads(),
        }
    )
    conn.execute("SET lock_configuration = true")
    return conn


def reader(
    *, memory_limit: str = "1GB", temp_directory: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection for queries over Parquet files the caller chose; spills past
    ``memory_limit`` to ``temp_directory`` so large diffs stay within bounded memory."""
    import duckdb

    config: dict[str, str | int | bool] = {
        "threads": _threads(),
        "memory_limit": memory_limit,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
    }
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    conn = duckdb.connect(config=config)
    conn.execute("SET lock_configuration = true")
    return conn


def ident(name: str) -> str:
    """A DuckDB identifier for a column name (quoted, so any name is safe)."""
    return '"' + name.replace('"', '""') + '"'


def parquet_scan(paths: Sequence[Path | str]) -> str:
    """A ``read_parquet([...])`` table expression over ``paths`` with each path bound as a
    literal (escaped), for use inside a query on a :func:`reader` connection."""
    if not paths:
        raise ValueError("no Parquet files to read")
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}], union_by_name = true)"
