"""Run artifacts through the SDK, embedded and remote: streamed, verified, confined."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from blake3 import blake3
from tests.conftest import StoredBlob, embedded_client, stored_blobs_of

from shipyard.client import Client
from shipyard.client.api import API_PREFIX
from shipyard.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ShipyardError,
)
from shipyard.platform import Platform
from shipyard.tracking import artifacts
from shipyard.tracking.artifact_types import ArtifactInfo
from shipyard.tracking.tables import ArtifactRow

MiB = 1024 * 1024


@pytest.fixture
def run_id(client: Client) -> str:
    return client.runs.create("artifacts").id


def stored_blobs(client: Client) -> list[StoredBlob]:
    return stored_blobs_of(client.settings)


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


TREE = {"a.txt": b"alpha", "sub/b.bin": os.urandom(1000), "sub/deep/c.txt": b"gamma"}


def test_upload_file_and_read_back(client: Client, run_id: str, tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_bytes(b"hello artifacts")
    info = client.artifacts.upload_file(run_id, src)
    assert info == ArtifactInfo(
        path="notes.txt", is_dir=False, size=15, hash=blake3(b"hello artifacts").hexdigest()
    )
    nested = client.artifacts.upload_file(run_id, src, "docs/v1")
    assert nested.path == "docs/v1/notes.txt"
    assert client.artifacts.read_bytes(run_id, "notes.txt") == b"hello artifacts"
    assert client.artifacts.read_bytes(run_id, "docs/v1/notes.txt") == b"hello artifacts"
    # Same content twice: one blob.
    assert len(stored_blobs(client)) == 1


def test_upload_folder_and_list(client: Client, run_id: str, tmp_path: Path) -> None:
    local = make_tree(tmp_path / "local", TREE)
    infos = client.artifacts.upload_dir(run_id, local, "data")
    assert [i.path for i in infos] == ["data/a.txt", "data/sub/b.bin", "data/sub/deep/c.txt"]
    assert client.artifacts.list(run_id) == [ArtifactInfo(path="data", is_dir=True)]
    listed = client.artifacts.list(run_id, "data")
    assert [(i.path, i.is_dir, i.size) for i in listed] == [
        ("data/a.txt", False, 5),
        ("data/sub", True, None),
    ]
    assert client.artifacts.list(run_id, "data/sub/") == client.artifacts.list(run_id, "data/sub")
    assert [i.path for i in client.artifacts.list(run_id, "data/sub")] == [
        "data/sub/b.bin",
        "data/sub/deep",
    ]
    assert [i.path for i in client.artifacts.list(run_id, "data/a.txt")] == ["data/a.txt"]
    with pytest.raises(NotFound):
        client.artifacts.list(run_id, "nothing/here")


def test_empty_run_lists_nothing(client: Client, run_id: str) -> None:
    assert client.artifacts.list(run_id) == []


def test_download_file_and_folder(client: Client, run_id: str, tmp_path: Path) -> None:
    make_tree(tmp_path / "local", TREE)
    client.artifacts.upload_dir(run_id, tmp_path / "local", "data")
    into_dir = tmp_path / "into"
    into_dir.mkdir()
    got = client.artifacts.download(run_id, "data/sub/b.bin", into_dir)
    assert got == into_dir / "b.bin"
    assert got.read_bytes() == TREE["sub/b.bin"]
    named = client.artifacts.download(run_id, "data/a.txt", tmp_path / "renamed.txt")
    assert named.read_bytes() == b"alpha"
    folder = client.artifacts.download(run_id, "data/sub", tmp_path / "sub-copy")
    assert tree_of(folder) == {"b.bin": TREE["sub/b.bin"], "deep/c.txt": b"gamma"}
    whole = client.artifacts.download(run_id, "", tmp_path / "whole")
    assert tree_of(whole) == {f"data/{k}": v for k, v in TREE.items()}
    with pytest.raises(NotFound):
        client.artifacts.download(run_id, "data/missing", tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_large_file_streams_both_ways(client: Client, run_id: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(20):
            f.write(os.urandom(MiB))
    info = client.artifacts.upload_file(run_id, big, "models")
    assert info.size == 20 * MiB
    out = client.artifacts.download(run_id, "models/big.bin", tmp_path / "back.bin")
    assert blake3(out.read_bytes()).hexdigest() == info.hash


def test_upload_again_replaces_and_is_audited(client: Client, run_id: str, tmp_path: Path) -> None:
    src = tmp_path / "model.txt"
    src.write_bytes(b"version one")
    first = client.artifacts.upload_file(run_id, src)
    src.write_bytes(b"version two, longer")
    second = client.artifacts.upload_file(run_id, src)
    assert second.hash != first.hash
    assert client.artifacts.list(run_id) == [second]
    assert client.artifacts.read_bytes(run_id, "model.txt") == b"version two, longer"
    events = client.audit.list(action="artifacts.upload", object_id=run_id)
    assert [e.details["hash"] for e in events] == [second.hash, first.hash]


def test_file_and_folder_cannot_share_a_path(client: Client, run_id: str, tmp_path: Path) -> None:
    make_tree(tmp_path / "local", {"x": b"file", "d/y": b"in folder", "other/d": b"clash"})
    client.artifacts.upload_file(run_id, tmp_path / "local" / "x")
    client.artifacts.upload_file(run_id, tmp_path / "local" / "d" / "y", "d")
    with pytest.raises(Conflict):  # 'x' is a file, so nothing can live under it
        client.artifacts.upload_file(run_id, tmp_path / "local" / "d" / "y", "x")
    with pytest.raises(Conflict):  # 'd' is a folder, so it cannot become a file
        client.artifacts.upload_file(run_id, tmp_path / "local" / "other" / "d")
    assert [(i.path, i.is_dir) for i in client.artifacts.list(run_id)] == [
        ("d", True),
        ("x", False),
    ]


BAD_PATHS = [
    "../escape",
    "a/../../escape",
    "a//b",
    "./a",
    "a/./b",
    "a\\b",
    "a\x00b",
    "a\x1fb",
    "a\x7fb",
    "a\nb",
    "x" * 1001,
]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_client_refuses_bad_paths(client: Client, run_id: str, tmp_path: Path, bad: str) -> None:
    src = tmp_path / "f.txt"
    src.write_bytes(b"data")
    with pytest.raises(InvalidInput):
        client.artifacts.upload_file(run_id, src, bad)
    with pytest.raises(InvalidInput):
        client.artifacts.read_bytes(run_id, bad)
    assert client.artifacts.list(run_id) == []
    assert stored_blobs(client) == []


# Sent raw, percent-encoded so no URL layer can tidy them up: the server must refuse.
RAW_BAD_PATHS = [
    "%2E%2E/escape",
    "a/%2E%2E/%2E%2E/escape",
    "a//b",
    "%2Fabsolute",
    "a%5Cb",
    "a%00b",
    "a/%2E/b",
    "x" * 1001,
]


@pytest.mark.parametrize("bad", RAW_BAD_PATHS)
def test_server_refuses_bad_paths(client: Client, run_id: str, bad: str) -> None:
    url = httpx.URL(client.api.http.base_url.join(f"{API_PREFIX}/runs/{run_id}/artifacts/"))
    url = url.copy_with(raw_path=url.raw_path + bad.encode())
    response = client.api.http.put(url, content=b"payload")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    get = client.api.http.get(url)
    assert get.status_code == 400
    assert client.artifacts.list(run_id) == []
    assert stored_blobs(client) == []


def test_unknown_run_is_not_found(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_bytes(b"data")
    missing = "0" * 32
    with pytest.raises(NotFound):
        client.artifacts.upload_file(missing, src)
    with pytest.raises(NotFound):
        client.artifacts.list(missing)
    with pytest.raises(NotFound):
        client.artifacts.read_bytes(missing, "f.txt")
    with pytest.raises(NotFound):
        client.artifacts.download(missing, "f.txt", tmp_path / "out")
    assert stored_blobs(client) == []


def test_deleted_run_takes_no_artifacts(client: Client, run_id: str, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_bytes(b"data")
    client.runs.delete(run_id)
    with pytest.raises(Conflict):
        client.artifacts.upload_file(run_id, src)
    client.runs.restore(run_id)
    assert client.artifacts.upload_file(run_id, src).path == "f.txt"


def test_too_large_upload_is_refused(client: Client, run_id: str, tmp_path: Path) -> None:
    client.settings.max_artifact_bytes = 1000
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(5000))
    with pytest.raises(PayloadTooLarge):  # streamed: refused while counting
        client.artifacts.upload_file(run_id, src)
    # With a Content-Length the server refuses before reading the body.
    declared = client.api.http.put(
        f"{API_PREFIX}/runs/{run_id}/artifacts/big.bin", content=src.read_bytes()
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"
    assert client.artifacts.list(run_id) == []
    assert stored_blobs(client) == []
    src.write_bytes(os.urandom(1000))
    assert client.artifacts.upload_file(run_id, src).size == 1000


@pytest.mark.parametrize("size", [1000, 10 * MiB])
def test_corrupt_blob_is_never_delivered(
    client: Client, run_id: str, tmp_path: Path, size: int
) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(size))
    client.artifacts.upload_file(run_id, src)
    (blob,) = stored_blobs(client)
    damaged = bytearray(blob.read_bytes())
    damaged[size // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    # Small files are verified before the reply: a clean integrity error. Large ones
    # stream and are cut short before their last chunk: the transfer fails.
    expected: type[ShipyardError] = IntegrityError if size <= MiB else ShipyardError
    with pytest.raises(expected):
        client.artifacts.read_bytes(run_id, "f.bin")
    with pytest.raises(expected):
        client.artifacts.download(run_id, "f.bin", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    # No partial download left beside the source ("home" exists only for local blobs).
    assert {p.name for p in tmp_path.iterdir()} - {"home"} == {"f.bin"}


# --- A server whose records were tampered with: the client still stays inside dest ---


@pytest.fixture
def tampered(platform: Platform) -> tuple[Client, Platform]:
    return embedded_client(platform), platform


def _plant(platform: Platform, run_id: str, path: str, data: bytes) -> None:
    """Write an artifact record the API would refuse, as a compromised database might."""
    ref = platform.blobs.put_bytes(data)
    with platform.db.write() as session:
        session.add(
            ArtifactRow(run_id=run_id, path=path, blob_hash=ref.hash, size=ref.size, created_at=0)
        )


@pytest.mark.parametrize("evil", ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt"])
def test_download_refuses_paths_escaping_dest(
    tampered: tuple[Client, Platform], tmp_path: Path, evil: str
) -> None:
    client, platform = tampered
    run_id = client.runs.create("artifacts").id
    _plant(platform, run_id, "ok.txt", b"fine")
    _plant(platform, run_id, evil, b"evil")
    dest = tmp_path / "dest"
    with pytest.raises(InvalidInput):
        client.artifacts.download(run_id, "", dest)
    assert not dest.exists()
    assert not (tmp_path / "escape.txt").exists()


def test_download_refuses_symlinks_leading_out_of_dest(
    tampered: tuple[Client, Platform], tmp_path: Path
) -> None:
    client, platform = tampered
    run_id = client.runs.create("artifacts").id
    _plant(platform, run_id, "link/x.txt", b"evil")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(outside)
    with pytest.raises(InvalidInput):
        client.artifacts.download(run_id, "", dest)
    assert list(outside.iterdir()) == []


def test_files_under_for_the_registry(tampered: tuple[Client, Platform], tmp_path: Path) -> None:
    client, platform = tampered
    run_id = client.runs.create("artifacts").id
    make_tree(tmp_path / "m", {"model.pkl": b"weights", "meta/info.json": b"{}"})
    client.artifacts.upload_dir(run_id, tmp_path / "m", "model")
    client.artifacts.upload_file(run_id, tmp_path / "m" / "model.pkl", "other")
    with platform.db.read() as session:
        under = artifacts.files_under(session, run_id, "model")
        single = artifacts.files_under(session, run_id, "model/model.pkl")
        missing = artifacts.files_under(session, run_id, "nope")
    h = {k: blake3(v).hexdigest() for k, v in {"w": b"weights", "j": b"{}"}.items()}
    assert under == [("meta/info.json", h["j"], 2), ("model.pkl", h["w"], 7)]
    assert single == [("model.pkl", h["w"], 7)]
    assert missing == []
