"""Apply the one Alembic migration tree, safely when several processes start at once.

Every process that opens a store asks whether the database is at head, and nearly
always it is. Importing Alembic to ask would cost each CLI command more than the
rest of its start-up, so :func:`at_head` reads the version table and the tree's
files directly; Alembic is imported only when there is something to apply, or
when the tree holds something that quick reading does not understand.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from shipyard.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

_log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default; env.py does not change it
# Any constant works: it only has to be the same in every Shipyard process.
_PG_LOCK_KEY = 0x5348_4950
# `revision = "0003"` and `down_revision = "0002"` (or None), as Alembic writes them.
_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([\w-]+)['\"]\s*$", re.M)
_DOWN_REVISION = re.compile(
    r"^down_revision(?:\s*:[^=\n]+)?\s*=\s*(?:None|['\"]([\w-]+)['\"])\s*$", re.M
)


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migration tree."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision in the tree, as Alembic reads it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None when empty)."""
    revisions = stored_revisions(db)
    if len(revisions) > 1:
        raise RuntimeError(f"the database records several heads: {', '.join(revisions)}")
    return revisions[0] if revisions else None


def tree_head(versions: Path = MIGRATIONS / "versions") -> str | None:
    """The head of the migration files in ``versions``, read without importing them.

    None when a file does not declare its revisions as one plain string each (a
    merge names two parents, for one) or the files do not make one line of
    history: the caller then asks Alembic, so this never has to understand more.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name.startswith(("_", ".")):  # __init__.py, editors' lock files: not revisions
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        revision = _REVISION.findall(source)
        parent = _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(parent) != 1:
            return None
        revisions.add(revision[0])
        if parent[0]:
            parents.add(parent[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def stored_revisions(db: Database) -> list[str]:
    """The revisions recorded in the database's version table (empty when it has none)."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return []
        version_num = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 (a constant)
        return list(conn.execute(version_num).scalars())


@lru_cache(maxsize=1)
def _packaged_head() -> str:
    # Once a process: the packaged tree does not change under it.
    return tree_head() or head_revision()


def at_head(db: Database) -> bool:
    """Whether the database is at the newest revision of the tree."""
    return stored_revisions(db) == [_packaged_head()]


StepReport = Callable[[str, str, float], None]
"""Told of each migration step once applied: its revision, its title, its seconds."""


def _log_step(revision: str, title: str, seconds: float) -> None:
    _log.info("database migrated to %s (%s) in %.1f s", revision, title, seconds)


def upgrade(db: Database, revision: str = "head", *, on_step: StepReport | None = None) -> None:
    """Bring the database to ``revision``; a no-op when it is already there.

    Each step applied to a database that had tables is reported to ``on_step`` (by
    default, logged): a step that rewrites a large table takes a while, and a silent
    start looks hung. Making a new database is not reported step by step."""
    stored = stored_revisions(db)
    if revision == "head" and stored == [_packaged_head()]:
        return
    from alembic import command

    with _migration_lock(db):
        with db.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            cfg.attributes["on_step"] = (on_step or _log_step) if stored else None
            command.upgrade(cfg, revision)


def pending_steps(db: Database) -> list[tuple[str, str]]:
    """The ``(revision, title)`` of each step between the database and head, in order
    (Alembic is imported only when there are some, as :func:`upgrade` does)."""
    if at_head(db):
        return []
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(db) or "base"
    steps = script.iterate_revisions("heads", current)
    return [(step.revision, step_title(step.doc)) for step in reversed(list(steps))]


def step_title(doc: str | None) -> str:
    """A migration's title: the first line of its docstring."""
    return (doc or "").strip().split("\n", 1)[0]


@contextmanager
def _migration_lock(db: Database) -> Iterator[None]:
    if db.is_sqlite:
        from filelock import FileLock  # imported by the rare start that migrates

        path = Path(db.url.database or "shipyard.db")
        with FileLock(str(path) + ".migrate.lock"):
            yield
    else:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
