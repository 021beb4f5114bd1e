"""The two tools of the datasets benchmark, driven as a user would: their CLIs, one
subprocess per command, so each pays its own start-up.

Standard library only (the harness runs under any Python 3.11). DVC lives in its own
virtual environment, benchmarks/.venv-dvc (gitignored), created on first use.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import MB, check, log

from tracking import SHIPYARD_VENV, base_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DVC_VENV = HERE / ".venv-dvc"
DVC_REQUIREMENTS = ["dvc>=3,<4"]
DATA_SCRIPT = HERE / "_datasets_data.py"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def ensure_dvc_venv() -> Path:
    """DVC's own virtual environment, created (with pip's progress shown) if missing."""
    dvc = DVC_VENV / "bin" / "dvc"
    if dvc.exists():
        return dvc
    log(f"creating {DVC_VENV.relative_to(REPO)} and installing {' '.join(DVC_REQUIREMENTS)}")
    log("(first run only; this takes a minute or two)")
    subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
    python = DVC_VENV / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--progress-bar", "on", *DVC_REQUIREMENTS],
        check=True,
    )
    return dvc


@functools.cache
def shipyard_exe() -> Path:
    """The ``shipyard`` CLI of the repository's venv, checked to have ``data ingest``
    (before minutes of data generation, not after)."""
    exe = SHIPYARD_VENV / "bin" / "shipyard"
    if not exe.exists():
        raise SystemExit(f"no Shipyard venv at {SHIPYARD_VENV}: create it and `pip install -e .`")
    reply = subprocess.run([str(exe), "data", "ingest", "--help"], capture_output=True, text=True)
    if reply.returncode != 0:
        raise SystemExit(f"`shipyard data ingest` is not available:\n{reply.stderr[-2000:]}")
    return exe


@dataclass
class Measured:
    """One command: wall seconds (fork to exit), peak resident memory, its output."""

    seconds: float
    peak_rss_mb: float
    stdout: str


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str], logs: Path, label: str) -> Measured:
    """Run ``cmd`` to completion and measure it; fail loudly if it fails.

    The peak RSS comes from ``wait4``'s rusage of the child (the largest of the
    child and the descendants it waited for): what ``/usr/bin/time -v`` reports,
    with nothing polling while the command runs."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{label}.out", logs / f"{label}.err"
    log(f"  {label}: {' '.join(cmd)}")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    if proc.returncode != 0:
        raise SystemExit(
            f"{label} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{err_path.read_text(errors='replace')[-3000:]}"
        )
    log(f"    {seconds:.3f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MB")
    return Measured(seconds, usage.ru_maxrss / 1024, out_path.read_text(errors="replace"))


