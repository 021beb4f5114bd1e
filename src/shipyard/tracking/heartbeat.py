"""The SDK's heartbeat for a run it logs into, on a thread of its own.

The first heartbeat goes out at once, then one every ``interval`` seconds until
:meth:`Heartbeat.stop`. The server marks a running run failed once its heartbeats stop
for longer than its timeout (:mod:`shipyard.tracking.liveness`), which is how a run
whose process was killed outright stops reading ``running``.

A heartbeat that cannot get through (server down, network) is simply tried again at
the next interval: it is a sign of life, not data, and the metric buffer keeps
what matters. One the server refuses (the run deleted, access revoked) stops the
heartbeat, with a warning: it would be refused again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from shipyard.errors import ShipyardError, Unavailable

log = logging.getLogger("shipyard.tracking")


class Heartbeat:
    """Calls ``send()`` now and every ``interval`` seconds, off the caller's thread."""

    def __init__(self, send: Callable[[], None], interval: float, *, name: str) -> None:
        self._send = send
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more heartbeats. Does not wait for one in flight: the server ignores a
        late heartbeat for a run that has ended."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._send()
            except Unavailable:
                pass  # try again at the next interval
            except ShipyardError as exc:
                if not self._stop.is_set():
                    log.warning("run heartbeat stopped: %s", exc)
                return
            except Exception:
                if self._stop.is_set():  # the client closed under a last heartbeat
                    return
                log.exception("run heartbeat failed")
            if self._stop.wait(self._interval):
                return
