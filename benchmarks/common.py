"""Shared helpers of the benchmarks: timing, sizes, results and the report table.

Standard library only: this module is imported both by the harness and by the
workload scripts, which run inside each tool's own virtual environment (MLflow
has its own venv so its dependencies never mix with ours).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

FILTER = "metrics.m0 > 0.5 and params.p0 = 'v1'"
ORDER_BY = ["metrics.m1 DESC"]
PARAM_VALUES = ("v0", "v1", "v2", "v3", "v4")
MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does (the same for both tools)."""

    log_metric_calls: int = 2_000
    batch_metrics: int = 100_000
    batch_size: int = 1_000
    runs: int = 2_000
    runs_large: int = 10_000
    search_repeats: int = 7
    history_repeats: int = 3
    artifact_mb: int = 50
    artifact_repeats: int = 3
    big_artifact_mb: int = 2_048

    @classmethod
    def quick(cls) -> Sizes:
        """Small sizes for a smoke run (a minute or two in all)."""
        return cls(
            log_metric_calls=200,
            batch_metrics=10_000,
            runs=200,
            runs_large=1_000,
            search_repeats=3,
            history_repeats=2,
            artifact_mb=5,
            artifact_repeats=2,
            big_artifact_mb=64,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Sizes:
        return cls(**json.loads(text))


@dataclass
class Results:
    """What one workload script measured: name -> value, plus free-form notes."""

    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, value: float) -> None:
        self.values[name] = value
        log(f"  {name} = {value:,.3f}")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"values": self.values, "notes": self.notes}, indent=2))

    @classmethod
    def load(cls, path: Path) -> Results:
        data = json.loads(path.read_text())
        return cls(values=data["values"], notes=data["notes"])


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays free for the report."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def stopwatch(label: str) -> Iterator[list[float]]:
    """Time a block; the elapsed seconds land in the yielded one-item list."""
    log(f"  {label} ...")
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``fn`` in seconds, after ``warmup`` untimed calls; and its result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_values(i: int) -> tuple[dict[str, str], dict[str, float]]:
    """Deterministic params and metrics of the i-th generated run (same for both tools)."""
    # A multiplicative hash keeps the values spread without a shared RNG state.
    params = {f"p{k}": PARAM_VALUES[(i * 7 + k * 3) % 5] for k in range(5)}
    metrics = {f"m{k}": ((i * 2654435761 + k * 40503) % 10_007) / 10_007 for k in range(5)}
    return params, metrics


def expected_filtered(n_runs: int) -> int:
    """How many of the first ``n_runs`` generated runs match ``FILTER``."""
    count = 0
    for i in range(n_runs):
        params, metrics = run_values(i)
        if metrics["m0"] > 0.5 and params["p0"] == "v1":
            count += 1
    return count


def write_random_file(path: Path, size_mb: int) -> None:
    """A file of ``size_mb`` MiB of incompressible bytes, written in 8 MiB pieces."""
    chunk = os.urandom(8 * MB)
    with path.open("wb") as out:
        left = size_mb * MB
        while left > 0:
            piece = chunk[: min(left, len(chunk))]
            out.write(piece)
            left -= len(piece)


def timed_transfers(
    upload: Callable[[Path, str], None],
    download: Callable[[str, str, Path], Path],
    size_mb: int,
    repeats: int,
    tmp: Path,
) -> tuple[float, float]:
    """Median seconds of ``repeats`` uploads and downloads of a ``size_mb`` MiB file.

    ``upload(path, folder)`` stores the file under ``folder``; ``download(folder, name,
    dest)`` fetches it into ``dest`` and returns the local path. A 1 MiB file goes up and
    down once first, untimed: a client loads its transfer code on first use, a cost that
    either server would be charged for. Each repeat sends a file of new bytes (nothing
    for a content-addressed store to deduplicate) under a folder of its own."""
    tmp = Path(tempfile.mkdtemp(prefix="transfers-", dir=tmp))
    warm = tmp / "warm.bin"
    write_random_file(warm, 1)
    upload(warm, "warm")
    (tmp / "warm-down").mkdir()
    download("warm", warm.name, tmp / "warm-down").unlink()
    ups, downs = [], []
    for i in range(repeats):
        source = tmp / f"blob{i}.bin"
        write_random_file(source, size_mb)
        with stopwatch(f"upload {size_mb:,} MB ({i + 1} of {repeats})") as up:
            upload(source, f"r{i}")
        dest = tmp / f"down{i}"
        dest.mkdir()
        with stopwatch(f"download {size_mb:,} MB ({i + 1} of {repeats})") as down:
            got = download(f"r{i}", source.name, dest)
        check(got.stat().st_size == size_mb * MB, "downloaded artifact size")
        source.unlink()
        got.unlink()
        ups.append(up[0])
        downs.append(down[0])
    return statistics.median(ups), statistics.median(downs)


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check(condition: bool, message: str) -> None:
    """Fail the workload loudly: a benchmark that stored the wrong thing measures nothing."""
    if not condition:
        raise SystemExit(f"benchmark check failed: {message}")


class Row(NamedTuple):
    """One line of the report: which figure of each tool, and how to compare them."""

    label: str
    mlflow_key: str | None
    shipyard_key: str
    unit: str
    higher_is_better: bool
    target: float | None
    limit: float | None = None  # an absolute bound as well (latency rows: at most this)


