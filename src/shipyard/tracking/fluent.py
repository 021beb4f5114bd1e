"""Module-level tracking functions: ``shipyard.start_run``, ``shipyard.log_metric``...

Active runs form a stack per thread (``start_run(nested=True)`` pushes a child
of the top run). A thread with no run of its own logs into the run started
last in the process, so worker threads of a training loop need no plumbing.
Logging with no active run starts one (as MLflow does).

Runs still active when the interpreter exits are flushed and ended:
``finished``, or ``failed`` when an uncaught exception ended the program, or
``killed`` on Ctrl-C or SIGTERM. While runs are active, SIGTERM (when nobody
else handles it) raises ``Terminated`` in the main thread so that ``with``
blocks unwind and the process exits with status 143.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.tracking.run import ActiveRun, LoggedModel, Terminated, status_for_exception

if TYPE_CHECKING:
    from shipyard.client.client import Client
    from shipyard.datasets.types import DatasetInput, DatasetVersion
    from shipyard.tracking.artifact_types import ArtifactInfo
    from shipyard.tracking.types import Experiment

log = logging.getLogger("shipyard.tracking")

_lock = threading.RLock()
_stacks: dict[int, list[ActiveRun]] = {}  # thread ident -> its runs, innermost last
_active: list[ActiveRun] = []  # every active run of this process, in start order
_unfinished: list[ActiveRun] = []  # runs whose end failed (server down): retried at exit
_client: Client | None = None
_experiment: str | int | None = None
_hooks_installed = False
_terminated = False


def get_client() -> Client:
    """The process-wide SDK client the module functions use (``Client()``:
    ``SHIPYARD_URL`` or embedded over ``SHIPYARD_HOME``), made on first use."""
    global _client
    with _lock:
        if _client is None:
            from shipyard.client.client import Client

            _client = Client()
        return _client


def set_client(client: Client | None) -> None:
    """Make ``client`` the one the module functions use (None: back to ``Client()``
    made on first use). Runs already active keep the client they started with."""
    global _client
    with _lock:
        _client = client


def set_experiment(name: str, *, client: Client | None = None) -> Experiment:
    """Make ``name`` the experiment of the next runs, creating it if missing."""
    global _experiment
    experiment = (client or get_client()).experiments.get_or_create(name)
    _experiment = name
    return experiment


def active_run() -> ActiveRun | None:
    """The run that module-level logging goes to: this thread's innermost run,
    else the run started last in this process; None when there is none."""
    with _lock:
        stack = _stacks.get(threading.get_ident())
        if stack:
            return stack[-1]
        return _active[-1] if _active else None


def start_run(
    experiment: str | int | None = None,
    *,
    run_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    project: str | None = None,
    client: Client | None = None,
    system_metrics_interval: float | None = None,
) -> ActiveRun:
    """Create a run and make it active; use it as ``with start_run(...) as run:``.

    ``experiment`` (a name, created if missing, or an id) defaults to the
    parent's when nested, then to ``set_experiment``'s, then to "default".
    ``params`` and ``tags`` are stored with the run in the same request.
    ``nested=True`` makes the run a child of the active run; without it,
    starting a run while this thread has one raises ``InvalidInput``.
    ``system_metrics_interval`` overrides the setting of the same name
    (seconds; 0 turns sampling off).
    """
    with _lock:
        own = _stacks.get(threading.get_ident())
        if own and not nested:
            raise InvalidInput(
                f"run {own[-1].id} is already active in this thread: end it first, "
                "or pass nested=True to start a child run"
            )
    parent = active_run() if nested else None
    if client is None:
        client = parent.client if parent is not None else get_client()
    if experiment is None:
        experiment = parent.experiment_id if parent is not None else _experiment
    run = ActiveRun.start(
        client,
        experiment,
        run_name=run_name,
        parent_run_id=parent.id if parent is not None else None,
        params=params,
        tags=tags,
        project=project,
        system_metrics_interval=system_metrics_interval,
    )
    with _lock:
        _stacks.setdefault(threading.get_ident(), []).append(run)
        _active.append(run)
    run.on_end(_forget)
    _install_exit_hooks()
    return run


def end_run(status: str = "finished") -> None:
    """End the active run (see ``active_run``): flush its metrics, set ``status``."""
    run = active_run()
    if run is not None:
        run.end(status)


def _forget(run: ActiveRun) -> None:
    with _lock:
        if not run.ended:
            _unfinished.append(run)
        if run in _active:
            _active.remove(run)
        for ident, stack in list(_stacks.items()):
            if run in stack:
                stack.remove(run)
            if not stack:
                del _stacks[ident]


def _run() -> ActiveRun:
    run = active_run()
    return run if run is not None else start_run()


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Log a metric point to the active run (buffered: no I/O in the caller's thread)."""
    _run().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    """Log several metrics at one step to the active run (buffered)."""
    _run().log_metrics(metrics, step, timestamp)


def log_param(key: str, value: Any) -> None:
    """Log a param to the active run, at once; ``Conflict`` if it differs from
    a value logged before."""
    _run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log several params to the active run in one request."""
    _run().log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag of the active run."""
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags of the active run in one request."""
    _run().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactInfo:
    """Upload a file to the active run."""
    return _run().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactInfo]:
    """Upload a folder's files to the active run."""
    return _run().log_artifacts(local_dir, artifact_path)


def log_model(model: Any, artifact_path: str = "model") -> LoggedModel:
    """Save ``model`` with its flavor and upload it to the active run."""
    return _run().log_model(model, artifact_path)


def log_input(
    dataset: str | DatasetVersion,
    version: int | str = "latest",
    *,
    context: str = "training",
    project: str | None = None,
) -> DatasetInput:
    """Record that the active run read a dataset version (see ``ActiveRun.log_input``)."""
    return _run().log_input(dataset, version, context=context, project=project)


# --- the end of the process -------------------------------------------------------------


def _install_exit_hooks() -> None:
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    # Runs must end while the interpreter can still run the embedded server,
    # which needs concurrent.futures: its shutdown hook is a "threading atexit"
    # run before plain atexit callbacks. Those hooks run in reverse order, so
    # importing the module first puts ours ahead of its own.
    import concurrent.futures.thread  # noqa: F401

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading atexit")
        register(_end_all_at_exit)
    except RuntimeError:
        pass
    # A second chance for runs started while the interpreter was shutting down.
    atexit.register(_end_all_at_exit)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _exit_status() -> str:
    if _terminated:
        return "killed"
    if hasattr(sys, "ps1"):  # interactive: sys.last_value is an old, handled error
        return "finished"
    return status_for_exception(getattr(sys, "last_value", None))


def _end_all_at_exit() -> None:
    status = _exit_status()
    with _lock:
        runs = [r for r in [*reversed(_active), *_unfinished] if r.pid == os.getpid()]
        _unfinished.clear()
    for run in runs:
        try:
            run.end(status)
        except BaseException as exc:  # never raise out of interpreter shutdown
            print(f"shipyard: could not end run {run.id} at exit: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated
    mine = any(r.pid == os.getpid() for r in list(_active))
    if not mine or _terminated:
        # Nothing to save (or a second SIGTERM): die the default way.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    _terminated = True
    raise Terminated(128 + signum)


def _after_fork_in_child() -> None:
    # A forked child owns none of its parent's runs, and must not reuse its
    # client (connection pools, the embedded server's event loop thread).
    global _lock, _client, _terminated
    _lock = threading.RLock()
    _stacks.clear()
    _active.clear()
    _unfinished.clear()
    _client = None
    _terminated = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
