"""MLflow compatibility benchmark: the same mlflow client script against a real
``mlflow server`` and against ``shipyard server``, both on SQLite, in one run.

    python benchmarks/mlflow_compat.py              # full sizes
    python benchmarks/mlflow_compat.py --quick      # smoke run with small sizes
    python benchmarks/mlflow_compat.py --rounds 2   # A B, then B A: medians of the rounds

The client is the unchanged ``mlflow`` package (benchmarks/.venv-mlflow, created on
first use) running benchmarks/_mlflow_workload.py: per-call log_metric, log_batch,
runs created then search_runs, a long metric history, an artifact up and down.
Only the tracking URI differs. Target: every figure at least 3x better on Shipyard.

With ``--rounds N`` both servers run N times, the one that goes first alternating, and
the table shows each figure's median over the rounds, then each round's ratios: on a
VM whose speed drifts within minutes, a single pass can favour whichever ran in the
faster minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROWS, Results, Sizes, free_port, log, ratio  # noqa: E402

from tracking import (  # noqa: E402
    MLFLOW_VENV,
    SHIPYARD_VENV,
    base_env,
    ensure_mlflow_venv,
    machine,
    server,
    versions,
)

TARGET = 3.0
SERVERS = ("mlflow", "shipyard")


def run_client(url: str, sizes: Sizes, tmp: Path, label: str) -> Results:
    """The mlflow client workload against ``url``; its measurements."""
    out = tmp / f"{label}-results.json"
    args = [str(ensure_mlflow_venv()), str(HERE / "_mlflow_workload.py"), "--url", url]
    args += ["--sizes", sizes.to_json(), "--out", str(out)]
    subprocess.run(args, env=base_env(), check=True, cwd=tmp)
    return Results.load(out)


def against_mlflow(sizes: Sizes, tmp: Path) -> Results:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(MLFLOW_VENV / "bin" / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
        "--artifacts-destination", str(tmp / "mlartifacts"),
        "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    log(f"[mlflow server] {url}")
    with server(cmd, base_env(), f"{url}/health", tmp / "mlflow-server.log"):
        return run_client(url, sizes, tmp, "mlflow")


def against_shipyard(sizes: Sizes, tmp: Path) -> Results:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = base_env() | {"SHIPYARD_HOME": str(tmp / "shipyard-home")}
    cmd = [str(SHIPYARD_VENV / "bin" / "shipyard"), "server"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log(f"[shipyard server] {url}")
    with server(cmd, env, f"{url}/healthz", tmp / "shipyard-server.log"):
        return run_client(url, sizes, tmp, "shipyard")


def median_results(rounds: list[Results]) -> Results:
    """Each figure's median over the rounds (those every round measured)."""
    keys = set.intersection(*(set(r.values) for r in rounds))
    return Results(values={k: statistics.median(r.values[k] for r in rounds) for k in keys})


def render_rounds(rounds: dict[str, list[Results]]) -> str:
    """Each workload's ratio in each round, in the order the rounds ran."""
    count = len(rounds["mlflow"])
    head = " | ".join(
        f"round {i + 1} ({'mlflow first' if i % 2 == 0 else 'shipyard first'})"
        for i in range(count)
    )
    lines = [f"| workload | {head} |", "|---|" + "---:|" * count]
    for row in ROWS:
        key = row.mlflow_key
        cells = []
        for mlflow, shipyard in zip(rounds["mlflow"], rounds["shipyard"], strict=True):
            mine, theirs = shipyard.values.get(key or ""), mlflow.values.get(key or "")
            r = ratio(row, theirs, mine)
            cells.append("—" if r is None else f"{r:.1f}x")
        if any(c != "—" for c in cells):
            lines.append(f"| {row.label.strip()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(by_server: dict[str, Results]) -> str:
    """Both servers' figures for each workload, the ratio and whether it meets 3x."""
    mlflow, shipyard = by_server["mlflow"].values, by_server["shipyard"].values
    lines = [
        "| workload (mlflow client) | unit | mlflow server | shipyard server | ratio | met |",
        "|---|---|---:|---:|---:|:-:|",
    ]
    for row in ROWS:
        key = row.mlflow_key
        if key is None or key not in mlflow or key not in shipyard:
            continue
        r = ratio(row, mlflow[key], shipyard[key])
        met = "" if r is None else ("yes" if r >= TARGET else "**no**")
        ratio_text = "—" if r is None else f"{r:.1f}x"
        lines.append(
            f"| {row.label.strip()} | {row.unit} | {mlflow[key]:,.4g} | {shipyard[key]:,.4g}"
            f" | {ratio_text} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes for a smoke run.")
    parser.add_argument(
        "--rounds", type=int, default=1, help="Run both servers this many times, alternating."
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = Sizes.quick() if args.quick else Sizes()
    ensure_mlflow_venv()
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runners = {"mlflow": against_mlflow, "shipyard": against_shipyard}
    rounds: dict[str, list[Results]] = {name: [] for name in SERVERS}
    for i in range(args.rounds):
        for name in SERVERS if i % 2 == 0 else SERVERS[::-1]:
            log(f"[round {i + 1} of {args.rounds}]")
            with tempfile.TemporaryDirectory(prefix=f"bench-compat-{name}-") as tmp:
                rounds[name].append(runners[name](sizes, Path(tmp)))
    results = {name: median_results(runs) for name, runs in rounds.items()}
    meta = {
        "command": "python benchmarks/mlflow_compat.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(["sqlite"]),
        "total_seconds": round(time.perf_counter() - started),
        "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    print(f"Command: `{meta['command']}`")
    print(f"Date: {meta['date']}; machine: {meta['machine']}")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    print(f"Total time: {meta['total_seconds']} s; load average: {meta['load_average']}\n")
    if args.rounds > 1:
        print(f"Medians of {args.rounds} rounds:\n")
    print(render(results))
    if args.rounds > 1:
        print("\nRatios by round:\n")
        print(render_rounds(rounds))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    dump = {
        "meta": meta | {"rounds": args.rounds},
        "results": {k: v.values for k, v in results.items()},
        "rounds": {k: [r.values for r in runs] for k, runs in rounds.items()},
    }
    path = out_dir / f"mlflow-compat-{stamp}.json"
    path.write_text(json.dumps(dump, indent=2))
    log(f"raw results: {path}")


if __name__ == "__main__":
    main()