def can_drop_caches() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def settle(cold: bool) -> None:
    """Before a timed command: flush earlier writes, so no tool pays for another's
    write-back; and when ``cold``, evict the page cache (data and programs alike)."""
    os.sync()
    if cold:
        DROP_CACHES.write_text("3\n")


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 if it does not exist)."""
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            full = Path(folder, name)
            if full.is_file() and not full.is_symlink():
                total += full.stat().st_size
    return total


def generate(*args: str) -> dict:
    """Run the data generator in our venv; its JSON summary."""
    python = SHIPYARD_VENV / "bin" / "python"
    reply = subprocess.run(
        [str(python), str(DATA_SCRIPT), *args], check=True, capture_output=True, text=True
    )
    return json.loads(reply.stdout)


def isolated_env(root: Path) -> dict[str, str]:
    """Our environment without SHIPYARD_*/MLFLOW_* and with a private HOME and caches,
    so no global config or cache of an earlier run (DVC's, Shipyard's) is reused."""
    env = base_env()
    env.update(
        HOME=str(root / "user-home"),
        XDG_CACHE_HOME=str(root / "user-home" / ".cache"),
        XDG_CONFIG_HOME=str(root / "user-home" / ".config"),
        DVC_NO_ANALYTICS="1",
    )
    (root / "user-home").mkdir(parents=True, exist_ok=True)
    return env


class Dvc:
    """A fresh Git + DVC repository at ``root``; ``dvc add`` timed."""

    startup: dict[str, float] = {}  # what a long-lived driver spent before its first step

    def __init__(self, root: Path, logs: Path) -> None:
        self.root, self.logs = root, logs
        self.exe = str(ensure_dvc_venv())
        self.env = isolated_env(root.parent / f"{root.name}-env")
        root.mkdir(parents=True, exist_ok=True)
        quiet = {"cwd": root, "env": self.env, "check": True, "capture_output": True}
        subprocess.run(["git", "init", "-q"], **quiet)
        subprocess.run([self.exe, "init", "-q"], **quiet)
        # No network during a measurement; DVC's state database inside the temp dir.
        site = root.parent / f"{root.name}-site-cache"
        for key, value in (
            ("core.analytics", "false"),
            ("core.check_update", "false"),
            ("core.site_cache_dir", str(site)),
        ):
            subprocess.run([self.exe, "config", key, value], **quiet)

    def stored_bytes(self) -> int:
        return tree_bytes(self.root / ".dvc" / "cache")

    def add(self, target: str, label: str, cold: bool) -> Measured:
        settle(cold)
        return run_timed([self.exe, "add", target], self.root, self.env, self.logs, label)

    def close(self) -> None:
        """Nothing outlives a command here (the in-process mode ends its driver)."""

    def check_tracked(self, target: str, files: int, size: int) -> None:
        """The ``.dvc`` file records what was added: file count and bytes."""
        text = (self.root / f"{target.rstrip('/')}.dvc").read_text()
        got_size = int(re.search(r"size: (\d+)", text).group(1))
        got_files = re.search(r"nfiles: (\d+)", text)
        check(got_size == size, f"dvc recorded {got_size} bytes, expected {size}")
        if got_files is not None:
            check(int(got_files.group(1)) == files, f"dvc recorded {got_files.group(1)} files")


class Shipyard:
    """Shipyard embedded (no server) with a fresh SHIPYARD_HOME at ``home``; CLI timed."""

    startup: dict[str, float] = {}  # what a long-lived driver spent before its first step

    def __init__(self, home: Path, logs: Path) -> None:
        self.home, self.logs = home, logs
        self.exe = str(shipyard_exe())
        self.env = isolated_env(home.parent / f"{home.name}-env") | {"SHIPYARD_HOME": str(home)}
        self.cwd = home.parent

    def stored_bytes(self) -> int:
        return tree_bytes(self.home / "blobs")

    def create(self, name: str, expectations: Path) -> None:
        cmd = [self.exe, "data", "create", name, "--expectations", str(expectations)]
        run_timed(cmd, self.cwd, self.env, self.logs, f"shipyard-create-{name}")

    def ingest(self, name: str, source: Path, message: str, label: str, cold: bool) -> Measured:
        settle(cold)
        cmd = [self.exe, "data", "ingest", name, str(source), "--message", message]
        return run_timed(cmd, self.cwd, self.env, self.logs, label)

    def close(self) -> None:
        """Nothing outlives a command here (the in-process mode ends its driver)."""

    def check_latest(self, name: str, rows: int, files: int | None) -> bool:
        """Compare the newest version's rows (and file count) with what was ingested.

        Best effort while the CLI's JSON shape settles: a mismatch fails; False when
        the reply holds no version to compare (reported as unchecked)."""
        reply = subprocess.run(
            [self.exe, "data", "versions", name, "--json"],
            cwd=self.cwd, env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        try:
            versions = _version_records(json.loads(reply.stdout))
        except ValueError:
            versions = []
        if reply.returncode != 0 or not versions:
            log(f"    rows not checked: `shipyard data versions {name} --json` gave no versions")
            return False
        latest = max(versions, key=lambda v: v["version"])
        check(latest["rows"] == rows, f"shipyard {name} v{latest['version']}: {latest['rows']} "
              f"rows, expected {rows}")  # fmt: skip
        if files is not None and "file_count" in latest:
            check(latest["file_count"] == files, f"shipyard {name}: {latest['file_count']} files")
        return True


class ShipyardDaemon(Shipyard):
    """The per-command mode with this home's command daemon running (`shipyard daemon
    start`, untimed, before the first step): each step is still `shipyard data ingest`
    in a process of its own, which hands the command to the daemon."""

    def __init__(self, home: Path, logs: Path) -> None:
        super().__init__(home, logs)
        started = time.perf_counter()
        run_timed([self.exe, "daemon", "start"], self.cwd, self.env, self.logs,
                  f"shipyard-daemon-start-{home.name}")  # fmt: skip
        self.startup = {"daemon_start_s": time.perf_counter() - started}

    def ingest(self, name: str, source: Path, message: str, label: str, cold: bool) -> Measured:
        measured = super().ingest(name, source, message, label, cold)
        status = subprocess.run(
            [self.exe, "daemon", "status", "--json"],
            cwd=self.cwd, env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        check(status.returncode == 0, f"the daemon of {self.home} has gone:\n{status.stdout}")
        check(json.loads(status.stdout)["declined"] == 0, f"the daemon declined: {status.stdout}")
        return measured

    def close(self) -> None:
        run_timed([self.exe, "daemon", "stop"], self.cwd, self.env, self.logs,
                  f"shipyard-daemon-stop-{self.home.name}")  # fmt: skip


def _version_records(value: object) -> list[dict]:
    """Every object carrying a version number and a row count, wherever it sits."""
    found: list[dict] = []
    if isinstance(value, dict):
        if isinstance(value.get("version"), int) and isinstance(value.get("rows"), int):
            found.append(value)
        for child in value.values():
            found += _version_records(child)
    elif isinstance(value, list):
        for child in value:
            found += _version_records(child)
    return found


def startup_seconds(cmd: list[str], env: dict[str, str], cwd: Path, repeats: int = 5) -> float:
    """Median wall time of a do-nothing command (start-up alone), after one warm-up."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def mib(n: int) -> str:
    return f"{n / MB:,.1f} MiB"
