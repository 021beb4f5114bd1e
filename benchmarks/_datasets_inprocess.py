"""The in-process mode of the datasets benchmark, harness side: each tool driven
through its Python API by one long-lived process (``_datasets_driver.py``), so the
figures are the versioning work itself, without a process start-up per step.

The repositories, the data, the steps, the ``sync`` (and page cache eviction) before
each step and the checks afterwards are those of the per-command mode: these classes
only replace how a step runs. Standard library only, like the rest of the harness.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from _datasets_tools import DVC_VENV, Dvc, Measured, Shipyard, generate, settle
from common import check, log

from tracking import SHIPYARD_VENV

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "_datasets_driver.py"
# The warm-up folder: one ~1 MiB file of a generation the measured data never uses,
# so neither tool has its bytes stored already when the measured steps start.
WARMUP_GENERATION = "99"


class Driver:
    """A driver process and its line protocol; its stderr goes to ``logs/<label>.err``."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str], logs: Path, label: str):
        logs.mkdir(parents=True, exist_ok=True)
        self.label, self.err_path = label, logs / f"{label}.err"
        log(f"  {label}: {' '.join(cmd)}")
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, text=True, bufsize=1,
            )  # fmt: skip
        self.startup = {k: v for k, v in self._reply().items() if k.endswith("_s")}
        log("    ready: " + ", ".join(f"{k} {v:.3f}" for k, v in self.startup.items()))

    def _reply(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise SystemExit(
                f"{self.label} exited ({self.proc.returncode}) without replying:\n"
                f"{self.err_path.read_text(errors='replace')[-3000:]}"
            )
        reply = json.loads(line)
        if "error" in reply:
            raise SystemExit(f"{self.label} failed:\n{reply['error']}")
        return reply

    def call(self, target: str, message: str, label: str) -> dict[str, Any]:
        """One timed API call in the driver: its reply (``seconds`` and what it learnt)."""
        self.proc.stdin.write(json.dumps({"target": target, "message": message}) + "\n")
        reply = self._reply()
        log(f"  {label}: {self.label} versions {target}")
        log(f"    {reply['seconds']:.3f} s (in process)")
        return reply

    def close(self) -> None:
        """End of stdin: the driver exits."""
        self.proc.stdin.close()
        check(self.proc.wait(timeout=120) == 0, f"{self.label} exited with {self.proc.returncode}")


class DvcInProcess(Dvc):
    """The per-command mode's repository, with ``Repo(root).add(target)`` in one process."""

    def __init__(self, root: Path, logs: Path) -> None:
        super().__init__(root, logs)
        warmup = "warmup"  # inside the repository, as DVC requires; never a measured target
        generate("files", str(root / warmup), "--files", "1", "--generation", WARMUP_GENERATION)
        cmd = [str(DVC_VENV / "bin" / "python"), str(DRIVER), "dvc", str(root), warmup]
        self.driver = Driver(cmd, root, self.env, logs, f"dvc-driver-{root.name}")
        self.startup = self.driver.startup

    def add(self, target: str, label: str, cold: bool) -> Measured:
        settle(cold)
        reply = self.driver.call(target, "", label)
        return Measured(reply["seconds"], 0.0, "")  # no RSS: the process outlives the step

    def close(self) -> None:
        self.driver.close()


class ShipyardInProcess(Shipyard):
    """The per-command mode's SHIPYARD_HOME, with ``Client().datasets.ingest`` in one
    process (dataset ``bench``; the warm-up goes to ``bench-warmup``)."""

    def __init__(self, home: Path, logs: Path) -> None:
        super().__init__(home, logs)
        warmup = home.parent / f"{home.name}-warmup"
        generate("files", str(warmup), "--files", "1", "--generation", WARMUP_GENERATION)
        cmd = [str(SHIPYARD_VENV / "bin" / "python"), str(DRIVER), "shipyard", "bench", str(warmup)]
        self.driver = Driver(cmd, self.cwd, self.env, logs, f"shipyard-driver-{home.name}")
        self.startup = self.driver.startup

    def ingest(self, name: str, source: Path, message: str, label: str, cold: bool) -> Measured:
        check(name == "bench", "the in-process driver versions the dataset `bench` only")
        settle(cold)
        reply = self.driver.call(str(source), message, label)
        return Measured(reply["seconds"], 0.0, json.dumps(reply))  # no RSS, as for DVC

    def close(self) -> None:
        self.driver.close()
