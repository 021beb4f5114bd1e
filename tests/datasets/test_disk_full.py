"""A disk that fills during an ingest: a clear error, and nothing left behind.

The child process gets a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored), so every
write past 1 MiB fails the way a full disk makes it fail: an OSError from the write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
import numpy as np
from shipyard import Client
from shipyard.errors import Unavailable

client = Client()
client.datasets.list()  # the metadata store exists before the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
import pyarrow as pa
table = pa.table({"x": np.random.default_rng(0).normal(size=400_000)})
try:
    client.datasets.ingest("full", table)
except Unavailable as exc:
    print("REFUSED", exc.message)
    sys.exit(0)
print("NOT REFUSED")
sys.exit(1)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE semantics are Linux's")
def test_a_full_disk_leaves_no_version_and_no_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={"SHIPYARD_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REFUSED cannot write the data of 'full'" in done.stdout
    assert "No version was made" in done.stdout
    # Nothing half-written is left: no staged parts, no partial blobs, no blob at all.
    assert list((home / "tmp").iterdir()) == []
    blobs = home / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file()] == [blobs / "layout"]
    # And no dataset was made (it is created with its first version).
    from shipyard.config import Settings
    from shipyard.platform import Platform

    platform = Platform.from_settings(Settings(home=home))
    try:
        from tests.conftest import embedded_client

        with embedded_client(platform) as client:
            assert client.datasets.list().datasets == []
    finally:
        platform.close()


DOWNLOAD = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
import numpy as np
import pyarrow as pa
from shipyard import Client

import pyarrow.parquet as pq
client = Client()
src = sys.argv[2]
for name, rows in (("a", 10), ("b", 10), ("c", 400_000)):  # c is over the limit, read last
    table = pa.table({"x": np.random.default_rng(0).normal(size=rows)})
    pq.write_table(table, f"{src}/{name}.parquet")
client.datasets.ingest("big", src)
client.datasets.open("big")  # fetched into the home's cache before the disk "fills"
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
from shipyard.cli.main import main
sys.argv = ["shipyard", "data", "download", "big", sys.argv[1]]
main()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE semantics are Linux's")
def test_a_download_onto_a_full_disk_says_so_and_leaves_no_part(tmp_path: Path) -> None:
    dest, src = tmp_path / "out", tmp_path / "src"
    src.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", DOWNLOAD, str(dest), str(src)],
        env={"SHIPYARD_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "File too large: " in done.stderr and "Traceback" not in done.stderr
    # All or nothing: not the two small files either, nor a part; and the folder the
    # download made is gone with them.
    assert not dest.exists()
    assert "cache" not in done.stderr  # named after the file asked for, not the cache
    # A destination that is a file is named as such.
    (tmp_path / "afile").write_text("x")
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipyard.cli.main",
            "data",
            "download",
            "big",
            str(tmp_path / "afile"),
        ],
        env={"SHIPYARD_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "is a file; name a folder" in again.stderr, again.stderr
