"""Turns for uploads: a bound on how much upload work the server does at once.

A waiting request reads nothing from its socket, so TCP holds its sender back and
its bytes take no memory here. Without a bound, every concurrent upload holds its
buffers (up to ~7 MiB each into S3) and a join of pieces its read-ahead (64 MiB):
a few hundred clients at once could take the server's memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import AsyncIterator

UPLOAD_UNITS = 1
"""What one streamed upload holds: up to two 1 MiB units in flight (+5 MiB into S3)."""
JOIN_UNITS = 8
"""What a join of pieces holds: 16 MiB reads, three ahead (64 MiB)."""


class UploadTurns:
    """At most ``capacity`` units of upload work in progress on each event loop; the
    rest wait their turn, first come first served, before their bodies are read. A
    request that needs more units than the capacity waits for all of it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def held(self, units: int = UPLOAD_UNITS) -> AsyncIterator[None]:
        """Wait for ``units`` (at most the capacity) and hold them for the block."""
        loop = asyncio.get_running_loop()
        turns = self._by_loop.get(loop)
        if turns is None:
            turns = self._by_loop[loop] = _Turns(self.capacity)
        units = min(units, self.capacity)
        await turns.acquire(units)
        try:
            yield
        finally:
            turns.release(units)

    def in_use(self) -> int:
        """Units held now, over every event loop."""
        return sum(self.capacity - t.free for t in list(self._by_loop.values()))

    def waiting(self) -> int:
        """Requests waiting for a turn now, over every event loop."""
        return sum(len(t.queue) for t in list(self._by_loop.values()))


class _Turns:
    """A first-come-first-served semaphore whose holders take several units at once
    (asyncio's Semaphore takes one at a time, and a newcomer may overtake a waiter)."""

    def __init__(self, capacity: int) -> None:
        self.free = capacity
        self.queue: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def acquire(self, units: int) -> None:
        if not self.queue and self.free >= units:
            self.free -= units
            return
        granted = asyncio.get_running_loop().create_future()
        entry = (units, granted)
        self.queue.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(units)  # granted as it was cancelled: pass the units on
            else:
                self.queue.remove(entry)
                self._grant()  # it may have been the head that held the others back
            raise

    def release(self, units: int) -> None:
        self.free += units
        self._grant()

    def _grant(self) -> None:
        while self.queue and self.queue[0][0] <= self.free:
            units, granted = self.queue.popleft()
            self.free -= units
            granted.set_result(None)
