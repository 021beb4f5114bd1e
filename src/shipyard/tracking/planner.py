"""Keep PostgreSQL's planner statistics of the run tables fresh enough for search.

Right after a burst of writes (a new server, a sweep logging thousands of
runs) the tables can hold thousands of rows that autovacuum has not analyzed
yet (it wakes once a minute). The planner then believes each table holds a
row or so and joins runs to metrics and params with nested loops: a
filtered search over 2,000 runs takes a second instead of two milliseconds.
So before a search we look, at most every few seconds, whether a table has
changed a lot since its last ANALYZE, and analyze it then (milliseconds on
these narrow tables). SQLite needs nothing: its planner works from indexes.

PostgreSQL's own change counters lag: a server process publishes them up to a
second or so after its transaction ends, so a search made right after a bulk
write can find nothing stale, and with the check throttled, keep a bad plan for
its next few seconds. Bulk writers therefore also tell this module what they
wrote (:func:`note_writes`); those counts are checked on the next search, throttle
or not.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping

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
_noted: dict[str, Counter[str]] = {}  # rows this process wrote, per database, by table
_lock = threading.Lock()


def _key(db: Database) -> str:
    return db.url.render_as_string(hide_password=True)


def note_writes(db: Database, rows: Mapping[str, int]) -> None:
    """Record that this process just committed ``rows`` new rows per search table."""
    if db.is_sqlite:
        return
    with _lock:
        _noted.setdefault(_key(db), Counter()).update(
            {name: n for name, n in rows.items() if name in SEARCH_TABLES and n > 0}
        )


def refresh_if_stale(db: Database) -> None:
    """ANALYZE the search tables that changed a lot since their statistics were taken."""
    if db.is_sqlite:
        return
    key = _key(db)
    now = time.monotonic()
    with _lock:
        noted = _noted.get(key, Counter())
        if now - _last_check.get(key, 0.0) < CHECK_EVERY_S and noted.total() <= MIN_CHANGES:
            return  # what was noted stays for the next check
        _noted.pop(key, None)
        _last_check[key] = now
    # Autocommit: statistics written by ANALYZE inside a rolled-back transaction vanish.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        stale = []
        for name, live, changed in conn.execute(_STATS_SQL):
            if name not in SEARCH_TABLES:
                continue
            # What PostgreSQL has not published yet, this process may know it wrote.
            changed = max(changed, noted.get(name, 0))
            if changed > MIN_CHANGES and changed > STALE_FRACTION * max(live - changed, 0):
                stale.append(name)
        for name in stale:
            conn.execute(text(f"ANALYZE {name}"))  # name is one of SEARCH_TABLES
