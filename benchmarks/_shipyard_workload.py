"""The tracking workloads, Shipyard side. Runs inside the repository's .venv.

Started by benchmarks/tracking.py against a fresh ``shipyard server``; writes
what it measured as JSON to ``--out``. Same work as _mlflow_workload.py, done
the fastest correct way with Shipyard's SDK, and checked the same way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil
from common import (
    FILTER,
    MB,
    ORDER_BY,
    Results,
    Sizes,
    check,
    expected_filtered,
    log,
    median_time,
    percentile,
    run_values,
    stopwatch,
    timed_transfers,
)

import shipyard
from shipyard.client.client import Client


def log_metric_loop(client: Client, results: Results, n: int) -> None:
    """n x shipyard.log_metric in a run; stops when the ``with`` block exits (flushed)."""
    shipyard.set_experiment("bench-log-metric")
    calls: list[float] = []
    with shipyard.start_run() as run:
        run_id = run.id
        start = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            shipyard.log_metric("loss", i * 0.001, step=i)
            calls.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    history = client.runs.metric_history(run_id, "loss")
    check(len(history.steps) == n, f"log_metric: {len(history.steps)} of {n} metrics stored")
    results.put("log_metric.rate", n / elapsed)
    results.put("log_metric.p50_ms", percentile(calls, 0.5) * 1000)


def log_batches(client: Client, results: Results, sizes: Sizes) -> str:
    """100k steps of one metric in batches of 1,000 (the same batches MLflow gets)."""
    run_id = client.runs.create("bench-batches").id
    ts = int(time.time() * 1000)
    with stopwatch(f"log_batch {sizes.batch_metrics:,} metrics") as took:
        for first in range(0, sizes.batch_metrics, sizes.batch_size):
            metrics = [
                ("loss", step * 0.5, step, ts + step)
                for step in range(first, min(first + sizes.batch_size, sizes.batch_metrics))
            ]
            client.runs.log_batch(run_id, metrics=metrics)
    results.put("batch.rate", sizes.batch_metrics / took[0])
    return run_id


def metric_history(client: Client, results: Results, sizes: Sizes, run_id: str) -> None:
    seconds, history = median_time(
        lambda: client.runs.metric_history(run_id, "loss"), sizes.history_repeats
    )
    check(len(history.steps) == sizes.batch_metrics, f"history has {len(history.steps)} points")
    results.put("history.s", seconds)


def run_records(start: int, stop: int, ts: int) -> list[dict]:
    """The generated runs ``start..stop`` as whole, finished runs."""
    records = []
    for i in range(start, stop):
        params, metrics = run_values(i)
        records.append(
            {
                "name": f"run-{i}",
                "params": params,
                "metrics": [(k, v, 0, ts) for k, v in metrics.items()],
                "status": "finished",
            }
        )
    return records


def create_runs(client: Client, results: Results, sizes: Sizes) -> int:
    """Whole runs (params, metrics, finished) with runs.create_many: one request per 1,000."""
    exp_id = client.experiments.create("bench-runs").id
    ts = int(time.time() * 1000)
    with stopwatch(f"create {sizes.runs:,} runs") as took:
        ids = client.runs.create_many(exp_id, run_records(0, sizes.runs, ts))
    check(len(set(ids)) == sizes.runs, f"create_many made {len(set(ids))} runs")
    results.put("create_runs.rate", sizes.runs / took[0])
    return exp_id


def grow_runs(client: Client, exp_id: int, start: int, stop: int) -> None:
    """More runs for the large search."""
    client.runs.create_many(exp_id, run_records(start, stop, int(time.time() * 1000)))


def searches(
    client: Client, results: Results, exp_id: int, n_runs: int, label: str, repeats: int
) -> None:
    def filtered() -> list:
        page = client.runs.search([exp_id], filter=FILTER, order_by=ORDER_BY, max_results=1000)
        return page.runs

    seconds, runs = median_time(filtered, repeats)
    want = min(1000, expected_filtered(n_runs))
    check(len(runs) == want, f"filtered search found {len(runs)} runs, expected {want}")
    values = [r.metrics["m1"] for r in runs]
    check(values == sorted(values, reverse=True), "filtered search is not ordered by m1 desc")
    results.put(f"search_filtered_{label}.ms", seconds * 1000)
    if label == "small":
        seconds, runs = median_time(
            lambda: client.runs.search([exp_id], max_results=1000).runs, repeats
        )
        check(len(runs) == min(1000, n_runs), f"unfiltered search found {len(runs)} runs")
        results.put("search_unfiltered.ms", seconds * 1000)


def artifacts(
    client: Client, results: Results, size_mb: int, repeats: int, tmp: Path, prefix: str
) -> None:
    """upload_file up and download down, through the server."""
    run_id = client.runs.create("bench-artifacts").id

    def download(folder: str, name: str, dest: Path) -> Path:
        return Path(client.artifacts.download(run_id, f"{folder}/{name}", dest))

    up, down = timed_transfers(
        lambda path, folder: client.artifacts.upload_file(run_id, path, folder),
        download,
        size_mb,
        repeats,
        tmp,
    )
    results.put(f"{prefix}_up.mbps", size_mb / up)
    results.put(f"{prefix}_down.mbps", size_mb / down)


class PeakRss:
    """Samples the resident memory of some processes from a thread; keeps the peaks."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peaks = {name: 0 for name in pids}
        self.start = {name: proc.memory_info().rss for name, proc in self._procs.items()}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, proc in self._procs.items():
                self.peaks[name] = max(self.peaks[name], proc.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def big_artifact(
    client: Client, results: Results, sizes: Sizes, tmp: Path, server_pid: int
) -> None:
    with PeakRss({"client": os.getpid(), "server": server_pid}) as rss:
        artifacts(client, results, sizes.big_artifact_mb, 1, tmp, "big")
    for name in ("client", "server"):
        results.put(f"big_{name}_rss.mb", rss.peaks[name] / MB)
        results.notes.append(
            f"{name} RSS before the {sizes.big_artifact_mb:,} MB artifact: "
            f"{rss.start[name] / MB:.0f} MB, peak during: {rss.peaks[name] / MB:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--big", action="store_true")
    args = parser.parse_args()
    sizes = Sizes.from_json(args.sizes)
    results = Results()
    results.notes.append(f"shipyard {shipyard.__version__}")
    client = Client(args.url)

    log(f"[shipyard] {sizes.log_metric_calls:,} x log_metric")
    log_metric_loop(client, results, sizes.log_metric_calls)
    log("[shipyard] batches and history")
    run_id = log_batches(client, results, sizes)
    metric_history(client, results, sizes, run_id)
    log("[shipyard] runs and search")
    exp_id = create_runs(client, results, sizes)
    searches(client, results, exp_id, sizes.runs, "small", sizes.search_repeats)
    with stopwatch(f"grow to {sizes.runs_large:,} runs"):
        grow_runs(client, exp_id, sizes.runs, sizes.runs_large)
    searches(client, results, exp_id, sizes.runs_large, "large", sizes.search_repeats)
    log("[shipyard] artifacts")
    with tempfile.TemporaryDirectory(prefix="bench-shipyard-") as tmp:
        artifacts(client, results, sizes.artifact_mb, sizes.artifact_repeats, Path(tmp), "artifact")
        if args.big:
            big_artifact(client, results, sizes, Path(tmp), args.server_pid)
    results.save(args.out)


if __name__ == "__main__":
    main()
