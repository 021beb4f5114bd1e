"""Datasets benchmark: Shipyard vs DVC (versioning Parquet data) and Shipyard vs plain
pandas (CSV to Parquet), side by side in one run.

    python benchmarks/datasets.py                 # full sizes: 2 x 1 GiB, a 10M-row CSV
    python benchmarks/datasets.py --scale 0.02    # smoke run (2% of every size)
    python benchmarks/datasets.py --only dvc      # dvc | csv
    python benchmarks/datasets.py --keep          # keep the temporary folders
    python benchmarks/datasets.py --mode remote   # command|nodaemon|inprocess|remote|both|all

Versioning is measured in several modes, with the same data and steps. Per command: every
timed step is one CLI command in its own process (`dvc add`, `shipyard data ingest`),
with each tool's default settings: Shipyard's home gets an untimed first command (as DVC's
repository gets `git init` + `dvc init`), which starts the home's command daemon, and
each timed `shipyard` command hands its work to it. Per command without the daemon
(`SHIPYARD_DAEMON=off`): each `shipyard` command also pays for importing its stack. In
process: each tool's Python API (`Repo.add`,
`Client().datasets.ingest`) called by one long-lived, warmed-up process per
repository, so only the work is timed. Remote (asked for by name, not in "all"): per
command, each tool sending the data to S3 (moto's server on loopback): DVC by `dvc add`
then `dvc push`, Shipyard by `shipyard data ingest` against a `shipyard server` (on
loopback, started untimed) whose blobs are in S3. The CSV ingest is per command (`python -c
"pandas..."`; Shipyard with the daemon off, so the peak memory measured is the work's).
DVC is installed on first use into benchmarks/.venv-dvc (gitignored).
The data are written by _datasets_data.py in the repository's venv; the commands,
the checks and the timing are in _datasets_tools.py, the in-process drivers in
_datasets_inprocess.py (harness side) and _datasets_driver.py (in each tool's venv).
The report is Markdown on stdout (paste it into docs/benchmarks.md); the raw numbers
go to benchmarks/results/datasets-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _datasets_inprocess import DvcInProcess, ShipyardInProcess  # noqa: E402
from _datasets_report import render  # noqa: E402
from _datasets_tools import (  # noqa: E402
    DVC_VENV,
    Dvc,
    DvcRemote,
    Shipyard,
    ShipyardDefaults,
    ShipyardRemote,
    can_drop_caches,
    ensure_dvc_venv,
    generate,
    isolated_env,
    run_timed,
    settle,
    shipyard_exe,
    startup_seconds,
    tree_bytes,
)
from common import MB, check, log  # noqa: E402

from tracking import SHIPYARD_VENV, machine  # noqa: E402

REPO = HERE.parent
PANDAS_CODE = "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2])"
# How each versioning step runs: a CLI command per step, or API calls in one process.
MODES: dict[str, tuple[type[Dvc], type[Shipyard]]] = {
    "command": (Dvc, ShipyardDefaults),
    "nodaemon": (Dvc, Shipyard),
    "inprocess": (DvcInProcess, ShipyardInProcess),
    "remote": (DvcRemote, ShipyardRemote),
}
# --mode both: per command (defaults) and in process; all: the three that keep the data
# on this machine (remote sends it to S3 and is asked for by name).
MODE_CHOICES = {
    **{mode: [mode] for mode in MODES},
    "both": ["command", "inprocess"],
    "all": ["command", "nodaemon", "inprocess"],
}


@dataclass(frozen=True)
class Plan:
    """The sizes of one run: the issue's, times ``scale`` (files stay ~1 MiB each)."""

    scale: float
    files: int  # 1,000 files of ~1 MiB
    changed: tuple[int, ...]  # which of them change (10 of 1,000)
    csv_rows: int  # 10M rows, 20 columns

    @classmethod
    def of(cls, scale: float) -> Plan:
        files = max(2, round(1_000 * scale))
        count = min(files, max(1, round(10 * scale)))
        # Spread over the folder, not bunched at its start.
        changed = tuple((2 * k + 1) * files // (2 * count) for k in range(count))
        return cls(scale, files, changed, max(1_000, round(10_000_000 * scale)))


def versioning(plan: Plan, tmp: Path, cold: bool, keep: bool, mode: str) -> tuple[dict, list[bool]]:
    """Steps a-d for both tools with the page cache warm (just written) or evicted,
    each step a command (``mode`` "command") or an API call in one process ("inprocess")."""
    tag = "cold" if cold else "warm"
    root, logs = tmp / mode / tag, tmp / "logs" / mode / tag
    make_dvc, make_shipyard = MODES[mode]
    got: dict[str, float] = {}
    checked: list[bool] = []  # whether each Shipyard version's row count could be checked

    def step(key: str, dvc: Dvc, ship: Shipyard, dvc_target: str, source: Path, msg: str) -> None:
        dvc_before, ship_before = dvc.stored_bytes(), ship.stored_bytes()
        got[f"{key}.dvc"] = dvc.add(dvc_target, f"dvc-{key}", cold).seconds
        got[f"{key}.shipyard"] = ship.ingest("bench", source, msg, f"shipyard-{key}", cold).seconds
        # What each tool added to its store: the data it kept for this version.
        got[f"{key}.dvc_stored_mb"] = (dvc.stored_bytes() - dvc_before) / MB
        got[f"{key}.shipyard_stored_mb"] = (ship.stored_bytes() - ship_before) / MB

    def start(kind: str) -> tuple[Dvc, Shipyard]:
        dvc = make_dvc(root / f"{kind}-repo", logs)
        ship = make_shipyard(root / f"{kind}-home", logs)
        got.update({f"{kind}.dvc_{k}": v for k, v in dvc.startup.items()})
        got.update({f"{kind}.shipyard_{k}": v for k, v in ship.startup.items()})
        return dvc, ship

    log(f"[versioning {mode}, page cache {tag}] {plan.files:,} files")
    dvc, ship = start("files")
    data = dvc.root / "data"
    made = generate("files", str(data), "--files", str(plan.files))
    rows, size = made["rows"], tree_bytes(data)
    got |= {"files.data_mb": size / MB, "files.rows_per_file": made["rows_per_file"]}
    step("files_first", dvc, ship, "data/", data, "cold")
    dvc.check_tracked("data", plan.files, size)
    for tool in ("dvc", "shipyard"):
        stored = got[f"files_first.{tool}_stored_mb"] * MB
        check(stored >= 0.9 * size, f"{tool} stored {stored:,.0f} of {size:,} bytes")
    checked.append(ship.check_latest("bench", rows, plan.files))

    only = ",".join(str(i) for i in plan.changed)
    generate("files", str(data), "--files", str(plan.files), "--only", only, "--generation", "1")
    step("files_again", dvc, ship, "data/", data, "again")
    dvc.check_tracked("data", plan.files, tree_bytes(data))
    checked.append(ship.check_latest("bench", rows, plan.files))
    dvc.close()
    ship.close()
    if not keep:  # the disk and page cache the next step needs
        for folder in ("files-repo", "files-home"):
            shutil.rmtree(root / folder)

    log(f"[versioning {mode}, page cache {tag}] one file")
    dvc, ship = start("big")
    big = dvc.root / "data" / "big.parquet"
    target = "data/big.parquet"
    made = generate("big", str(big), "--rows", str(rows))
    got["big.data_mb"] = made["bytes"] / MB
    step("big_first", dvc, ship, target, big, "cold")
    dvc.check_tracked(target, 1, made["bytes"])
    checked.append(ship.check_latest("bench", rows, 1))
    changed = generate("big", str(big), "--rows", str(rows), "--changed")
    got["big.changed_mb"] = made["bytes"] / MB / made["row_groups"]
    step("big_again", dvc, ship, target, big, "again")
    dvc.check_tracked(target, 1, changed["bytes"])
    checked.append(ship.check_latest("bench", rows, 1))
    dvc.close()
    ship.close()
    if not keep:
        shutil.rmtree(root)
    return got, checked


def csv_ingest(plan: Plan, tmp: Path) -> tuple[dict, list[bool]]:
    """CSV -> profiled, validated version, vs pandas read_csv + to_parquet; rows/s, peak RSS."""
    root, logs = tmp / "csv", tmp / "logs" / "csv"
    root.mkdir(parents=True)
    path, suite, out = root / "data.csv", root / "expectations.json", root / "pandas.parquet"
    log(f"[csv] writing {plan.csv_rows:,} rows")
    made = generate("csv", str(path), "--rows", str(plan.csv_rows), "--expectations", str(suite))
    got: dict[str, float] = {"csv.mb": made["bytes"] / MB, "csv.rows": made["rows"]}

    python = str(SHIPYARD_VENV / "bin" / "python")
    settle(cold=False)
    cmd = [python, "-c", PANDAS_CODE, str(path), str(out)]
    pandas = run_timed(cmd, root, isolated_env(root / "pandas-env"), logs, "pandas-csv")
    check(generate("count", str(out))["rows"] == made["rows"], "pandas wrote the wrong row count")

    ship = Shipyard(root / "home", logs)
    ship.create("big", suite)
    settle(cold=False)
    shipyard = ship.ingest("big", path, "csv", "shipyard-csv", cold=False)
    checked = ship.check_latest("big", made["rows"], None)

    for tool, m in (("pandas", pandas), ("shipyard", shipyard)):
        got[f"csv.{tool}_s"] = m.seconds
        got[f"csv.{tool}_rows_per_s"] = made["rows"] / m.seconds
        got[f"csv.{tool}_rss_mb"] = m.peak_rss_mb
    return got, [checked]


def startup(tmp: Path, tools: list[str]) -> dict[str, float]:
    """Each CLI's start-up alone (warm), for context: `shipyard --help`, `dvc --version`."""
    env = isolated_env(tmp / "startup-env")
    got = {"startup.shipyard": startup_seconds([str(shipyard_exe()), "--help"], env, tmp)}
    if "dvc" in tools:
        got["startup.dvc"] = startup_seconds([str(ensure_dvc_venv()), "--version"], env, tmp)
    return got


def _output(cmd: list[str]) -> str:
    try:
        reply = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except OSError:
        return "?"
    return reply.stdout.strip() or "?"


def environment(tmp: Path) -> dict[str, str]:
    """Where and with what the numbers were taken."""
    python = str(SHIPYARD_VENV / "bin" / "python")
    code = (
        "import importlib.metadata as m, platform; "
        "print(platform.python_version(), *(m.version(p) for p in "
        "('shipyard', 'pyarrow', 'pandas', 'numpy')))"
    )
    py, shipyard, pyarrow, pandas, numpy = _output([python, "-c", code]).split()
    dvc = _output([str(DVC_VENV / "bin" / "dvc"), "--version"])
    df = _output(["df", "-h", "--output=source,fstype,size,avail", str(tmp)]).splitlines()
    same = os.stat(tmp).st_dev == os.stat(REPO).st_dev
    return {
        "machine": machine(),
        "cores": _output(["nproc"]),
        "disk": " ".join(df[-1].split()) + f" ({'same' if same else 'not the same'} disk as repo)",
        "python": py,
        "shipyard": shipyard,
        "dvc": dvc if DVC_VENV.exists() else "-",
        "pyarrow": pyarrow,
        "pandas": pandas,
        "numpy": numpy,
        "kernel": platform.release(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of the sizes.")
    parser.add_argument("--only", choices=["dvc", "csv"], help="Run one part only.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folders.")
    parser.add_argument(
        "--mode", choices=list(MODE_CHOICES), default="all",
        help="Versioning: a CLI command per step (default settings: the command daemon),"
        " the same with SHIPYARD_DAEMON=off, API calls in one warm process, commands that"
        " send the data to S3 through a server (DVC: add + push); both: command and"
        " inprocess; all: the first three.",
    )  # fmt: skip
    parser.add_argument(
        "--tmp", type=Path, default=Path(tempfile.gettempdir()),
        help="Where the temporary folders go (the same disk as the repository is fairest).",
    )  # fmt: skip
    args = parser.parse_args()
    check(0 < args.scale <= 1, "--scale is a fraction in (0, 1]")
    plan = Plan.of(args.scale)
    parts = [args.only] if args.only else ["dvc", "csv"]
    modes = MODE_CHOICES[args.mode]
    if "dvc" in parts:
        ensure_dvc_venv()
    shipyard_exe()
    cold_too = can_drop_caches()
    variants = [False, True] if cold_too else [False]

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-datasets-", dir=args.tmp))
    log(f"temporary folder: {tmp}")
    values: dict[str, float] = {}
    checked: list[bool] = []
    try:
        values |= startup(tmp, parts)
        for mode in modes if "dvc" in parts else []:
            for cold in variants:
                got, said = versioning(plan, tmp, cold, args.keep, mode)
                # The per-command keys stay as they were: warm.*, cold.*.
                prefix = ("" if mode == "command" else f"{mode}.") + ("cold" if cold else "warm")
                values |= {f"{prefix}.{k}": v for k, v in got.items()}
                checked += said
        if "csv" in parts:
            got, said = csv_ingest(plan, tmp)
            values |= got
            checked += said
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    meta = {
        "command": "python benchmarks/datasets.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "plan": asdict(plan),
        "modes": modes if "dvc" in parts else [],
        "cold_variant": cold_too,
        "shipyard_versions_checked": f"{sum(checked)} of {len(checked)}",
        "environment": environment(Path(args.tmp)),
        "total_seconds": round(time.perf_counter() - started),
        # The machine may be shared: a high load makes every figure slower.
        "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    print(render(values, meta))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = out_dir / f"datasets-{stamp}.json"
    path.write_text(json.dumps({"meta": meta, "values": values}, indent=2))
    log(f"raw results: {path.relative_to(REPO)}")
    if args.keep:
        log(f"kept: {tmp}")


if __name__ == "__main__":
    main()
