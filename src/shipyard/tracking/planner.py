"""Keep PostgreSQL's planner statistics of the run tables fresh enough for search.

Right after a burst of writes (a new server, a sweep logging thousands of
runs) the tables can hold thousands of rows that autovacuum has not analyzed
yet (it wakes once a minute). The planner then believes each table holds a
row or so and joins runs to metrics and params with nested loops: a
filtered search over 2,000 runs takes a second instead of two milliseconds.
So before a search we look, at most every few seconds, whether a table has
changed a lot since its last ANALYZE, and analyze it then (milliseconds on
these narrow tables). SQLite needs nothing: its planner works from indexes.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from shipyard.db import Database

# Fixed names: these are the only strings ever placed in the ANALYZE statement.
SEARCH_TABLES = ("runs", "latest_metrics", "params", "run_tags")
CHECK_EVERY_S = 5.0
MIN_CHANGES = 500  # below this the planner's guesses do no harm
STALE_FRACTION = 0.2  # changed rows, as a fraction of the rows analyzed last time

_STATS_SQL = text(
    "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
    "WHERE schemaname = current_schema() AND relname IN "
    "('runs', 'latest_metrics', 'params', 'run_tags')"
)
_last_check: dict[str, float] = {}
_lock = threading.Lock()


def refresh_if_stale(db: Database) -> None:
    """ANALYZE the search tables that changed a lot since their statistics were taken."""
    if db.is_sqlite:
        return
    key = db.url.render_as_string(hide_password=True)
    now = time.monotonic()
    with _lock:
        if now - _last_check.get(key, 0.0) < CHECK_EVERY_S:
            return
        _last_check[key] = now
    # Autocommit: statistics written by ANALYZE inside a rolled-back transaction vanish.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        stale = [
            name
            for name, live, changed in conn.execute(_STATS_SQL)
            if name in SEARCH_TABLES
            and changed > MIN_CHANGES
            and changed > STALE_FRACTION * max(live - changed, 0)
        ]
        for name in stale:
            conn.execute(text(f"ANALYZE {name}"))  # name is one of SEARCH_TABLES
