"""One long-lived process per tool for the in-process mode of the datasets benchmark:
it opens one DVC repository (``dvc.repo.Repo``) or one embedded Shipyard (``Client()``)
once and versions data through the tool's Python API on request, as a notebook, a
pipeline step or a service would. Only the call itself is timed.

    python _datasets_driver.py dvc ROOT WARMUP        # in benchmarks/.venv-dvc, cwd ROOT
    python _datasets_driver.py shipyard DATASET WARMUP   # in the repository's venv

Runs in either venv, so standard library only apart from the tool. Before the first
request it does one untimed call of the very operation it will time on WARMUP (a
small folder of distinct data), so every module the call imports lazily is loaded,
as in any warm process. Protocol, one JSON object a line: first it writes
``{"ready": ..., "import_s", "open_s", "warmup_s"}``; then for each request
``{"target": "data/", "message": "..."}`` read from stdin it writes
``{"seconds": ...}`` (plus the new version's ``rows``/``file_count`` for Shipyard),
or ``{"error": traceback}``. It exits at the end of stdin.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

# What a driver does with one request: version ``target``; what it learnt about it.
Versioner = Callable[[str, str], dict[str, Any]]


def dvc_driver(root: str, warmup: str) -> tuple[Versioner, dict[str, float]]:
    """One ``Repo`` kept open for the whole sequence, as a long-lived process would.

    DVC itself drops its in-memory index around every locked call (``lock_repo``
    resets the repo on entry and exit); its state database of file hashes lives on
    disk either way, so keeping the object keeps no cache a fresh process lacks."""
    start = time.perf_counter()
    from dvc.repo import Repo

    imported = time.perf_counter()
    repo = Repo(root)
    opened = time.perf_counter()
    repo.add(warmup)
    warmed = time.perf_counter()

    def add(target: str, message: str) -> dict[str, Any]:
        del message  # `dvc add` takes none; the commit message belongs to Git
        begin = time.perf_counter()
        repo.add(target)
        return {"seconds": time.perf_counter() - begin}

    return add, _startup(start, imported, opened, warmed)


def shipyard_driver(dataset: str, warmup: str) -> tuple[Versioner, dict[str, float]]:
    """One ``Client()`` (embedded over the run's SHIPYARD_HOME) for the whole sequence."""
    start = time.perf_counter()
    from shipyard import Client

    imported = time.perf_counter()
    client = Client()
    client.datasets.list()
    opened = time.perf_counter()
    client.datasets.ingest(f"{dataset}-warmup", warmup, message="warm-up")
    warmed = time.perf_counter()

    def ingest(target: str, message: str) -> dict[str, Any]:
        begin = time.perf_counter()
        version = client.datasets.ingest(dataset, target, message=message)
        seconds = time.perf_counter() - begin
        return {"seconds": seconds, "rows": version.rows, "file_count": version.file_count}

    return ingest, _startup(start, imported, opened, warmed)


def _startup(start: float, imported: float, opened: float, warmed: float) -> dict[str, float]:
    return {"import_s": imported - start, "open_s": opened - imported, "warmup_s": warmed - opened}


def main() -> None:
    tool, where, warmup = sys.argv[1:4]
    # The tools print hints and progress on stdout; the protocol keeps the real one.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")

    try:
        make = dvc_driver if tool == "dvc" else shipyard_driver
        version, startup = make(where, warmup)
    except Exception:
        reply({"error": traceback.format_exc()})
        raise SystemExit(1) from None
    reply({"ready": tool} | startup)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply(version(request["target"], request["message"]))
        except Exception:
            reply({"error": traceback.format_exc()})


if __name__ == "__main__":
    main()
