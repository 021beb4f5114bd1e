"""shipyard.heap: the collector skips older objects inside a section, and only there."""

from __future__ import annotations

import gc
import threading
import weakref

from shipyard.heap import older_objects_frozen


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_older_objects_are_skipped_inside_and_back_after() -> None:
    assert gc.get_freeze_count() == 0
    old = _Node()
    old_ref = weakref.ref(old)
    with older_objects_frozen():
        assert gc.get_freeze_count() > 0
        del old
        gc.collect()
        assert old_ref() is not None  # frozen: the collector does not see it die
        young = _Node()
        young_ref = weakref.ref(young)
        del young
        gc.collect()
        assert young_ref() is None  # made inside: collected as usual
        with older_objects_frozen():  # nested: the outer section still holds
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old_ref() is None  # back under the collector


def test_sections_of_several_threads_unfreeze_once_all_end() -> None:
    inside = threading.Barrier(3)
    leave = threading.Event()

    def work() -> None:
        with older_objects_frozen():
            inside.wait()
            leave.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert gc.get_freeze_count() > 0
    leave.set()
    for t in threads:
        t.join()
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_is_left_alone() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with older_objects_frozen():
            pass
        assert gc.get_freeze_count() == frozen  # not unfrozen by us
    finally:
        gc.unfreeze()
