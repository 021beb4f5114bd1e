"""How every CLI command prints: rich tables for people, JSON with --json.

Every command imports this module, ``shipyard --help`` included, so it loads only
what help needs too (rich); orjson is imported where JSON is written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Off a terminal rich assumes 80 columns, and cuts tables or folds ids and digests
# into several lines. A pipe or a file has no width: tables keep their natural one
# (rich never widens a table past it). COLUMNS, when set, still decides.
PIPED_WIDTH = 250


def _width(stream: TextIO | None) -> int | None:
    if os.environ.get("COLUMNS"):
        return None
    try:
        terminal = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        terminal = False
    return None if terminal else PIPED_WIDTH


def _consoles() -> tuple[dict[str, Any], dict[str, Any]]:
    # Markup off: names, messages, paths and patterns are the users' text, printed as
    # they are. A name like "[/x]" would make rich raise, and "^[ab]$" print as "^$".
    # Styles come from `style=` and Text instead.
    out = {"markup": False, "width": _width(sys.stdout)}
    err = {"markup": False, "width": _width(sys.stderr), "stderr": True}
    return out, err


_out, _err = _consoles()
console = Console(**_out)
err_console = Console(**_err)


def reset_consoles() -> None:
    """Make both consoles again, in place (commands hold them by name), from the
    streams and variables of now: a console reads colour support and width once, and
    the command daemon runs each command with its caller's."""
    out, err = _consoles()
    console.__init__(**out)  # type: ignore[misc]
    err_console.__init__(**err)  # type: ignore[misc]


def print_error(message: str, code: str | None = None) -> None:
    """``error (code): message`` on stderr, 'error' in red and the rest as it is."""
    head = "" if code is None else f" ({code})"
    err_console.print(Text.assemble(("error", "red"), f"{head}: {message}"))


def _plain(value: Any) -> Any:
    # Pydantic models, recognised by their method: importing pydantic here would cost
    # `shipyard --help` what it costs to build them.
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """Write ``value`` (models, lists, dicts) as indented JSON to stdout."""
    import orjson

    sys.stdout.write(orjson.dumps(_plain(value), option=orjson.OPT_INDENT_2).decode() + "\n")


def format_time(ms: int | None) -> str:
    """An epoch-milliseconds time as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_table(
    rows: Sequence[Any],
    columns: Sequence[str | tuple[str, str]],
    *,
    title: str | None = None,
    as_json: bool = False,
) -> None:
    """Print ``rows`` (models or dicts) as a table, or as JSON when ``as_json``.

    ``columns`` are field names or ``(field, header)`` pairs; fields ending in
    ``_at``/``_time`` are shown as times.
    """
    if as_json:
        print_json(list(rows))
        return
    table = Table(title=title, header_style="bold")
    fields = [(c, c) if isinstance(c, str) else c for c in columns]
    for field, header in fields:
        # Ids must stay whole (people copy them): fold rather than truncate.
        is_id = field == "id" or field.endswith("_id")
        table.add_column(header, overflow="fold", min_width=12 if is_id else None)
    for row in rows:
        data = _plain(row)
        cells = []
        for field, _ in fields:
            value = data.get(field)
            if field.endswith(("_at", "_time")) and isinstance(value, int):
                value = format_time(value)
            elif isinstance(value, float):
                value = f"{value:.6g}"
            cells.append("" if value is None else str(value))
        table.add_row(*cells)
    if not rows:
        console.print(f"no {title.lower() if title else 'rows'} found", style="dim")
        return
    console.print(table)


def print_record(record: Any, *, as_json: bool = False, title: str | None = None) -> None:
    """Print one object as a two-column table of its fields, or as JSON."""
    import orjson

    data = _plain(record)
    if as_json:
        print_json(data)
        return
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        if key.endswith(("_at", "_time")) and isinstance(value, int):
            value = format_time(value)
        elif isinstance(value, dict | list):
            value = orjson.dumps(value).decode()
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
