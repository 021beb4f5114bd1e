"""The metric buffer: first on its own, with a sender that records what it is given
(the seam the buffer is built on; in a run it is ``client.runs.log_batch``), then
through a real server that goes down and comes back.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from shipyard.client import Client
from shipyard.config import Settings
from shipyard.errors import InvalidInput, NotFound, ShipyardError, Unavailable
from shipyard.platform import Platform
from shipyard.server.app import create_app
from shipyard.tracking.buffer import Metric, MetricBuffer
from shipyard.tracking.run import ActiveRun


class Recorder:
    """A sender that stores chunks, failing as scripted."""

    def __init__(self, failures: Sequence[BaseException] = ()) -> None:
        self.chunks: list[list[Metric]] = []
        self.failures = list(failures)
        self.calls = 0
        self.lock = threading.Lock()
        self.sent = threading.Event()

    def __call__(self, chunk: Sequence[Metric]) -> None:
        with self.lock:
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            self.chunks.append(list(chunk))
        self.sent.set()

    @property
    def points(self) -> list[Metric]:
        return [p for c in self.chunks for p in c]


def make(recorder: Recorder, *, interval: float = 60.0, batch: int = 1000) -> MetricBuffer:
    return MetricBuffer(recorder, flush_interval=interval, batch_size=batch)


def test_flush_sends_everything_in_order_in_chunks() -> None:
    rec = Recorder()
    buf = make(rec, batch=100)
    for i in range(250):
        buf.add("loss", float(i), i, 1000 + i)
    buf.flush()
    assert [p[2] for p in rec.points] == list(range(250))
    assert all(len(c) <= 100 for c in rec.chunks)
    assert rec.points[7] == ("loss", 7.0, 7, 1007)
    assert buf.pending == 0
    buf.close()


def test_background_thread_sends_on_interval_without_flush() -> None:
    rec = Recorder()
    buf = make(rec, interval=0.01)
    buf.add("a", 1.0, 0, 1)
    assert rec.sent.wait(30)
    assert rec.points == [("a", 1.0, 0, 1)]
    buf.close()


def test_background_thread_sends_when_batch_is_full() -> None:
    rec = Recorder()
    buf = make(rec, interval=3600, batch=10)
    buf.add_many([("a", float(i), i, 0) for i in range(10)])
    assert rec.sent.wait(30)  # the interval is an hour: the full batch woke the flusher
    buf.close()
    assert len(rec.points) == 10


def test_many_threads_lose_nothing_and_keep_each_threads_order() -> None:
    rec = Recorder()
    buf = make(rec, interval=0.001, batch=64)

    def work(t: int) -> None:
        for i in range(2000):
            buf.add(f"t{t}", float(i), i, 0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    buf.close()
    for t in range(8):
        steps = [p[2] for p in rec.points if p[0] == f"t{t}"]
        assert steps == list(range(2000))


def test_unavailable_is_retried_and_nothing_is_lost() -> None:
    rec = Recorder(failures=[Unavailable("down"), Unavailable("still down")])
    buf = make(rec, batch=2)
    buf.add_many([("a", float(i), i, 0) for i in range(5)])
    buf.flush()
    assert rec.calls == 5  # two failures, then three chunks
    assert [p[2] for p in rec.points] == [0, 1, 2, 3, 4]
    buf.close()


def test_unavailable_past_the_timeout_raises_and_keeps_the_data() -> None:
    rec = Recorder(failures=[Unavailable("down")] * 3)
    buf = make(rec)
    buf.add("a", 1.0, 0, 0)
    with pytest.raises(Unavailable):
        buf.flush(timeout=0)
    assert buf.pending == 1
    assert rec.points == []
    buf.flush()  # the server is back after three tries
    assert rec.points == [("a", 1.0, 0, 0)]
    buf.close()


def test_rejected_chunk_is_reported_at_next_flush_and_later_data_still_goes() -> None:
    rec = Recorder(failures=[NotFound("run gone")])
    buf = make(rec, batch=2)
    buf.add_many([("a", float(i), i, 0) for i in range(4)])
    with pytest.raises(NotFound) as info:
        buf.flush()
    assert info.value.details["dropped_metrics"] == 2
    assert [p[2] for p in rec.points] == [2, 3]
    buf.flush()  # reported once
    buf.close()


def test_background_error_surfaces_at_close() -> None:
    rec = Recorder(failures=[InvalidInput("bad batch")])
    buf = make(rec, interval=0.001)
    buf.add("a", 1.0, 0, 0)
    with pytest.raises(InvalidInput):
        buf.close()


def test_closed_buffer_refuses_points_and_close_is_repeatable() -> None:
    rec = Recorder()
    buf = make(rec)
    buf.add("a", 1.0, 0, 0)
    buf.close()
    with pytest.raises(InvalidInput):
        buf.add("b", 1.0, 0, 0)
    with pytest.raises(InvalidInput):
        buf.add_many([("b", 1.0, 0, 0)])
    buf.close()
    assert rec.points == [("a", 1.0, 0, 0)]


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(InvalidInput):
        MetricBuffer(Recorder(), flush_interval=1, batch_size=0)


# --- against a real server that goes away and comes back ---------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(platform: Platform, port: int) -> Iterator[None]:
    config = uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(30)


def test_server_outage_keeps_metrics_until_it_is_back(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", metric_flush_interval=0.01)  # type: ignore[call-arg]
    platform = Platform.from_settings(settings)
    port = free_port()
    client = Client(f"http://127.0.0.1:{port}", settings=settings)
    try:
        with serve(platform, port):
            run = ActiveRun.start(client, system_metrics_interval=0)
        for i in range(100):
            run.log_metric("m", float(i), step=i)
        with pytest.raises(Unavailable):
            run.flush(timeout=0.2)
        with serve(platform, port):
            run.end()
            assert client.runs.metric_history(run.id, "m").steps == list(range(100))
            assert client.runs.get(run.id).status == "finished"
    finally:
        client.close()
        platform.close()


def test_close_with_final_sends_the_last_chunk_through_it() -> None:
    rec, last = Recorder(), Recorder()
    buf = make(rec, batch=100)
    for i in range(250):
        buf.add("loss", float(i), i, 1000 + i)
    buf.close(final=last)
    assert [p[2] for p in rec.points + last.points] == list(range(250))
    assert len(last.chunks) == 1 and len(last.chunks[0]) <= 100
    # Nothing buffered: final still gets called once, with no points.
    empty = Recorder()
    make(Recorder()).close(final=empty)
    assert empty.chunks == [[]]


def test_a_final_chunk_that_cannot_be_sent_is_dropped_not_kept_forever() -> None:
    """An error other than the server's (a point the client cannot encode) would fail
    again: the chunk is dropped and said, as any other chunk is, and the buffer is
    done, so that a run's end does not retry it for ever and never set its status."""
    last = Recorder(failures=[TypeError("Integer exceeds 64-bit range")])
    buf = make(Recorder(), batch=10)
    buf.add("loss", 1.0, 0, 1)
    with pytest.raises(ShipyardError, match="64-bit") as raised:
        buf.close(final=last)
    assert raised.value.details["dropped_metrics"] == 1
    assert buf.pending == 0


def test_final_chunk_is_kept_while_the_server_is_unavailable() -> None:
    last = Recorder(failures=[Unavailable("down")] * 50)
    buf = make(Recorder(), batch=10)
    buf.add("loss", 1.0, 0, 1)
    with pytest.raises(Unavailable):
        buf.close(timeout=0.05, final=last)
    assert buf.pending == 1
    last.failures.clear()
    buf.close(final=last)
    assert last.points == [("loss", 1.0, 0, 1)] and buf.pending == 0
