"""shipyard.heap: the collector skips older objects inside a section, and only there."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

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


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}, **env},
    )


def test_a_command_starts_with_rare_passes_then_collects_as_usual() -> None:
    code = """
import gc, weakref
from shipyard.heap import START_UP_THRESHOLD, quiet_start_up, start_up_done
default = gc.get_threshold()
quiet_start_up()
assert gc.get_threshold()[0] == START_UP_THRESHOLD, gc.get_threshold()
old = [object() for _ in range(10)]
start_up_done()
assert gc.get_threshold() == default, gc.get_threshold()
assert gc.get_freeze_count() > 0  # start-up's objects are out of every pass
class Node:
    def __init__(self):
        self.me = self
node = Node()
ref = weakref.ref(node)
del node
gc.collect()
assert ref() is None  # the command's own garbage is collected
start_up_done()  # a second call changes nothing
assert gc.get_threshold() == default
print("ok")
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_server_freezes_its_heap_once_its_app_is_built(tmp_path: Path) -> None:
    """The server's start leaves the collector as usual (no freeze at the end of start-up,
    unlike a command); once the app is built (here the multi-worker entry point, which
    builds it on import) what it holds is frozen, garbage made before collected first,
    and garbage made after collected as usual."""
    code = """
import gc, weakref
from shipyard.heap import quiet_start_up, start_up_done
default = gc.get_threshold()
quiet_start_up()
start_up_done(freeze=False)
assert gc.get_threshold() == default and gc.get_freeze_count() == 0
class Node:
    def __init__(self):
        self.me = self
before = Node()
before_ref = weakref.ref(before)
del before
import shipyard.server.asgi
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
assert before_ref() is None  # garbage is collected, not frozen
after = Node()
after_ref = weakref.ref(after)
del after
gc.collect()
assert after_ref() is None
print("ok")
"""
    done = _run(code, SHIPYARD_HOME=str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_command_exits_with_its_status_and_a_closed_database(tmp_path: Path) -> None:
    """Exit skips Python's last pass over the heap, not the work before it: the exit
    status is the command's and the embedded SQLite database is closed (its write-ahead
    log folded back), as after a plain exit."""
    home = tmp_path / "home"
    cli = "import sys; from shipyard.cli.main import main; sys.argv[1:] = {args!r}; main()"
    made = _run(cli.format(args=["projects", "create", "p1"]), SHIPYARD_HOME=str(home))
    assert made.returncode == 0, made.stderr
    assert "p1" in made.stdout
    assert (home / "shipyard.db").exists()
    assert not list(home.glob("shipyard.db-*"))  # no -wal, no -shm
    missing = _run(cli.format(args=["runs", "show", "nope"]), SHIPYARD_HOME=str(home))
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    listed = _run(cli.format(args=["projects", "list", "--json"]), SHIPYARD_HOME=str(home))
    assert listed.returncode == 0 and '"p1"' in listed.stdout
