"""The client's memory of local files it has versioned: ``(path, inode, size, mtime)``
-> content hash, row count, and mergeable profile state. A file whose stat is unchanged
is not read again when a folder is versioned anew (as ``git status`` and DVC do).
It also keeps the merged profile states of groups of files (``profile_groups.py``), so
that a folder where a few files changed merges only their groups again.

A small SQLite file under ``<home>/cache``; a stale or unreadable cache only costs a
re-read, never a wrong version: the blob store checks hashes on every read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files_v2 (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    rows INTEGER NOT NULL,
    schema BLOB NOT NULL,
    profile BLOB NOT NULL
)
"""
_MERGED_SCHEMA = """
CREATE TABLE IF NOT EXISTS merged_v1 (
    key TEXT PRIMARY KEY,
    profile BLOB NOT NULL,
    used_ns INTEGER NOT NULL
)
"""
MAX_MERGED = 8192
"""Merged group states kept (a few KiB each); the least recently used go first."""


@dataclass(frozen=True)
class FileStat:
    """What identifies a file's content without reading it."""

    path: str
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int  # an in-place rewrite whose mtime was set back still moves it


@dataclass(frozen=True)
class CachedFile:
    """What was learnt about a file when it was last read."""

    stat: FileStat
    hash: str
    rows: int
    schema: bytes  # Arrow IPC schema
    profile: bytes  # PartialProfile.to_bytes()


def _use_wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch ``conn``'s file to WAL. While another connection switches the same new
    file (concurrent first ingests), SQLite answers "database is locked" at once
    instead of waiting, where waiting could deadlock: try again for ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class StatCache:
    """Thread-safe; one SQLite connection per cache."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            folder / "files.sqlite", timeout=30, check_same_thread=False, isolation_level=None
        )
        _use_wal(self._conn)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.execute(_MERGED_SCHEMA)
        self._lock = threading.Lock()
        self._hits: dict[str, CachedFile] = {}  # what schemas_for found, for lookup
        self._schemas: dict[bytes, pa.Schema] = {}  # files of a folder share one schema

    def lookup(self, stats: Sequence[FileStat]) -> dict[str, CachedFile]:
        """The cached entries of ``stats`` whose inode, size and mtime still match."""
        found: dict[str, CachedFile] = {}
        by_path = {s.path: s for s in stats}
        for stat in stats:
            hit = self._hits.get(stat.path)
            if hit is not None and hit.stat == stat:
                found[stat.path] = hit
        paths = [p for p in by_path if p not in found]
        with self._lock:
            for start in range(0, len(paths), 500):
                chunk = paths[start : start + 500]
                rows = self._conn.execute(
                    "SELECT path, inode, size, mtime_ns, ctime_ns, hash, rows, schema, profile "
                    "FROM files_v2 WHERE path IN (SELECT value FROM json_each(?))",
                    (json.dumps(chunk),),
                ).fetchall()
                for path, inode, size, mtime_ns, ctime_ns, digest, nrows, schema, profile in rows:
                    stat = by_path[path]
                    if FileStat(path, inode, size, mtime_ns, ctime_ns) == stat:
                        found[path] = CachedFile(stat, digest, nrows, schema, profile)
        return found

    def schemas_for(self, files: Sequence[tuple[Path, os.stat_result]]) -> list[pa.Schema | None]:
        """The Arrow schemas remembered for unchanged local files (``open_source``'s
        ``known_schemas``), None for each file whose footer must be read; one lookup."""
        stats = [
            FileStat(str(path), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            for path, info in files
        ]
        hits = self.lookup(stats)
        self._hits.update(hits)
        found: list[pa.Schema | None] = []
        for stat in stats:
            hit = hits.get(stat.path)
            if hit is None:
                found.append(None)
                continue
            schema = self._schemas.get(hit.schema)
            if schema is None:
                import pyarrow as pa

                schema = self._schemas[hit.schema] = pa.ipc.read_schema(pa.py_buffer(hit.schema))
            found.append(schema)
        return found

    def remember(self, entries: Iterable[CachedFile]) -> None:
        """Keep (or replace) entries."""
        values = [
            (
                e.stat.path,
                e.stat.inode,
                e.stat.size,
                e.stat.mtime_ns,
                e.stat.ctime_ns,
                e.hash,
                e.rows,
                e.schema,
                e.profile,
            )
            for e in entries
        ]
        if not values:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO files_v2 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def merged(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The merged profile states remembered under ``keys`` (marked as used)."""
        with self._lock:
            # The keys travel as one JSON parameter: no limit on bound variables to chunk for.
            found: dict[str, bytes] = dict(
                self._conn.execute(
                    "SELECT key, profile FROM merged_v1 "
                    "WHERE key IN (SELECT value FROM json_each(?))",
                    (json.dumps(list(keys)),),
                ).fetchall()
            )
            if found:  # one statement: the connection commits each one on its own
                self._conn.execute(
                    "UPDATE merged_v1 SET used_ns = ? "
                    "WHERE key IN (SELECT value FROM json_each(?))",
                    (time.time_ns(), json.dumps(list(found))),
                )
        return found

    def remember_merged(self, states: dict[str, bytes]) -> None:
        """Keep merged profile states by key, then forget the least recently used
        beyond :data:`MAX_MERGED`."""
        if not states:
            return
        now = time.time_ns()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO merged_v1 VALUES (?, ?, ?)",
                    [(key, state, now) for key, state in states.items()],
                )
                self._conn.execute(
                    "DELETE FROM merged_v1 WHERE key IN (SELECT key FROM merged_v1 "
                    "ORDER BY used_ns DESC LIMIT -1 OFFSET ?)",
                    (MAX_MERGED,),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._conn.close()
