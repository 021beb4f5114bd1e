"""``blob_response`` end to end: a large blob found corrupt while it streams, in both
SDK modes (embedded in-process, remote over real HTTP)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import stored_blob

from shipyard.blobs.http import VERIFY_FIRST_BYTES, VERIFY_FIRST_HEADER
from shipyard.client import Client
from shipyard.errors import IntegrityError

SIZE = VERIFY_FIRST_BYTES + 1024 * 1024  # streamed, not verified in memory first


def _big_artifact(client: Client, tmp_path: Path) -> tuple[str, str, bytes]:
    """A run with one artifact over VERIFY_FIRST_BYTES: (run id, its hash, its bytes)."""
    data = os.urandom(SIZE)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    run_id = client.runs.create("blobs-http").id
    info = client.artifacts.upload_file(run_id, local)
    assert info.hash is not None
    return run_id, info.hash, data


def _tamper(client: Client, digest: str) -> None:
    stored = stored_blob(client.settings, digest)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))


def _requests(client: Client) -> list[httpx.Request]:
    seen: list[httpx.Request] = []
    client.api.http.event_hooks["request"].append(seen.append)
    return seen


def test_corrupt_large_artifact_is_an_integrity_error(
    client: Client, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_id, digest, _ = _big_artifact(client, tmp_path)
    _tamper(client, digest)
    capfd.readouterr()

    with pytest.raises(IntegrityError, match=f"blob {digest} is corrupt"):
        client.artifacts.download(run_id, "big.bin", tmp_path / "out.bin")
    with pytest.raises(IntegrityError, match=f"blob {digest} is corrupt"):
        client.artifacts.read_bytes(run_id, "big.bin")

    assert not (tmp_path / "out.bin").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    err = capfd.readouterr().err
    assert "Traceback" not in err
    if client.embedded:
        assert err == ""


class _CutFirstBody(httpx.BaseTransport):
    """The network failing once: the first body of a ``big.bin`` breaks off after a chunk."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.cut = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.cut or not request.url.path.endswith("/big.bin"):
            return response
        self.cut = True
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_BrokenStream(response.stream),  # type: ignore[arg-type]
            request=request,
        )


class _BrokenStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            yield chunk
            raise httpx.ReadError("connection reset by peer")

    def close(self) -> None:
        self.inner.close()


def test_intact_large_blob_is_read_once_and_a_cut_is_asked_again(
    client: Client, tmp_path: Path
) -> None:
    run_id, _, data = _big_artifact(client, tmp_path)
    requests = _requests(client)
    out = client.artifacts.download(run_id, "big.bin", tmp_path / "out.bin")
    assert out.read_bytes() == data
    downloads = [r for r in requests if r.url.path.endswith("/big.bin")]
    # The benchmarked path: one request, no check before the body.
    assert len(downloads) == 1 and VERIFY_FIRST_HEADER not in downloads[0].headers

    # A body the network cut is asked for once more (checked first), then complete.
    http = client.api.http
    http._transport = _CutFirstBody(http._transport)
    requests.clear()
    out = client.artifacts.download(run_id, "big.bin", tmp_path / "again.bin")
    assert out.read_bytes() == data
    downloads = [r for r in requests if r.url.path.endswith("/big.bin")]
    assert [VERIFY_FIRST_HEADER in r.headers for r in downloads] == [False, True]


def test_server_cuts_a_corrupt_stream_and_answers_a_checked_request_cleanly(
    client: Client, tmp_path: Path
) -> None:
    run_id, digest, data = _big_artifact(client, tmp_path)
    path = f"/api/v1/runs/{run_id}/artifacts/big.bin"
    http = client.api.http
    # Intact: asked to check first, the server still sends the whole body.
    checked = http.get(path, headers={VERIFY_FIRST_HEADER: "1"})
    assert checked.status_code == 200 and checked.content == data

    _tamper(client, digest)
    # A client that does not verify (curl, mlflow) never gets a complete body.
    with pytest.raises(httpx.TransportError):
        http.get(path)
    checked = http.get(path, headers={VERIFY_FIRST_HEADER: "1"})
    assert checked.status_code == 500
    assert checked.json()["error"]["code"] == "integrity_error"
    assert digest in checked.json()["error"]["message"]
