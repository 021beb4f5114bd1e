"""Tracking benchmark: Shipyard vs MLflow 3, side by side, client to server over HTTP.

    python benchmarks/tracking.py                  # both tools, SQLite and PostgreSQL
    python benchmarks/tracking.py --quick          # smoke run with small sizes
    python benchmarks/tracking.py --backend sqlite --only shipyard --big

Each tool gets a fresh server (one worker process) over a fresh database per
backend; its workload script runs in the tool's own virtual environment
(MLflow's is created in benchmarks/.venv-mlflow on first use). The report is a
table per backend with both figures, the ratio and the target; the raw numbers
are saved in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROWS, Results, Sizes, free_port, log, render_report  # noqa: E402

REPO = HERE.parent
SHIPYARD_VENV = REPO / ".venv"
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_REQUIREMENTS = ["mlflow>=3,<4", "psycopg2-binary"]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOOLS = ("mlflow", "shipyard")

# Neither tool may phone home or slow down on retries during a measurement.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "PYTHONUNBUFFERED": "1",
}


def ensure_mlflow_venv() -> Path:
    """MLflow's own virtual environment, created (with pip's progress shown) if missing."""
    python = MLFLOW_VENV / "bin" / "python"
    if (MLFLOW_VENV / "bin" / "mlflow").exists():
        return python
    log(f"creating {MLFLOW_VENV.relative_to(REPO)} and installing {' '.join(MLFLOW_REQUIREMENTS)}")
    log("(first run only; this takes a few minutes)")
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--progress-bar", "on", *MLFLOW_REQUIREMENTS],
        check=True,
    )
    return python


def shipyard_python() -> Path:
    python = SHIPYARD_VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no Shipyard venv at {SHIPYARD_VENV}: create it and `pip install -e .`")
    return python


def pg_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server (with our venv's psycopg, autocommit)."""
    code = (
        "import sys, psycopg\n"
        "with psycopg.connect(sys.argv[1], autocommit=True) as c: c.execute(sys.argv[2])\n"
    )
    subprocess.run([str(shipyard_python()), "-c", code, PG_ADMIN, sql], check=True)


