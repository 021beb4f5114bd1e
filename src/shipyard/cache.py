"""A small thread-safe cache that forgets its least recently used entries, and the one
registry of the process-level caches that hold stored data.

A cache of stored data (a project's id by name, say) is right for as long as the
database it was filled from is the one the process reads. A new process starts with
none; the command daemon (``cli/daemon.py``) calls :func:`forget_data` before each
command, so that a served command starts with what a new process has, even after the
database file was restored or replaced under it. A cache of what holds no data (a
compiled statement, a parsed file of the package) is not registered and is kept.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

V = TypeVar("V")


class Clearable(Protocol):
    def clear(self) -> None: ...


C = TypeVar("C", bound=Clearable)

# By identity, weakly held: a cache of an object (a platform, a client) goes with it.
_DATA_CACHES: dict[int, weakref.ref[Clearable]] = {}


def holds_data(cache: C) -> C:
    """Register ``cache`` (anything with ``clear()`` that can be weakly referenced: a
    :class:`BoundedCache`, a :class:`DataDict`) as a process-level cache of stored
    data, which :func:`forget_data` empties; return it."""
    key = id(cache)
    _DATA_CACHES[key] = weakref.ref(cache, lambda _: _DATA_CACHES.pop(key, None))
    return cache


def forget_data() -> None:
    """Empty every registered cache of stored data: the process then answers as a new
    one would, from the database as it is now."""
    for ref in list(_DATA_CACHES.values()):
        cache = ref()
        if cache is not None:
            cache.clear()


class DataDict(dict):  # type: ignore[type-arg]
    """A plain dict that :func:`holds_data` can register (a dict cannot be weakly
    referenced; a subclass can)."""


class BoundedCache(Generic[V]):
    """At most ``size`` entries; the least recently used goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> V:
        """Store ``value`` and return it."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
