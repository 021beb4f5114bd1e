"""The SDK's heartbeat for a run it logs into, on a thread of its own.

The first heartbeat goes out at once, then one every ``interval`` seconds until
:meth:`Heartbeat.stop`. The server marks a running run failed once its heartbeats stop
for longer than its timeout (:mod:`shipyard.tracking.liveness`), which is how a run
whose process was killed outright stops reading ``running``.

A heartbeat is a sign of life, not data: one that fails is not retried, the next
goes out at the next interval. What fails for a while (the server down or restarting
behind a proxy, a busy database, a deleted run that may be restored) is tried again
at every interval, with one warning; so a live process whose run was marked lost
during an outage brings it back. Only an answer that cannot change while this
process lives stops the heartbeat: the run is gone (404) or the caller may not write
to it (401, 403).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable

from shipyard.errors import NotFound, PermissionDenied, Unauthenticated

log = logging.getLogger("shipyard.tracking")

FINAL = (NotFound, PermissionDenied, Unauthenticated)
"""Answers that stop a heartbeat: asking again would get the same."""

_live: weakref.WeakSet[Heartbeat] = weakref.WeakSet()
_live_lock = threading.Lock()
_hook_registered = False


class Heartbeat:
    """Calls ``send()`` now and every ``interval`` seconds, off the caller's thread."""

    def __init__(self, send: Callable[[], None], interval: float, *, name: str) -> None:
        self._send = send
        self._interval = interval
        self._stop = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Heartbeat:
        global _hook_registered
        with _live_lock:
            if not _hook_registered:
                # Registered now, after the client opened its embedded stores, so that
                # it runs before their closing hook (atexit runs hooks last first): a
                # run never ended then sends no heartbeat into closed stores.
                atexit.register(_stop_all)
                _hook_registered = True
            _live.add(self)
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more heartbeats. Does not wait for one in flight: a heartbeat that lands
        after its run has ended only moves the run's liveness time."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to finish (after :meth:`stop`); whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._send()
            except FINAL as exc:
                if not self._stop.is_set():
                    log.warning("run heartbeat stopped: %s", exc)
                return
            except Exception as exc:
                if self._stop.is_set():  # the client closed under a last heartbeat
                    return
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "run heartbeat failed, trying again every %ss: %s", self._interval, exc
                    )
            if self._stop.wait(self._interval):
                return


def _stop_all() -> None:
    with _live_lock:
        live = list(_live)
    for heartbeat in live:
        heartbeat.stop()
