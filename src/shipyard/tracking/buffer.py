"""The client-side metric buffer: cheap appends, batched sends off the caller's thread.

``add`` appends a tuple to a list under a lock: no I/O, no allocation beyond
the tuple. A background thread sends what has piled up every
``flush_interval`` seconds, or sooner once ``batch_size`` points wait, in
chunks of at most ``batch_size`` (one ``log_batch`` request each).

Delivery rules:

- Order is kept: points are sent in the order they were added, one request at
  a time (``_send_lock``), and a failed chunk goes back to the front.
- ``Unavailable`` (server down, network) is transient: the data is kept and
  retried with exponential backoff; ``flush`` retries until its timeout and
  then raises, still keeping the data for the next try.
- Any other error means the server rejected the chunk and will keep doing so:
  the chunk is dropped, the error is remembered and raised by the next
  ``flush``/``close`` (never lost silently), and later chunks still go out.
- Delivery is at least once: a request that timed out after the server stored
  it is sent again.
- The buffer is not bounded: during an outage, points pile up in memory
  (about 100 bytes each) rather than block or be dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from shipyard.errors import InvalidInput, ShipyardError, Unavailable

log = logging.getLogger("shipyard.tracking")

Metric = tuple[str, float, int, int]
"""One point: key, value, step, timestamp in epoch milliseconds."""

Sender = Callable[[Sequence[Metric]], None]

DEFAULT_FLUSH_TIMEOUT_S = 30.0
_BACKOFF_START_S = 0.1
_BACKOFF_MAX_S = 5.0


class MetricBuffer:
    """Collects metric points and sends them in batches through ``send``.

    ``send`` is called with a list of at most ``batch_size`` points; it is
    ``client.runs.log_batch`` bound to one run in practice.
    """

    def __init__(
        self,
        send: Sender,
        *,
        flush_interval: float,
        batch_size: int,
        name: str = "shipyard-metrics",
    ) -> None:
        if batch_size < 1:
            raise InvalidInput(f"metric batch size must be at least 1, got {batch_size}")
        self._send = send
        self._interval = max(flush_interval, 0.001)
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[Metric] = []
        # Points ever added, and points sent or dropped: flush waits for the
        # second to reach the first as it was when flush was called.
        self._added = 0
        self._done = 0
        self._send_lock = threading.Lock()
        self._errors: list[ShipyardError] = []
        self._dropped = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- the caller's side ----------------------------------------------------

    def add(self, key: str, value: float, step: int, timestamp: int) -> None:
        """Queue one point. Never does I/O; raises only when the buffer is closed."""
        with self._lock:
            if self._closed:
                raise InvalidInput(f"cannot log metric {key!r}: the run has ended")
            self._pending.append((key, value, step, timestamp))
            self._added += 1
            if len(self._pending) == self._batch_size:
                self._wake.notify()

    def add_many(self, points: Sequence[Metric]) -> None:
        """Queue several points at once (one lock round trip)."""
        with self._lock:
            if self._closed:
                raise InvalidInput("cannot log metrics: the run has ended")
            before = len(self._pending)
            self._pending.extend(points)
            self._added += len(points)
            if before < self._batch_size <= len(self._pending):
                self._wake.notify()

    @property
    def pending(self) -> int:
        """How many points wait to be sent."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S) -> None:
        """Block until every point added before this call is stored.

        Raises the first error the background thread met since the last
        flush (points it concerned were dropped), or ``Unavailable`` when the
        server stayed unreachable for ``timeout`` seconds (the points stay
        buffered for the next flush).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._added
        self._drain(deadline, target)
        self._raise_errors()

    def close(
        self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S, *, final: Sender | None = None
    ) -> None:
        """Refuse new points, stop the background thread and flush what is left.

        With ``final``, the last chunk (at most ``batch_size`` points, maybe
        none) goes through ``final`` instead of the sender, once every point
        before it is delivered: a run sends its last points and its end in one
        request. ``final`` is retried on ``Unavailable`` like any chunk; if it
        raises another error its points are dropped and that error is raised.

        Safe to call again after it raised (e.g. the server was down): it then
        retries sending what is still buffered.
        """
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        if final is None:
            self.flush(timeout)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        self._drain(deadline, keep=self._batch_size)
        self._send_final(final, deadline)
        self._raise_errors()

    def _send_final(self, final: Sender, deadline: float | None) -> None:
        backoff = _BACKOFF_START_S
        with self._send_lock:
            with self._lock:
                last, self._pending = self._pending, []
            while True:
                try:
                    final(last)
                except Unavailable:
                    if deadline is not None and time.monotonic() + backoff > deadline:
                        self._requeue(last)
                        raise
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)
                    continue
                except ShipyardError as exc:
                    self._record(exc, len(last))
                    self._raise_errors()
                except Exception as exc:  # as in _send_chunks: it would fail again
                    self._record(ShipyardError(f"sending metrics failed: {exc!r}"), len(last))
                    self._raise_errors()
                except BaseException:
                    self._requeue(last)
                    raise
                with self._lock:
                    self._done += len(last)
                return

    # --- the background side -------------------------------------------------

    def _run(self) -> None:
        backoff = _BACKOFF_START_S
        while not self._stop.is_set():
            with self._lock:
                if not self._closed and len(self._pending) < self._batch_size:
                    self._wake.wait(self._interval)
                if self._closed:
                    return
                # One pass over what is there now: points that arrive while it
                # is sent wait for the next wake-up, so a steady trickle is
                # still sent in batches rather than one request per point.
                target = self._added
            try:
                self._drain(deadline=0.0, target=target)
            except Unavailable as exc:
                log.warning("metric flush failed, will retry in %.1fs: %s", backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            except BaseException:  # never let the flusher die silently
                log.exception("metric flusher failed")
                self._stop.wait(backoff)
                continue
            backoff = _BACKOFF_START_S

    def _drain(self, deadline: float | None, target: int | None = None, keep: int = 0) -> None:
        """Send pending points in order until none is left (but the last ``keep``),
        or until the first ``target`` points ever added are done. ``deadline``
        bounds the retries of ``Unavailable`` (monotonic time; 0 means one
        attempt, None forever)."""
        backoff = _BACKOFF_START_S
        with self._send_lock:
            while True:
                with self._lock:
                    if len(self._pending) <= keep or (target is not None and self._done >= target):
                        return
                    if keep:
                        cut = len(self._pending) - keep
                        batch, self._pending = self._pending[:cut], self._pending[cut:]
                    else:
                        batch, self._pending = self._pending, []
                try:
                    self._send_chunks(batch)
                except Unavailable:
                    if deadline is not None and time.monotonic() + backoff > deadline:
                        raise
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _send_chunks(self, batch: list[Metric]) -> None:
        size = self._batch_size
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            try:
                self._send(chunk)
                with self._lock:
                    self._done += len(chunk)
            except Unavailable:
                self._requeue(batch[start:])
                raise
            except ShipyardError as exc:
                # The server rejected this chunk and would do so again.
                self._record(exc, len(chunk))
            except Exception as exc:
                self._record(ShipyardError(f"sending metrics failed: {exc!r}"), len(chunk))
            except BaseException:
                # Interrupted (KeyboardInterrupt, SystemExit): keep the data for the final flush.
                self._requeue(batch[start:])
                raise

    def _requeue(self, points: list[Metric]) -> None:
        with self._lock:
            self._pending[:0] = points

    def _record(self, exc: ShipyardError, dropped: int) -> None:
        log.error("dropped %d metric points: %s", dropped, exc)
        with self._lock:
            self._errors.append(exc)
            self._dropped += dropped
            self._done += dropped

    def _raise_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
            dropped, self._dropped = self._dropped, 0
        if not errors:
            return
        first = errors[0]
        first.details = {
            **first.details,
            "dropped_metrics": dropped,
            "errors": len(errors),
        }
        raise first
