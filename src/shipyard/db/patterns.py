"""Text matching in queries, safe for any user text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards escaped (for ``escape="\\\\"``): matched literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holds ``text`` anywhere, in any case, wildcards taken literally."""
    return column.ilike(f"%{escape_like(text)}%", escape="\\")  # type: ignore[no-any-return]