@contextmanager
def fresh_database(backend: str, tool: str, tmp: Path) -> Iterator[str | None]:
    """A new, empty PostgreSQL database (dropped afterwards), or None for SQLite."""
    if backend == "sqlite":
        yield None
        return
    name = f"bench_{tool}_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    # Each tool starts on a server with no dirty pages left by the tool before it (its
    # run and its dropped database), so neither pays for the other's writes.
    pg_admin("CHECKPOINT")
    try:
        yield name
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(
    cmd: list[str], env: dict[str, str], health_url: str, logfile: Path
) -> Iterator[subprocess.Popen]:
    """Start a server in its own process group, wait until it answers, stop it afterwards."""
    with logfile.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited: {cmd}\n{logfile.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(health_url, timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {cmd}\n{logfile.read_text()[-3000:]}")
                time.sleep(0.3)
            yield proc
        finally:
            # The whole group: mlflow server runs its worker as a child process.
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env.update(QUIET_ENV)
    return env


def run_mlflow(backend: str, sizes: Sizes, tmp: Path, large_search: bool) -> Results:
    python = ensure_mlflow_venv()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fresh_database(backend, "mlflow", tmp) as dbname:
        store = (
            f"sqlite:///{tmp / 'mlflow.db'}"
            if dbname is None
            else f"postgresql+psycopg2://postgres@127.0.0.1:5432/{dbname}"
        )
        cmd = [
            str(MLFLOW_VENV / "bin" / "mlflow"), "server",
            "--backend-store-uri", store,
            "--artifacts-destination", str(tmp / "mlartifacts"),
            "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",
        ]  # fmt: skip
        log(f"[mlflow/{backend}] starting server on {url} over {store}")
        with server(cmd, base_env(), f"{url}/health", tmp / "mlflow-server.log"):
            out = tmp / "mlflow-results.json"
            args = [str(python), str(HERE / "_mlflow_workload.py"), "--url", url]
            args += ["--sizes", sizes.to_json(), "--out", str(out)]
            if large_search:
                args.append("--large-search")
            subprocess.run(args, env=base_env(), check=True, cwd=tmp)
    return Results.load(out)


def run_shipyard(backend: str, sizes: Sizes, tmp: Path, big: bool) -> Results:
    python = shipyard_python()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with fresh_database(backend, "shipyard", tmp) as dbname:
        env = base_env() | {"SHIPYARD_HOME": str(tmp / "shipyard-home")}
        if dbname is not None:
            env["SHIPYARD_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}"
        cmd = [str(SHIPYARD_VENV / "bin" / "shipyard"), "server"]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        log(f"[shipyard/{backend}] starting server on {url}")
        with server(cmd, env, f"{url}/healthz", tmp / "shipyard-server.log") as proc:
            out = tmp / "shipyard-results.json"
            client_env = base_env() | {
                "SHIPYARD_URL": url,
                "SHIPYARD_HOME": str(tmp / "shipyard-client"),
            }
            args = [str(python), str(HERE / "_shipyard_workload.py"), "--url", url]
            args += ["--sizes", sizes.to_json(), "--out", str(out)]
            args += ["--server-pid", str(proc.pid)]
            if big:
                args.append("--big")
            subprocess.run(args, env=client_env, check=True, cwd=tmp)
    return Results.load(out)


def versions(backends: list[str]) -> dict[str, str]:
    """Versions of everything that shapes the numbers."""
    found = {"python": platform.python_version()}
    for tool, python in (("shipyard", SHIPYARD_VENV), ("mlflow", MLFLOW_VENV)):
        exe = python / "bin" / "python"
        if exe.exists():
            code = f"import importlib.metadata as m; print(m.version({tool!r}))"
            reply = subprocess.run([str(exe), "-c", code], capture_output=True, text=True)
            found[tool] = reply.stdout.strip() or "?"
    code = "import sqlite3; print(sqlite3.sqlite_version)"
    found["sqlite"] = subprocess.run(
        [str(shipyard_python()), "-c", code], capture_output=True, text=True
    ).stdout.strip()
    if "postgres" in backends:
        code = (
            "import sys, psycopg\n"
            "with psycopg.connect(sys.argv[1]) as c:\n"
            "    print(c.execute('show server_version').fetchone()[0])\n"
        )
        found["postgresql"] = subprocess.run(
            [str(shipyard_python()), "-c", code, PG_ADMIN], capture_output=True, text=True
        ).stdout.strip()
    return found


def machine() -> str:
    cores = os.cpu_count()
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(meminfo.readline().split()[1])
        mem = f"{kb / 1024**2:.0f} GiB"
    except OSError:
        mem = "? GiB"
    return f"{cores} cores, {mem} RAM, {platform.system()} {platform.machine()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--only", choices=TOOLS, help="Run one tool only.")
    parser.add_argument("--quick", action="store_true", help="Small sizes for a smoke run.")
    parser.add_argument(
        "--big", action="store_true", help="Shipyard only: a 2 GB artifact up and down, peak RSS."
    )
    parser.add_argument(
        "--mlflow-large-search",
        action="store_true",
        help="Also grow MLflow to the large run count for the 10k search (slow).",
    )
    args = parser.parse_args()
    sizes = Sizes.quick() if args.quick else Sizes()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    tools = [args.only] if args.only else list(TOOLS)
    if "mlflow" in tools:
        ensure_mlflow_venv()

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, Results]] = {}
    for backend in backends:
        for tool in tools:
            with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-{backend}-") as tmp:
                t0 = time.perf_counter()
                if tool == "mlflow":
                    got = run_mlflow(backend, sizes, Path(tmp), args.mlflow_large_search)
                else:
                    got = run_shipyard(backend, sizes, Path(tmp), args.big)
                log(f"[{tool}/{backend}] done in {time.perf_counter() - t0:.0f} s")
                results.setdefault(backend, {})[tool] = got

    meta = {
        "command": "python benchmarks/tracking.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(backends),
        "sizes": json.loads(sizes.to_json()),
        "total_seconds": round(time.perf_counter() - started),
        # The machine may be shared: a high load makes every figure slower.
        "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    print(render_report(results, meta, sizes))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    dump = {
        "meta": meta,
        "rows": [row._asdict() for row in ROWS],
        "results": {
            backend: {tool: {"values": r.values, "notes": r.notes} for tool, r in by_tool.items()}
            for backend, by_tool in results.items()
        },
    }
    path = out_dir / f"tracking-{stamp}.json"
    path.write_text(json.dumps(dump, indent=2))
    log(f"raw results: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
