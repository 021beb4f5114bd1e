"""The two tools of the datasets benchmark, driven as a user would: their CLIs, one
subprocess per command, so each pays its own start-up.

Standard library only (the harness runs under any Python 3.11). DVC lives in its own
virtual environment, benchmarks/.venv-dvc (gitignored), created on first use.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import MB, check, free_port, log

from tracking import SHIPYARD_VENV, base_env, server

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DVC_VENV = HERE / ".venv-dvc"
DVC_REQUIREMENTS = ["dvc>=3,<4", "dvc-s3"]  # dvc-s3: its S3 remote, for --mode remote
DATA_SCRIPT = HERE / "_datasets_data.py"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def ensure_dvc_venv() -> Path:
    """DVC's own virtual environment, created (with pip's progress shown) if missing."""
    dvc = DVC_VENV / "bin" / "dvc"
    python = DVC_VENV / "bin" / "python"
    if dvc.exists():
        if subprocess.run([str(python), "-c", "import dvc_s3"], capture_output=True).returncode:
            log("adding dvc-s3 (DVC's S3 remote) to its venv")
            subprocess.run([str(python), "-m", "pip", "install", "-q", "dvc-s3"], check=True)
        return dvc
    log(f"creating {DVC_VENV.relative_to(REPO)} and installing {' '.join(DVC_REQUIREMENTS)}")
    log("(first run only; this takes a minute or two)")
    subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
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
    """Shipyard embedded (no server) with a fresh SHIPYARD_HOME at ``home``; CLI timed,
    each command in a process of its own that runs it there (``SHIPYARD_DAEMON=off``):
    each pays the stack's start-up."""

    startup: dict[str, float] = {}  # what a long-lived driver spent before its first step

    def __init__(self, home: Path, logs: Path) -> None:
        self.home, self.logs = home, logs
        self.exe = str(shipyard_exe())
        self.env = isolated_env(home.parent / f"{home.name}-env") | {
            "SHIPYARD_HOME": str(home),
            "SHIPYARD_DAEMON": "off",
        }
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


class ShipyardDefaults(Shipyard):
    """The per-command mode with Shipyard's default settings outside CI
    (``SHIPYARD_DAEMON=auto``, what unset means there; set, so that a run on a CI
    machine, or under any of the markers ``cli/daemon_link.py`` treats as CI, measures
    the same): the fresh home's first command, an untimed `shipyard data list` (the
    counterpart of DVC's `git init` + `dvc init`), runs in its own process and then
    starts the home's command daemon in the background; it is waited for (untimed).
    Each timed `shipyard data ingest` is still a process of its own, which hands the
    command to the daemon; after each, `shipyard daemon status` confirms the daemon
    served it."""

    def __init__(self, home: Path, logs: Path) -> None:
        super().__init__(home, logs)
        self.env["SHIPYARD_DAEMON"] = "auto"
        started = time.perf_counter()
        run_timed([self.exe, "data", "list", "--json"], self.cwd, self.env, self.logs,
                  f"shipyard-first-command-{home.name}")  # fmt: skip
        first = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while not self._status().get("ready"):
            check(time.monotonic() < deadline, f"no daemon started for {home}")
            time.sleep(0.05)
        self.startup = {
            "first_command_s": first,
            "daemon_ready_s": time.perf_counter() - started,
        }

    def _status(self) -> dict:
        reply = subprocess.run(
            [self.exe, "daemon", "status", "--json"],
            cwd=self.cwd, env=self.env, capture_output=True, text=True,
        )  # fmt: skip
        return json.loads(reply.stdout) if reply.returncode == 0 else {}

    def ingest(self, name: str, source: Path, message: str, label: str, cold: bool) -> Measured:
        measured = super().ingest(name, source, message, label, cold)
        status = self._status()
        check(bool(status), f"the daemon of {self.home} has gone")
        check(status["declined"] == 0, f"the daemon declined: {status}")
        return measured

    def close(self) -> None:
        run_timed([self.exe, "daemon", "stop"], self.cwd, self.env, self.logs,
                  f"shipyard-daemon-stop-{self.home.name}")  # fmt: skip


# --- the remote mode: each tool sends its data to S3 (moto's server on loopback) ---------

S3_KEY, S3_SECRET, S3_REGION = "bench", "bench-secret", "us-east-1"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": S3_KEY,
    "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    "AWS_DEFAULT_REGION": S3_REGION,
}


