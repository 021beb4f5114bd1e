"""Project resolvers whose answers never go stale, cached per platform.

A run, an experiment or a project never moves to another project and is never
removed from the database (deletion is a lifecycle flag), so once looked up,
the answer holds for the life of the process. Resolvers run on every request;
the cache spares the database, and ``peek`` lets the authorization check know
it can decide without any I/O (and so without a worker-thread hop).

The answers hold for one database: one restored from a backup, or replaced, may
give a name another id. So the caches are caches of stored data
(:func:`shipyard.cache.holds_data`), which the command daemon empties before each
command, as a new process starts with none.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from fastapi import Request

from shipyard.cache import BoundedCache, holds_data
from shipyard.platform import Platform

CACHE_SIZE = 100_000


# One cache per platform (tests build many over one database), dropped with it.
_CACHES: dict[int, BoundedCache[int]] = {}
_CACHES_LOCK = threading.Lock()


def _cache(platform: Platform) -> BoundedCache[int]:
    cache = _CACHES.get(id(platform))
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.get(id(platform))
            if cache is None:
                cache = _CACHES[id(platform)] = holds_data(BoundedCache(CACHE_SIZE))
                weakref.finalize(platform, _CACHES.pop, id(platform), None)
    return cache


class CachedResolver:
    """Resolve the project of the object named by the path parameter ``param``.

    ``lookup(platform, value)`` answers from the database and raises NotFound;
    its answers are cached. Call it as a resolver; ``peek`` answers from the
    cache only (None when not cached).
    """

    def __init__(self, kind: str, param: str, lookup: Callable[[Platform, str], int]) -> None:
        self.kind = kind
        self.param = param
        self.lookup = lookup

    def resolve(self, platform: Platform, value: str) -> int:
        """The project id for ``value`` (cached)."""
        cache = _cache(platform)
        key = (self.kind, value)
        project_id = cache.get(key)
        if project_id is None:
            project_id = self.lookup(platform, value)
            cache.put(key, project_id)
        return project_id

    def cached(self, platform: Platform, value: str) -> int | None:
        """The project id for ``value`` if cached (no I/O); None otherwise."""
        return _cache(platform).get((self.kind, value))

    def remember(self, platform: Platform, value: str, project_id: int) -> None:
        """Record the project of an object just created (its first call skips a lookup)."""
        _cache(platform).put((self.kind, value), project_id)

    def __call__(self, request: Request, platform: Platform) -> int:
        return self.resolve(platform, request.path_params[self.param])

    def peek(self, request: Request, platform: Platform) -> int | None:
        """The cached answer, without I/O; None when it is not cached yet."""
        return self.cached(platform, request.path_params[self.param])
