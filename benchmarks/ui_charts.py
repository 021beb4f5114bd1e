"""Charts benchmark: a 1M-step metric, downsampled by the server and drawn in a browser.

    python benchmarks/ui_charts.py                       # Shipyard on SQLite, and MLflow
    python benchmarks/ui_charts.py --backend postgres    # Shipyard on PostgreSQL
    python benchmarks/ui_charts.py --steps 100000 --only shipyard   # smaller, no MLflow

What it measures, with one spike planted in the metric (a value far above the rest):

1. the series API (``GET /api/v1/runs/{id}/metrics/loss/series?points=1000``), median
   of a few calls after one warm-up, and whether the spike is in the answer;
2. in headless Chromium (``/usr/bin/chromium`` via Playwright), the time from navigating
   to the run's metrics tab until its chart is drawn (``element.dataset.drawn``), for the
   first load and the median of later ones, and whether the drawn trace holds the spike;
3. MLflow's equivalent: the UI's sampled history,
   ``/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`` with the same point budget,
   from a real ``mlflow server`` on SQLite holding the same 1M steps, and whether its
   sample keeps the spike. The steps are logged with ``MlflowClient.log_batch`` (1,000
   a call, MLflow's limit) on the SQLite store in-process before the server starts:
   through the server that costs about 1 s per call here, some 15 minutes for 1M.

Each server is a fresh process with one worker over a fresh database.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import free_port, log  # noqa: E402

from tracking import base_env, fresh_database, server  # noqa: E402

REPO = HERE.parent
VENV_BIN = REPO / ".venv" / "bin"
CHROMIUM = "/usr/bin/chromium"
POINTS = 1000
REPEATS = 5
KEY = "loss"
SPIKE_VALUE = 1000.0
T0 = 1_700_000_000_000


def spike_step(steps: int) -> int:
    """Where the spike goes: an odd place, not on any bucket edge by construction."""
    return steps * 7 // 9 + 13


def value(step: int, steps: int) -> float:
    """A noisy decaying loss, with the spike."""
    if step == spike_step(steps):
        return SPIKE_VALUE
    return 2.0 * math.exp(-step / (steps / 5)) + 0.05 * math.sin(step * 0.37)


def median_s(fn: Any, repeats: int = REPEATS) -> tuple[float, Any]:
    result = fn()  # warm-up (and the result checked)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# --- Shipyard -----------------------------------------------------------------------


def log_shipyard(url: str, steps: int, home: Path) -> tuple[str, float]:
    from shipyard.client import Client
    from shipyard.config import Settings

    client = Client(url, settings=Settings(home=home))
    run = client.runs.create("charts", name="one-million")
    start = time.perf_counter()
    batch = 100_000
    for first in range(0, steps, batch):
        points = [
            (KEY, value(s, steps), s, T0 + s) for s in range(first, min(steps, first + batch))
        ]
        client.runs.log_batch(run.id, metrics=points)
    elapsed = time.perf_counter() - start
    client.runs.end(run.id)
    client.close()
    return run.id, elapsed


def shipyard_series(url: str, run_id: str, steps: int) -> dict[str, Any]:
    path = f"{url}/api/v1/runs/{run_id}/metrics/{KEY}/series"
    with httpx.Client(timeout=120) as http:

        def call() -> dict[str, Any]:
            reply = http.get(path, params={"points": POINTS})
            reply.raise_for_status()
            return reply.json()

        seconds, body = median_s(call)
    pairs = dict(zip(body["x"], body["y"], strict=True))
    return {
        "s": seconds,
        "points": len(body["x"]),
        "total": body["total"],
        "spike": pairs.get(spike_step(steps)) == SPIKE_VALUE,
    }


def browser_draw(url: str, run_id: str, steps: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    page_url = f"{url}/runs/{run_id}?tab=metrics"
    chart = f'.chart[data-key="{KEY}"]'
    drawn = f"() => document.querySelector('{chart}')?.dataset.drawn === '1'"
    times: list[float] = []
    ready: list[float] = []
    spike = False
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        for _ in range(REPEATS + 1):
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            start = time.perf_counter()
            page.goto(page_url, wait_until="commit")
            page.wait_for_function(drawn, polling="raf", timeout=60_000)
            times.append(time.perf_counter() - start)
            # How much of it was loading and running the scripts (plotly.js is ~4.6 MB).
            ready.append(
                page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
                / 1000
            )
            data = page.evaluate(
                f"() => {{ const d = document.querySelector('{chart} .js-plotly-plot').data[0];"
                " return {x: Array.from(d.x), y: Array.from(d.y)}; }"
            )
            spike = dict(zip(data["x"], data["y"], strict=True)).get(spike_step(steps)) == (
                SPIKE_VALUE
            )
            page.close()
        browser.close()
    if errors:
        raise SystemExit(f"script errors on the page: {errors}")
    return {
        "first_s": times[0],
        "median_s": statistics.median(times[1:]),
        "scripts_s": statistics.median(ready[1:]),
        "spike": spike,
    }


def run_shipyard(backend: str, steps: int, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fresh_database(backend, "shipyard", tmp) as dbname:
        env = base_env() | {"SHIPYARD_HOME": str(tmp / "shipyard-home")}
        if dbname is not None:
            env["SHIPYARD_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}"
        cmd = [str(VENV_BIN / "shipyard"), "server", "--host", "127.0.0.1", "--port", str(port)]
        log(f"[shipyard/{backend}] server on {url}")
        with server(cmd, env, f"{url}/healthz", tmp / "shipyard-server.log"):
            run_id, log_s = log_shipyard(url, steps, tmp / "shipyard-client")
            log(f"  logged {steps:,} points in {log_s:.1f} s")
            result = shipyard_series(url, run_id, steps)
            log(f"  series API: {result['s'] * 1000:.0f} ms, {result['points']} points")
            result["draw"] = browser_draw(url, run_id, steps)
            log(f"  drawn in the browser: {result['draw']}")
            result["log_s"] = log_s
    return result


# --- MLflow ---------------------------------------------------------------------------


def run_mlflow(steps: int, tmp: Path) -> dict[str, Any]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    experiment = client.create_experiment("charts")
    run_id = client.create_run(experiment, run_name="one-million").info.run_id
    start = time.perf_counter()
    batch = 1000  # MLflow's limit of metrics per log_batch
    for first in range(0, steps, batch):
        metrics = [
            Metric(KEY, value(s, steps), T0 + s, s) for s in range(first, min(steps, first + batch))
        ]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    log_s = time.perf_counter() - start
    client.set_terminated(run_id)
    log(f"[mlflow/sqlite] logged {steps:,} points in {log_s:.1f} s (in-process store)")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(VENV_BIN / "mlflow"), "server",
        "--backend-store-uri", store,
        "--artifacts-destination", str(tmp / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log(f"[mlflow/sqlite] server on {url}")
    with server(cmd, base_env(), f"{url}/health", tmp / "mlflow-server.log"):
        path = f"{url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
        params = {"run_ids": run_id, "metric_key": KEY, "max_results": POINTS}
        with httpx.Client(timeout=300) as http:

            def call() -> list[dict[str, Any]]:
                reply = http.get(path, params=params)
                reply.raise_for_status()
                return reply.json().get("metrics", [])

            seconds, points = median_s(call)
    pairs = {m["step"]: m.get("value") for m in points}
    log(f"  get-history-bulk-interval: {seconds * 1000:.0f} ms, {len(points)} points")
    return {
        "s": seconds,
        "points": len(points),
        "spike": pairs.get(spike_step(steps)) == SPIKE_VALUE,
        "log_s": log_s,
    }


# --- report ---------------------------------------------------------------------------


def report(steps: int, backend: str, ours: dict[str, Any], theirs: dict[str, Any] | None) -> None:
    def yes(flag: bool) -> str:
        return "yes" if flag else "NO"

    rows = [
        ("", f"Shipyard ({backend})", "MLflow (sqlite)" if theirs else "", "ratio"),
        (
            f"sampled history, {steps:,} steps, {POINTS} points (median)",
            f"{ours['s'] * 1000:,.0f} ms",
            f"{theirs['s'] * 1000:,.0f} ms" if theirs else "",
            f"{theirs['s'] / ours['s']:.1f}x faster" if theirs else "",
        ),
        (
            "  points returned",
            f"{ours['points']:,}",
            f"{theirs['points']:,}" if theirs else "",
            "",
        ),
        ("  spike kept", yes(ours["spike"]), yes(theirs["spike"]) if theirs else "", ""),
        (
            "metrics tab: navigation to chart drawn, first load",
            f"{ours['draw']['first_s'] * 1000:,.0f} ms",
            "",
            "",
        ),
        (
            "  same, later loads (median)",
            f"{ours['draw']['median_s'] * 1000:,.0f} ms",
            "",
            "",
        ),
        (
            "    of which page + scripts ready (DOMContentLoaded)",
            f"{ours['draw']['scripts_s'] * 1000:,.0f} ms",
            "",
            "",
        ),
        ("  spike in the drawn trace", yes(ours["draw"]["spike"]), "", ""),
        (
            f"logging {steps:,} points (setup; MLflow in-process)",
            f"{ours['log_s']:.1f} s",
            f"{theirs['log_s']:.1f} s" if theirs else "",
            "",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--only", choices=("shipyard", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-charts-") as tmp:
        ours = run_shipyard(args.backend, args.steps, Path(tmp))
        theirs = run_mlflow(args.steps, Path(tmp)) if args.only == "both" else None
    report(args.steps, args.backend, ours, theirs)


if __name__ == "__main__":
    main()
