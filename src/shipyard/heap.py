"""Keeping Python's cycle collector off the long-lived heap during Shipyard's bursts.

A process that has imported FastAPI, SQLAlchemy, pydantic and pyarrow and built the app
holds about a million objects that live as long as it does. When a burst of work keeps
many new objects alive for a moment (the partial profiles of 1,000 files), the
collector's full pass walks all of them: 75 of the 235 ms of re-versioning a folder of
1,000 files went there. ``gc.freeze`` exempts the objects alive at a moment from every
pass; new ones are still collected as usual.

A server is the third case (:func:`serving`): its app built, the ~170k objects it holds
live as long as it does, and a full pass over them took 80-90 ms on a 2-core VM, paid by
one request in ~5 of MLflow's top-1,000 search (942 KB answers). Frozen once the app is
built, interleaved with an unfrozen server on the same database: that search's median
the same (26.6 against 26.8 ms), its 90th percentile 30 against 105-110 ms; the native
filtered search's median and 99th percentile the same (5.6-6.2 ms; 8-10 ms), its worst
11-13 against 84-91 ms. (An earlier trial, one server after the other, had seen that
search's 99th percentile grow, 7-8 -> 11-13 ms: not seen side by side.)

A CLI command is the other case: a short process whose start-up (imports, the embedded
app) builds that heap while the collector walks it again and again, and whose exit walks
it once more while Python tears its modules down. :func:`quiet_start_up` and
:func:`start_up_done` keep both passes off it; a command then collects its own garbage
as usual.
"""

from __future__ import annotations

import atexit
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # sections inside older_objects_frozen(), all threads together
_froze = False  # whether the outermost section froze (and so must unfreeze)


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Within the block, the collector skips every object that existed when the
    (outermost) block began; they are back under it afterwards. Nestable and
    thread-safe. Does nothing when the process froze objects itself."""
    global _depth, _froze
    with _lock:
        if _depth == 0:
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _froze:
                gc.unfreeze()


START_UP_THRESHOLD = 100_000
"""New objects between two young-generation passes while a command starts (the default
is 700): start-up makes ~150k objects that all live until exit, so passes over them
find nothing. With the pass at exit they were 8% of the instructions of ``shipyard data
list`` (callgrind) and more of its time, since the passes wait on memory."""

_default_threshold: tuple[int, ...] | None = None


def quiet_start_up() -> None:
    """For a short-lived process (a CLI command), called first: the collector runs
    rarely until :func:`start_up_done`, and not at all over the heap at exit (Python's
    finalisation would walk it once more, ~0.1-0.3 s; a process ends anyway)."""
    global _default_threshold
    if _default_threshold is None:
        _default_threshold = gc.get_threshold()
        gc.set_threshold(START_UP_THRESHOLD, *_default_threshold[1:])
    atexit.register(_at_exit)  # registered first, so it runs after every other hook


_collect_at_exit = False


def collect_at_exit() -> None:
    """The command failed: collect garbage at exit after all. A failure leaves its work's
    objects in cycles (an exception's frames), and native ones among them (profile
    sketches) would be reported as leaked, one line each, when Python ends with them
    uncollected."""
    global _collect_at_exit
    _collect_at_exit = True


def _at_exit() -> None:
    if _collect_at_exit:
        gc.collect()
    else:
        gc.freeze()


def serving() -> None:
    """A server's app is built: what the process holds now is kept out of the collector's
    passes for good (collected once first, so no garbage is frozen with it). New objects
    are collected as usual."""
    gc.collect()
    gc.freeze()


def start_up_done(*, freeze: bool = True) -> None:
    """The command's own work begins: the collector runs as usual again, and with
    ``freeze`` what start-up built is left out of every pass (a server freezes once its
    app is built, :func:`serving`). Does nothing without :func:`quiet_start_up`."""
    global _default_threshold
    if _default_threshold is not None:
        if freeze:
            gc.freeze()
        gc.set_threshold(*_default_threshold)
        _default_threshold = None