@functools.cache
def s3_endpoint() -> str:
    """A moto S3 server on loopback for the whole run (stopped at exit), holding one
    bucket per tool."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    moto = [str(SHIPYARD_VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    stack.enter_context(server(moto, base_env(), url, Path(os.devnull)))
    for bucket in ("dvc", "shipyard"):
        _s3(url, f"s3.create_bucket(Bucket={bucket!r})")
    return url


def _s3(url: str, statement: str) -> str:
    """Run a boto3 ``statement`` (``s3`` is the client) in the repository's venv; what
    it prints."""
    client = f"boto3.client('s3', endpoint_url={url!r}, aws_access_key_id={S3_KEY!r}, " + (
        f"aws_secret_access_key={S3_SECRET!r}, region_name={S3_REGION!r})"
    )
    code = f"import boto3\ns3 = {client}\n{statement}"
    python = str(SHIPYARD_VENV / "bin" / "python")
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout


def s3_bytes(bucket: str, prefix: str) -> int:
    """Bytes stored under ``prefix`` of ``bucket``."""
    statement = (
        "print(sum(o['Size'] for page in s3.get_paginator('list_objects_v2').paginate("
        f"Bucket={bucket!r}, Prefix={prefix!r}) for o in page.get('Contents', [])))"
    )
    return int(_s3(s3_endpoint(), statement))


def s3_forget(bucket: str, prefix: str) -> None:
    """Delete what is under ``prefix`` of ``bucket`` (moto keeps it all in memory)."""
    statement = (
        f"pages = s3.get_paginator('list_objects_v2').paginate(Bucket={bucket!r}, "
        f"Prefix={prefix!r})\n"
        "for page in pages:\n"
        "    keys = [{'Key': o['Key']} for o in page.get('Contents', [])]\n"
        f"    if keys: s3.delete_objects(Bucket={bucket!r}, Delete={{'Objects': keys}})"
    )
    _s3(s3_endpoint(), statement)


class DvcRemote(Dvc):
    """``dvc add`` then ``dvc push`` to an S3 remote (one bucket prefix per repository),
    timed as one step: what a team sharing data through DVC runs."""

    def __init__(self, root: Path, logs: Path) -> None:
        super().__init__(root, logs)
        self.env |= S3_CREDENTIALS
        self.prefix = f"{root.parent.name}-{root.name}"
        quiet = {"cwd": root, "env": self.env, "check": True, "capture_output": True}
        remote = f"s3://dvc/{self.prefix}"
        subprocess.run([self.exe, "remote", "add", "-d", "store", remote], **quiet)
        subprocess.run([self.exe, "remote", "modify", "store", "endpointurl", s3_endpoint()],
                       **quiet)  # fmt: skip

    def stored_bytes(self) -> int:
        return s3_bytes("dvc", self.prefix)

    def close(self) -> None:
        s3_forget("dvc", self.prefix)

    def add(self, target: str, label: str, cold: bool) -> Measured:
        settle(cold)
        cmd = ["sh", "-c", '"$0" add "$1" && "$0" push', self.exe, target]
        return run_timed(cmd, self.root, self.env, self.logs, label)


class ShipyardRemote(Shipyard):
    """``shipyard data ingest`` against a ``shipyard server`` on loopback (started
    untimed, its own home, its blobs in S3); the client keeps only its caches."""

    def __init__(self, home: Path, logs: Path) -> None:
        super().__init__(home, logs)
        self.prefix = f"{home.parent.name}-{home.name}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server_env = self.env | {
            "SHIPYARD_HOME": str(home / "server"),
            "SHIPYARD_BLOB_URL": f"s3://shipyard/{self.prefix}",
            "SHIPYARD_S3_ENDPOINT_URL": s3_endpoint(),
            "SHIPYARD_S3_ACCESS_KEY_ID": S3_KEY,
            "SHIPYARD_S3_SECRET_ACCESS_KEY": S3_SECRET,
            "SHIPYARD_S3_REGION": S3_REGION,
        }
        cmd = [self.exe, "server", "--host", "127.0.0.1", "--port", str(port)]
        self._server = contextlib.ExitStack()
        atexit.register(self._server.close)  # also when a step fails (closing twice is fine)
        logs.mkdir(parents=True, exist_ok=True)
        log_file = logs / f"shipyard-server-{home.name}.log"
        self._server.enter_context(server(cmd, server_env, f"{url}/healthz", log_file))
        self.env |= {"SHIPYARD_HOME": str(home / "client"), "SHIPYARD_URL": url}

    def stored_bytes(self) -> int:
        return s3_bytes("shipyard", self.prefix)

    def close(self) -> None:
        self._server.close()
        s3_forget("shipyard", self.prefix)


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
