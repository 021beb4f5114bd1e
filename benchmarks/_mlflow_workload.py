"""The tracking workloads, MLflow side. Runs inside benchmarks/.venv-mlflow.

Started by benchmarks/tracking.py against a fresh ``mlflow server``; writes what
it measured as JSON to ``--out``. Each workload is the fastest correct way we
know to do the job with MLflow's public client API, and each one checks that
the server stored what was sent.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
from common import (
    FILTER,
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
from mlflow import MlflowClient
from mlflow.entities import Metric, Param


def log_metric_loop(results: Results, n: int, *, synchronous: bool, prefix: str) -> None:
    """n x mlflow.log_metric in an active run; stops once end_run returns (all stored)."""
    mlflow.set_experiment(f"bench-{prefix}")
    run = mlflow.start_run()
    calls: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        mlflow.log_metric("loss", i * 0.001, step=i, synchronous=synchronous)
        calls.append(time.perf_counter() - t)
    if not synchronous:
        mlflow.flush_async_logging()
    mlflow.end_run()
    elapsed = time.perf_counter() - start
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    check(len(history) == n, f"{prefix}: {len(history)} of {n} metrics stored")
    results.put(f"{prefix}.rate", n / elapsed)
    results.put(f"{prefix}.p50_ms", percentile(calls, 0.5) * 1000)


def log_batches(client: MlflowClient, results: Results, sizes: Sizes) -> str:
    """100k steps of one metric in batches of 1,000 (MLflow's per-request limit)."""
    exp_id = client.create_experiment("bench-batches")
    run_id = client.create_run(exp_id).info.run_id
    ts = int(time.time() * 1000)
    with stopwatch(f"log_batch {sizes.batch_metrics:,} metrics") as took:
        for first in range(0, sizes.batch_metrics, sizes.batch_size):
            metrics = [
                Metric("loss", step * 0.5, ts + step, step)
                for step in range(first, min(first + sizes.batch_size, sizes.batch_metrics))
            ]
            client.log_batch(run_id, metrics=metrics)
    results.put("batch.rate", sizes.batch_metrics / took[0])
    return run_id


def metric_history(client: MlflowClient, results: Results, sizes: Sizes, run_id: str) -> None:
    seconds, history = median_time(
        lambda: client.get_metric_history(run_id, "loss"), sizes.history_repeats
    )
    check(len(history) == sizes.batch_metrics, f"history has {len(history)} points")
    results.put("history.s", seconds)


def create_one_run(client: MlflowClient, exp_id: str, i: int, ts: int) -> None:
    params, metrics = run_values(i)
    run_id = client.create_run(exp_id, run_name=f"run-{i}").info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
    )
    client.set_terminated(run_id)


def create_runs(client: MlflowClient, results: Results, sizes: Sizes) -> str:
    """create_run + one log_batch(params, metrics) + set_terminated per run."""
    exp_id = client.create_experiment("bench-runs")
    ts = int(time.time() * 1000)
    with stopwatch(f"create {sizes.runs:,} runs") as took:
        for i in range(sizes.runs):
            create_one_run(client, exp_id, i, ts)
    results.put("create_runs.rate", sizes.runs / took[0])
    return exp_id


def grow_runs(client: MlflowClient, exp_id: str, start: int, stop: int) -> None:
    """More runs for the large search, from 4 threads (the server has one worker process)."""
    ts = int(time.time() * 1000)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: create_one_run(client, exp_id, i, ts), range(start, stop)))


def searches(
    client: MlflowClient, results: Results, exp_id: str, n_runs: int, label: str, repeats: int
) -> None:
    def filtered() -> list:
        return client.search_runs(
            [exp_id], filter_string=FILTER, order_by=ORDER_BY, max_results=1000
        )

    seconds, runs = median_time(filtered, repeats)
    want = min(1000, expected_filtered(n_runs))
    check(len(runs) == want, f"filtered search found {len(runs)} runs, expected {want}")
    values = [r.data.metrics["m1"] for r in runs]
    check(values == sorted(values, reverse=True), "filtered search is not ordered by m1 desc")
    results.put(f"search_filtered_{label}.ms", seconds * 1000)
    if label == "small":
        seconds, runs = median_time(lambda: client.search_runs([exp_id], max_results=1000), repeats)
        check(len(runs) == min(1000, n_runs), f"unfiltered search found {len(runs)} runs")
        results.put("search_unfiltered.ms", seconds * 1000)


def artifacts(client: MlflowClient, results: Results, sizes: Sizes, tmp: Path) -> None:
    """log_artifact up and download_artifacts down, both through the server's proxy."""
    exp_id = client.create_experiment("bench-artifacts")
    run_id = client.create_run(exp_id).info.run_id

    def download(folder: str, name: str, dest: Path) -> Path:
        return Path(client.download_artifacts(run_id, f"{folder}/{name}", str(dest)))

    up, down = timed_transfers(
        lambda path, folder: client.log_artifact(run_id, str(path), folder),
        download,
        sizes.artifact_mb,
        sizes.artifact_repeats,
        tmp,
    )
    results.put("artifact_up.mbps", sizes.artifact_mb / up)
    results.put("artifact_down.mbps", sizes.artifact_mb / down)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sizes", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--large-search", action="store_true")
    args = parser.parse_args()
    sizes = Sizes.from_json(args.sizes)
    results = Results()
    results.notes.append(f"mlflow {mlflow.__version__}")
    mlflow.set_tracking_uri(args.url)
    client = MlflowClient(args.url)

    log(f"[mlflow] {sizes.log_metric_calls:,} x log_metric (synchronous)")
    log_metric_loop(results, sizes.log_metric_calls, synchronous=True, prefix="log_metric")
    log(f"[mlflow] {sizes.log_metric_calls:,} x log_metric (synchronous=False)")
    log_metric_loop(results, sizes.log_metric_calls, synchronous=False, prefix="log_metric_async")
    log("[mlflow] batches and history")
    run_id = log_batches(client, results, sizes)
    metric_history(client, results, sizes, run_id)
    log("[mlflow] runs and search")
    exp_id = create_runs(client, results, sizes)
    searches(client, results, exp_id, sizes.runs, "small", sizes.search_repeats)
    if args.large_search:
        with stopwatch(f"grow to {sizes.runs_large:,} runs"):
            grow_runs(client, exp_id, sizes.runs, sizes.runs_large)
        searches(client, results, exp_id, sizes.runs_large, "large", sizes.search_repeats)
    log("[mlflow] artifacts")
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        artifacts(client, results, sizes, Path(tmp))
    results.save(args.out)


if __name__ == "__main__":
    main()
