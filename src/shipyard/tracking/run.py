"""``ActiveRun``: a run being logged from this process.

Metrics go into a ``MetricBuffer`` and reach the server in batches from a
background thread, so ``log_metric`` costs an append. Params and tags are sent
at once, so that a param logged twice with different values raises
``Conflict`` at the call that logged it. Ending the run (``end``, or leaving a
``with`` block) stops the system metrics sampler, flushes every buffered point
and sets the final status: ``finished``, ``failed`` when the block raised,
``killed`` on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.errors import InvalidInput, ShipyardError, Unavailable
from shipyard.tracking.buffer import DEFAULT_FLUSH_TIMEOUT_S, Metric, MetricBuffer
from shipyard.tracking.environment import capture_code_version, capture_environment
from shipyard.tracking.heartbeat import Heartbeat
from shipyard.tracking.system_metrics import SystemMetricsSampler
from shipyard.tracking.types import INT64_MAX, INT64_MIN, MAX_KEY_LENGTH, Run, key_problem

if TYPE_CHECKING:
    from shipyard.client.client import Client
    from shipyard.datasets.types import DatasetInput, DatasetVersion
    from shipyard.tracking.artifact_types import ArtifactInfo

log = logging.getLogger("shipyard.tracking")

END_STATUSES = frozenset({"finished", "failed", "killed"})


class Terminated(SystemExit):
    """Raised in the main thread when the process gets SIGTERM while runs are active,
    so that ``with`` blocks unwind and mark their runs ``killed``."""


def status_for_exception(exc: BaseException | None) -> str:
    """The final status of a run whose block ended with ``exc`` (None: no error)."""
    if exc is None:
        return "finished"
    if isinstance(exc, Terminated | KeyboardInterrupt | GeneratorExit):
        return "killed"
    if isinstance(exc, SystemExit):
        return "finished" if exc.code in (0, None) else "failed"
    return "failed"


@dataclass(frozen=True)
class LoggedModel:
    """A model saved as artifacts of a run (what ``log_model`` returns)."""

    run_id: str
    artifact_path: str
    flavor: str

    @property
    def uri(self) -> str:
        """``runs:/<run_id>/<artifact_path>``: how the registry refers to it."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


