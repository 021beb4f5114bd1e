"""Time and ids, in one place so every domain stores them the same way."""

from __future__ import annotations

import time
import uuid


def now_ms() -> int:
    """Milliseconds since the Unix epoch: how every timestamp is stored."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A random 32-hex id (the shape MLflow uses for run ids)."""
    return uuid.uuid4().hex