ROWS = (
    Row("log_metric x2,000, until stored", "log_metric.rate", "log_metric.rate",
        "metrics/s", True, 100),
    Row("  same, vs MLflow synchronous=False", "log_metric_async.rate", "log_metric.rate",
        "metrics/s", True, None),
    Row("  p50 per log_metric call", "log_metric.p50_ms", "log_metric.p50_ms",
        "ms", False, None),
    Row("  p50, vs MLflow synchronous=False", "log_metric_async.p50_ms", "log_metric.p50_ms",
        "ms", False, None),
    Row("log_batch, 100k metrics in 1,000s", "batch.rate", "batch.rate", "metrics/s", True, 20),
    Row("create runs (5 params + 5 metrics)", "create_runs.rate", "create_runs.rate",
        "runs/s", True, 20),
    Row("search, filter + order, small", "search_filtered_small.ms", "search_filtered_small.ms",
        "ms", False, 20),
    Row("search, filter + order, large", "search_filtered_large.ms", "search_filtered_large.ms",
        "ms", False, 20, limit=50),
    Row("search, no filter, top 1,000", "search_unfiltered.ms", "search_unfiltered.ms",
        "ms", False, 10),
    Row("metric history, 100k steps", "history.s", "history.s", "s", False, 20),
    Row("artifact upload", "artifact_up.mbps", "artifact_up.mbps", "MB/s", True, 1),
    Row("artifact download", "artifact_down.mbps", "artifact_down.mbps", "MB/s", True, 1),
    Row("big artifact upload", None, "big_up.mbps", "MB/s", True, None),
    Row("big artifact download", None, "big_down.mbps", "MB/s", True, None),
    Row("  client peak RSS (big artifact)", None, "big_client_rss.mb", "MB", False, None),
    Row("  server peak RSS (big artifact)", None, "big_server_rss.mb", "MB", False, None),
)  # fmt: skip


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def ratio(row: Row, mlflow: float | None, shipyard: float | None) -> float | None:
    """How many times better Shipyard is (above 1: Shipyard wins)."""
    if mlflow is None or shipyard is None or mlflow <= 0 or shipyard <= 0:
        return None
    return shipyard / mlflow if row.higher_is_better else mlflow / shipyard


def render_table(by_tool: dict[str, Results], sizes: Sizes) -> str:
    """A Markdown table of one backend: both figures, the ratio and the target."""
    labels = {
        "search, filter + order, small": f"search, filter + order, {sizes.runs:,} runs",
        "search, filter + order, large": f"search, filter + order, {sizes.runs_large:,} runs",
        "log_metric x2,000, until stored": f"log_metric x{sizes.log_metric_calls:,}, until stored",
        "log_batch, 100k metrics in 1,000s": (
            f"log_batch, {sizes.batch_metrics:,} metrics in {sizes.batch_size:,}s"
        ),
        "metric history, 100k steps": f"metric history, {sizes.batch_metrics:,} steps",
        "artifact upload": f"artifact upload, {sizes.artifact_mb} MB",
        "artifact download": f"artifact download, {sizes.artifact_mb} MB",
        "big artifact upload": f"artifact upload, {sizes.big_artifact_mb:,} MB",
        "big artifact download": f"artifact download, {sizes.big_artifact_mb:,} MB",
    }
    mlflow = by_tool.get("mlflow", Results()).values
    shipyard = by_tool.get("shipyard", Results()).values
    lines = [
        "| workload | unit | MLflow | Shipyard | ratio | target | met |",
        "|---|---|---:|---:|---:|---:|:-:|",
    ]
    for row in ROWS:
        m = mlflow.get(row.mlflow_key) if row.mlflow_key else None
        s = shipyard.get(row.shipyard_key)
        if s is None and m is None:
            continue
        if m is None and row.mlflow_key not in (None, row.shipyard_key):
            continue  # a second comparison against an MLflow figure we do not have
        r = ratio(row, m, s)
        target = f">= {row.target:g}x" if row.target else ""
        checks = [] if row.target is None or r is None else [r >= row.target]
        if row.limit is not None:
            target += f"; < {row.limit:g} {row.unit}"
            if s is not None:
                checks.append(s < row.limit)
        met = "" if not checks else ("yes" if all(checks) else "**no**")
        ratio_text = "—" if r is None else f"{r:.1f}x" if r < 100 else f"{r:,.0f}x"
        label = labels.get(row.label, row.label)
        lines.append(
            f"| {label} | {row.unit} | {fmt(m)} | {fmt(s)} | {ratio_text} | {target} | {met} |"
        )
    return "\n".join(lines)


def render_report(results: dict[str, dict[str, Results]], meta: dict, sizes: Sizes) -> str:
    """The whole report: context, then one table per backend, then the tools' notes."""
    out = [
        f"Command: `{meta['command']}`",
        f"Date: {meta['date']}; machine: {meta['machine']}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"Total time: {meta['total_seconds']} s; load average (1 min): {meta['load_average']}",
        "",
    ]
    for backend, by_tool in results.items():
        out += [f"### {backend}", "", render_table(by_tool, sizes), ""]
        for tool, got in by_tool.items():
            out += [f"- {tool}: {note}" for note in got.notes]
        out.append("")
    return "\n".join(out)