class ActiveRun:
    """A run this process logs into; also a context manager that ends it.

    Build one with ``ActiveRun.start(client, ...)`` (or ``shipyard.start_run``).
    Logging methods are thread-safe.
    """

    def __init__(
        self,
        client: Client,
        run: Run,
        *,
        system_metrics_interval: float | None = None,
        project: str | None = None,
    ) -> None:
        settings = client.settings
        self.client = client
        self.info: Run = run
        self.id: str = run.id
        # The project the run was started in, when the caller named one (else the
        # client's): where log_input looks for datasets by default.
        self.project: str = project or client.project
        self.pid = os.getpid()
        self.status = "running"
        self._end_lock = threading.Lock()
        self._ended = False
        self._on_end: list[Callable[[ActiveRun], None]] = []
        self._good_keys: set[str] = set()
        self._buffer = MetricBuffer(
            self._send,
            flush_interval=settings.metric_flush_interval,
            batch_size=settings.metric_batch_size,
            name=f"shipyard-metrics-{self.id[:8]}",
        )
        interval = (
            settings.system_metrics_interval
            if system_metrics_interval is None
            else system_metrics_interval
        )
        self._sampler = (
            SystemMetricsSampler(
                self._log_sample, interval=interval, disk_path=settings.home
            ).start()
            if interval > 0
            else None
        )
        self._heartbeat = (
            Heartbeat(
                lambda: client.runs.heartbeat(self.id),
                settings.run_heartbeat_interval,
                name=f"shipyard-heartbeat-{self.id[:8]}",
            ).start()
            if settings.run_heartbeat_interval > 0
            else None
        )

    @classmethod
    def start(
        cls,
        client: Client,
        experiment: str | int | None = None,
        *,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        project: str | None = None,
        system_metrics_interval: float | None = None,
    ) -> ActiveRun:
        """Create a run (with its params, tags, code version and environment in
        one request) and start logging into it."""
        run = client.runs.create(
            experiment,
            name=run_name,
            parent_run_id=parent_run_id,
            params=params,
            tags=tags,
            code_version=capture_code_version(),
            environment=capture_environment(),
            project=project,
        )
        return cls(client, run, system_metrics_interval=system_metrics_interval, project=project)

    # --- identity ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def experiment_id(self) -> int:
        return self.info.experiment_id

    @property
    def parent_run_id(self) -> str | None:
        return self.info.parent_run_id

    @property
    def ended(self) -> bool:
        """Whether the run has been ended (by this object)."""
        return self._ended

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} name={self.info.name!r} status={self.status}>"

    # --- metrics ------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Buffer one metric point; sent in the background. ``timestamp`` is epoch ms
        (default: now). A NaN value is stored as null. A bad key or value raises
        ``InvalidInput`` here rather than failing a whole batch later."""
        if type(key) is not str or key not in self._good_keys:
            self._check_key(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"metric {key!r}: {value!r} is not a number") from None
        self._buffer.add(key, number, *_step_and_time(step, timestamp))

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Buffer several metrics at the same step and time."""
        step, ts = _step_and_time(step, timestamp)
        points: list[Metric] = []
        for key, value in metrics.items():
            if type(key) is not str or key not in self._good_keys:
                self._check_key(key)
            try:
                points.append((key, float(value), step, ts))
            except (TypeError, ValueError):
                raise InvalidInput(f"metric {key!r}: {value!r} is not a number") from None
        self._buffer.add_many(points)

    def _check_key(self, key: object) -> None:
        if not isinstance(key, str):
            raise InvalidInput(f"metric key must be a string, got {type(key).__name__}")
        problem = key_problem(key)
        if problem is not None:
            raise InvalidInput(f"invalid metric {problem}", {"key": key[:MAX_KEY_LENGTH]})
        # Checked once per key: the set stays as small as the run's metric names.
        self._good_keys.add(key)

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S) -> None:
        """Block until every metric logged so far is stored; raise what went wrong
        in the background since the last flush."""
        self._buffer.flush(timeout)

    def _send(self, points: list[Metric]) -> None:
        self.client.runs.log_batch(self.id, metrics=points)

    def _log_sample(self, values: dict[str, float], step: int) -> None:
        ts = now_ms()
        self._buffer.add_many([(k, v, step, ts) for k, v in values.items()])

    # --- params and tags (sent at once) -----------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Log a param (stored as a string). Raises ``Conflict`` if it was already
        logged with another value."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log several params in one request; all or none are stored."""
        if params:
            self.client.runs.log_batch(self.id, params=params)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (stored as a string), replacing its previous value."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags in one request."""
        if tags:
            self.client.runs.log_batch(self.id, tags=tags)

    # --- artifacts ------------------------------------------------------------------

    def log_artifact(
        self, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Upload one file, under the folder ``artifact_path`` of the run."""
        return self.client.artifacts.upload_file(self.id, local_path, artifact_path)

    def log_artifacts(
        self, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Upload a folder's files, under the folder ``artifact_path`` of the run."""
        return self.client.artifacts.upload_dir(self.id, local_dir, artifact_path)

    def log_model(self, model: Any, artifact_path: str = "model") -> LoggedModel:
        """Save ``model`` with its flavor (scikit-learn, or any picklable object) and
        upload the folder under ``artifact_path``."""
        from shipyard.registry.flavors import save_model

        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            folder = Path(tmp) / "model"
            flavor = save_model(model, folder)
            self.client.artifacts.upload_dir(self.id, folder, artifact_path)
        return LoggedModel(run_id=self.id, artifact_path=artifact_path, flavor=flavor)

    # --- dataset inputs -------------------------------------------------------------

    def log_input(
        self,
        dataset: str | DatasetVersion,
        version: int | str = "latest",
        *,
        context: str = "training",
        project: str | None = None,
    ) -> DatasetInput:
        """Record that this run read a dataset version, sent at once.

        ``dataset`` is a dataset name with ``version`` (a number, a tag such as
        ``prod``, or ``latest``, resolved now), or a version object from
        ``client.datasets`` (its own number is used; ``version`` is ignored).
        ``context`` says how it was used ("training", "eval", ...). The dataset must be
        in the run's project (``project`` defaults to it). Logging the same version and
        context again changes nothing."""
        from shipyard.datasets import types as datasets_types

        if isinstance(dataset, str):
            name, selector = dataset, version
        elif isinstance(dataset, datasets_types.DatasetVersion):
            name, selector = dataset.dataset, dataset.version
        else:
            raise InvalidInput(
                f"dataset must be a name or a dataset version, got {type(dataset).__name__}"
            )
        return self.client.datasets.log_input(
            self.id, name, selector, context=context, project=project or self.project
        )

    # --- the end ------------------------------------------------------------------

    def on_end(self, callback: Callable[[ActiveRun], None]) -> None:
        """Call ``callback(self)`` once the run has ended (or failed to end)."""
        self._on_end.append(callback)

    def end(
        self, status: str = "finished", *, timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S
    ) -> None:
        """Stop sampling, flush every buffered metric and set the final status.

        A no-op once ended, and in a forked child (the run belongs to its
        parent). If metrics were dropped (the server rejected them) the status
        is still set, then the error is raised. If the server is unreachable
        the buffered metrics are kept and ``Unavailable`` is raised: calling
        ``end`` again retries.
        """
        if status not in END_STATUSES:
            raise InvalidInput(f"status must be one of {sorted(END_STATUSES)}, got {status!r}")
        if os.getpid() != self.pid:
            return
        dropped: ShipyardError | None = None
        with self._end_lock:
            if self._ended:
                return
            try:
                if self._sampler is not None:
                    self._sampler.stop()
                ended_by_last_batch = False

                def send_last(points: Sequence[Metric]) -> None:
                    # The last points and the end of the run: one request.
                    nonlocal ended_by_last_batch
                    self.client.runs.log_batch(self.id, metrics=points, end_status=status)
                    ended_by_last_batch = True

                try:
                    self._buffer.close(timeout, final=send_last)
                except Unavailable:
                    raise
                except ShipyardError as exc:
                    dropped = exc
                if ended_by_last_batch:
                    self.info = self.info.model_copy(
                        update={"status": status, "end_time": now_ms()}
                    )
                else:
                    # Setting a status is idempotent: retry it like a metric batch.
                    self.info = _retry_unavailable(
                        lambda: self.client.runs.end(self.id, status=status), timeout
                    )
                self._ended = True
                self.status = status
                # Only now: a process that could not reach the server to end its run
                # is still alive, and says so until it does.
                if self._heartbeat is not None:
                    self._heartbeat.stop()
            finally:
                for callback in self._on_end:
                    try:
                        callback(self)
                    except Exception:
                        log.exception("run end callback failed")
                self._on_end.clear()
        if dropped is not None:
            raise dropped

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.end(status_for_exception(exc))
        except Exception:
            if exc is None:
                raise
            # Do not hide the error that ended the block behind ours.
            log.exception("could not end run %s after its block raised", self.id)


def _step_and_time(step: int, timestamp: int | None) -> tuple[int, int]:
    """A point's step and time (epoch ms, default now) as the server stores them, or
    InvalidInput now: a point the server refuses would take its whole batch with it."""
    try:
        step = int(step)
        timestamp = now_ms() if timestamp is None else int(timestamp)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"step {step!r} and timestamp {timestamp!r} must be integers") from None
    if not INT64_MIN <= step <= INT64_MAX:
        raise InvalidInput(f"step {step} is out of the 64-bit range")
    if not 0 <= timestamp <= INT64_MAX:
        raise InvalidInput(f"timestamp {timestamp} must be epoch milliseconds (0 or more)")
    return step, timestamp


def _retry_unavailable(call: Callable[[], Run], timeout: float | None) -> Run:
    deadline = None if timeout is None else time.monotonic() + timeout
    backoff = 0.1
    while True:
        try:
            return call()
        except Unavailable:
            if deadline is not None and time.monotonic() + backoff > deadline:
                raise
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
