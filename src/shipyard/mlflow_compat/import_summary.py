"""What one ``shipyard import mlflow`` did, per kind of object: the summary it returns
and prints (copied, updated, deleted, skipped and failed, with reasons)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import ShipyardError

KINDS = (
    "experiments",
    "runs",
    "metric points",
    "artifact files",
    "models",
    "versions",
    "aliases",
    "logged models",
)
ALREADY = "already imported"
SAME_FILE = "already in Shipyard (same path and size)"


@dataclass
class Tally:
    """What happened to the objects of one kind."""

    copied: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportSummary:
    """Per kind: copied, updated (refreshed copies), deleted (gone from MLflow),
    skipped and failed, with reasons."""

    source: str
    project: str
    kinds: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in KINDS})
    notes: list[str] = field(default_factory=list)

    def copied(self, kind: str, n: int = 1) -> None:
        """Count ``n`` objects of ``kind`` copied."""
        self.kinds[kind].copied += n

    def updated(self, kind: str) -> None:
        """Count one earlier copy brought up to date."""
        self.kinds[kind].updated += 1

    def deleted(self, kind: str) -> None:
        """Count one earlier copy deleted because its source is gone from MLflow."""
        self.kinds[kind].deleted += 1

    def skipped(self, kind: str, reason: str, n: int = 1) -> None:
        """Count ``n`` objects left out on purpose, with why."""
        if n:
            self.kinds[kind].skipped[reason] += n

    def failed(self, kind: str, reason: str) -> None:
        """Count one object that could not be copied (a re-import retries it)."""
        self.kinds[kind].failed[reason] += 1

    @property
    def failures(self) -> int:
        """How many objects failed, all kinds together."""
        return sum(t.failed.total() for t in self.kinds.values())

    @property
    def changes(self) -> int:
        """How many objects were copied, updated or deleted, all kinds together."""
        return sum(t.copied + t.updated + t.deleted for t in self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``--json``)."""
        return {
            "source": self.source,
            "project": self.project,
            "kinds": {
                kind: {
                    "copied": t.copied,
                    "updated": t.updated,
                    "deleted": t.deleted,
                    "skipped": dict(t.skipped),
                    "failed": dict(t.failed),
                }
                for kind, t in self.kinds.items()
            },
            "notes": list(self.notes),
        }


def reason(exc: BaseException) -> str:
    """An exception as a summary's reason: one line, at most 200 characters."""
    text = exc.message if isinstance(exc, ShipyardError) else str(exc)
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."
