"""Slowing down guessing: failures are counted per key (a user name, a source
address), and past a limit within a window that key is refused for a while.

Used for password sign-ins (one throttle per platform). The counts live in the
server process: a fleet of servers multiplies the allowance by its size, still far
below what guessing needs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from shipyard.errors import TooManyRequests

MAX_FAILURES = 10
WINDOW_S = 300.0
MAX_KEYS = 100_000


class FailureThrottle:
    """Counts recent failures by key; :meth:`check` refuses keys over the limit."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] > self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, what: str, *keys: str) -> None:
        """Raise TooManyRequests (naming ``what`` failed) if any key has too many recent
        failures."""
        now = self.clock()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    wait = max(1, int(self.window_s - (now - times[0])) + 1)
                    raise TooManyRequests(
                        f"too many {what}; try again in {wait} s",
                        {"retry_after_s": wait},
                    )

    def failed(self, *keys: str) -> None:
        """Count one failure against each key."""
        now = self.clock()
        with self._lock:
            if len(self._failures) >= MAX_KEYS:  # bounded memory under a spray of names
                self._failures.pop(next(iter(self._failures)))
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures."""
        with self._lock:
            self._failures.pop(key, None)
