"""Contract of the blob store, run against every backend (local folder, S3 on moto):
the ``store`` fixture of ``tests/blobs/conftest.py`` gives each in turn."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from blake3 import blake3
from tests.conftest import is_stored, s3_settings

from shipyard.blobs import BlobStore, open_blob_store
from shipyard.blobs.store import LAYOUT_FILE, SMALL_REMOTE
from shipyard.config import Settings
from shipyard.errors import IntegrityError, InvalidInput, NotFound, PayloadTooLarge

MiB = 1024 * 1024
# Chunks are 4 MiB and S3 parts 5 MiB; a few of them in flight at once is the budget.
FLAT_MEMORY = 32 * MiB

BAD_HASHES = [
    "",
    "abc",
    "../../etc/passwd",
    "A" * 64,
    "g" * 64,
    "0" * 63,
    "0" * 65,
    "0" * 62 + "/x",
    "0" * 63 + "\x00",
    "0" * 30 + "/../" + "0" * 30,
]


def stored_blobs(store: BlobStore) -> list[str]:
    """Every object under the store's root except in-flight temporaries."""
    return [p for p in store.fs.find(store.root) if is_stored(store, p)]


def temporaries(store: BlobStore) -> list[str]:
    return list(store.fs.find(f"{store.root}/tmp"))


def generated(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """``total`` bytes of varied but repeatable content, produced chunk by chunk."""
    block = blake3(b"shipyard test content").digest(length=chunk)
    for i in range(total // chunk):
        yield i.to_bytes(8, "big") + block[8:]


class TestBlobStore:
    """What every blob store backend must do (the ``store`` fixture: each backend)."""

    def test_round_trip(self, store: BlobStore, tmp_path: Path) -> None:
        data = os.urandom(3 * MiB + 17)
        ref = store.put_bytes(data)
        assert ref.hash == blake3(data).hexdigest()
        assert ref.size == len(data)
        assert store.exists(ref.hash)
        assert store.size(ref.hash) == len(data)
        assert store.read_bytes(ref.hash) == data
        assert b"".join(store.iter_chunks(ref.hash, chunk_size=MiB)) == data
        with store.open_raw(ref.hash) as f:
            assert f.read() == data
        store.copy_to(ref.hash, tmp_path / "out" / "copy.bin")
        assert (tmp_path / "out" / "copy.bin").read_bytes() == data
        src = tmp_path / "src.bin"
        src.write_bytes(data)
        assert store.put_file(src) == ref
        pieces = [data[:10], data[10 : 2 * MiB], data[2 * MiB :]]
        assert store.put_stream(iter(pieces)) == ref
        assert temporaries(store) == []

    @pytest.mark.parametrize("extra", [-1, 0, 1])
    def test_blobs_around_the_one_put_size(
        self, store: BlobStore, extra: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A remote store keeps up to SMALL_REMOTE bytes in memory and stores them by one
        # PUT; one byte more goes through a temporary object (as every blob does in a
        # local store). Either way: the same blob, nothing left behind, and an abort
        # leaves nothing at all.
        temporary = []
        real = store._open_tmp
        monkeypatch.setattr(store, "_open_tmp", lambda tmp: temporary.append(tmp) or real(tmp))
        data = os.urandom(SMALL_REMOTE + extra)
        writer = store.writer()
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
        ref = writer.commit()
        assert len(temporary) == (1 if store._local or extra > 0 else 0)
        assert (ref.hash, ref.size) == (blake3(data).hexdigest(), len(data))
        assert store.read_bytes(ref.hash) == data
        assert store.put_bytes(data) == ref  # the same content again: the same blob
        assert stored_blobs(store) == [store._path(ref.hash)]
        aborted = store.writer()
        aborted.write(os.urandom(len(data)))
        aborted.abort()
        assert stored_blobs(store) == [store._path(ref.hash)]
        assert temporaries(store) == []

    def test_a_stored_blob_of_another_size_is_replaced(self, store: BlobStore) -> None:
        # Larger than one PUT, so it goes through a temporary object on every backend.
        data = os.urandom(SMALL_REMOTE + MiB)
        ref = store.put_bytes(data)
        store.fs.pipe_file(store._path(ref.hash), data[:-1])
        with pytest.raises(IntegrityError):
            store.read_bytes(ref.hash)
        assert store.put_bytes(data) == ref  # stored again: that repairs it
        assert store.read_bytes(ref.hash) == data
        assert temporaries(store) == []

    def test_empty_blob(self, store: BlobStore) -> None:
        ref = store.put_bytes(b"")
        assert ref.size == 0
        assert store.read_bytes(ref.hash) == b""

    def test_identical_content_is_stored_once(self, store: BlobStore) -> None:
        a = store.put_bytes(b"same content")
        b = store.put_stream([b"same ", b"content"])
        other = store.put_bytes(b"other content")
        assert a == b
        assert other.hash != a.hash
        assert len(stored_blobs(store)) == 2

    def test_missing_blob_is_not_found(self, store: BlobStore) -> None:
        digest = blake3(b"never stored").hexdigest()
        assert not store.exists(digest)
        with pytest.raises(NotFound):
            store.size(digest)
        with pytest.raises(NotFound):
            store.read_bytes(digest)

    def test_large_blob_streams_with_flat_memory(self, store: BlobStore) -> None:
        # moto holds objects in memory behind a Python HTTP server: smaller keeps the
        # suite quick while still spanning many multipart parts and ranged reads.
        large = 200 * MiB if store.fs.protocol in ("file", ("file", "local")) else 128 * MiB
        expected = blake3()
        for chunk in generated(large):
            expected.update(chunk)
        tracemalloc.start()
        try:
            ref = store.put_stream(generated(large))
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            seen = blake3()
            total = 0
            for chunk in store.iter_chunks(ref.hash):
                seen.update(chunk)
                total += len(chunk)
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert ref == type(ref)(expected.hexdigest(), large)
        assert (total, seen.hexdigest()) == (large, ref.hash)
        # Flat: a few chunks (or S3 parts) in flight, whatever the blob's size.
        assert put_peak < FLAT_MEMORY, put_peak
        assert read_peak < FLAT_MEMORY, read_peak

    @pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
    def test_corruption_is_detected_on_read(
        self, store: BlobStore, tmp_path: Path, damage: str
    ) -> None:
        data = os.urandom(64 * 1024)
        ref = store.put_bytes(data)
        bad = {
            "flip": data[:100] + bytes([data[100] ^ 1]) + data[101:],
            "truncate": data[:-1],
            "extend": data + b"x",
        }[damage]
        store.fs.pipe_file(store._path(ref.hash), bad)
        with pytest.raises(IntegrityError):
            store.read_bytes(ref.hash)
        received = bytearray()
        with pytest.raises(IntegrityError):
            for chunk in store.iter_chunks(ref.hash, chunk_size=4096):
                received += chunk
        # The last chunk is held back until verified: never the whole corrupt content.
        assert len(received) < len(bad)
        with pytest.raises(IntegrityError):
            store.copy_to(ref.hash, tmp_path / "out" / "dest.bin")
        assert list((tmp_path / "out").iterdir()) == []

    @pytest.mark.parametrize("bad", BAD_HASHES)
    def test_bad_hash_strings_are_refused(self, store: BlobStore, bad: str) -> None:
        before = stored_blobs(store)
        for call in (store.exists, store.size, store.open_raw, store.read_bytes):
            with pytest.raises(InvalidInput):
                call(bad)
        with pytest.raises(InvalidInput):
            next(store.iter_chunks(bad))
        assert stored_blobs(store) == before

    def test_concurrent_puts_of_the_same_content(self, store: BlobStore) -> None:
        data = os.urandom(6 * MiB)
        with ThreadPoolExecutor(max_workers=8) as pool:
            refs = list(pool.map(lambda _: store.put_bytes(data), range(8)))
        assert len(set(refs)) == 1
        assert len(stored_blobs(store)) == 1
        assert temporaries(store) == []
        assert store.read_bytes(refs[0].hash) == data

    def test_over_the_limit_stores_nothing(self, store: BlobStore) -> None:
        with pytest.raises(PayloadTooLarge):
            store.put_stream(generated(8 * MiB), max_bytes=5 * MiB)
        assert stored_blobs(store) == []
        assert temporaries(store) == []
        assert (
            store.put_bytes(
                b"12345",
            ).size
            == 5
        )

    def test_aborted_writer_stores_nothing(self, store: BlobStore) -> None:
        writer = store.writer()
        writer.write(os.urandom(6 * MiB))
        writer.abort()
        writer.abort()
        with pytest.raises(RuntimeError), store.writer() as w:
            w.write(b"half")
            raise RuntimeError("source failed")
        assert stored_blobs(store) == []
        assert temporaries(store) == []


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://"])
def test_unsupported_blob_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidInput):
        open_blob_store(Settings(home=tmp_path, blob_url=url))


class TestLocalContentAlreadyStored:
    """A local store keeps a blob it already holds rather than renaming a new copy over
    it (on ext4 that rename flushes the new copy to disk first); a stored copy of the
    wrong size is replaced, which repairs it."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return open_blob_store(Settings(home=tmp_path / "home"))

    @pytest.mark.parametrize("how", ["writer", "file", "moved file"])
    def test_the_stored_copy_is_kept(self, store: BlobStore, tmp_path: Path, how: str) -> None:
        data = os.urandom(MiB + 3)
        ref = store.put_bytes(data)
        stored = Path(store._path(ref.hash))
        inode = stored.stat().st_ino
        src = tmp_path / "src"
        src.write_bytes(data)
        if how == "writer":
            again = store.put_stream([data[:MiB], data[MiB:]])
        else:
            again = store.put_file(src, move=how == "moved file")
        assert again == ref
        assert stored.stat().st_ino == inode
        assert temporaries(store) == []
        assert store.read_bytes(ref.hash) == data
        assert src.exists() == (how != "moved file")

    @pytest.mark.parametrize("damage", ["truncate", "extend"])
    def test_a_stored_copy_of_another_size_is_replaced(self, store: BlobStore, damage: str) -> None:
        data = os.urandom(MiB)
        ref = store.put_bytes(data)
        stored = Path(store._path(ref.hash))
        stored.write_bytes(data[:-1] if damage == "truncate" else data + b"x")
        with pytest.raises(IntegrityError):
            store.read_bytes(ref.hash)
        assert store.put_stream([data]) == ref
        assert store.read_bytes(ref.hash) == data
        assert temporaries(store) == []


@pytest.mark.s3
def test_s3_requests_carry_no_checksum_headers_and_a_signed_payload(
    s3_endpoint: str, tmp_path: Path
) -> None:
    """botocore's CRC32 headers (refused by several S3-compatible stores) are not sent;
    the payload's SHA-256 is still signed, and the blob checked by BLAKE3 on read."""
    store = open_blob_store(Settings(home=tmp_path / "home", **s3_settings(s3_endpoint)))
    store.fs.ls(store.root.split("/")[0])  # connects the client
    sent: list[dict[str, bytes]] = []
    store.fs.s3.meta.events.register(
        "before-send.s3.*", lambda request, **_: sent.append(dict(request.headers))
    )
    data = os.urandom(MiB)
    ref = store.put_bytes(data)
    assert store.read_bytes(ref.hash) == data
    assert sent
    assert not [h for headers in sent for h in headers if "checksum" in h.lower()]
    signed = {headers["X-Amz-Content-SHA256"] for headers in sent}
    assert hashlib.sha256(data).hexdigest().encode() in signed


class TestLayout:
    """Where blobs lie: a new local store puts each under one folder level (and says so
    in its ``layout`` file); a local store made before that file, and S3, under two."""

    def test_a_new_local_store_is_one_level_deep(self, tmp_path: Path) -> None:
        root = tmp_path / "home" / "blobs"
        store = open_blob_store(Settings(home=tmp_path / "home"))
        ref = store.put_bytes(b"one level")
        digest = ref.hash
        assert (root / LAYOUT_FILE).read_text() == "1\n"
        assert (root / digest[:2] / digest).read_bytes() == b"one level"
        assert sorted(p.name for p in root.iterdir()) == sorted([digest[:2], LAYOUT_FILE, "tmp"])
        again = open_blob_store(Settings(home=tmp_path / "home"))
        assert again.read_bytes(digest) == b"one level"

    def test_a_local_store_made_before_the_layout_file_keeps_two_levels(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "home" / "blobs"
        old = blake3(b"stored by an earlier version").hexdigest()
        (root / old[:2] / old[2:4]).mkdir(parents=True)
        (root / old[:2] / old[2:4] / old).write_bytes(b"stored by an earlier version")
        (root / "tmp").mkdir()
        store = open_blob_store(Settings(home=tmp_path / "home"))
        assert store.read_bytes(old) == b"stored by an earlier version"
        new = store.put_bytes(b"stored now").hash
        assert (root / new[:2] / new[2:4] / new).read_bytes() == b"stored now"
        assert not (root / LAYOUT_FILE).exists()

    def test_stores_opened_at_once_on_a_new_folder_agree(self, tmp_path: Path) -> None:
        settings = Settings(home=tmp_path / "home")
        with ThreadPoolExecutor(8) as pool:
            stores = list(pool.map(lambda _: open_blob_store(settings), range(8)))
        digests = [s.put_bytes(f"blob {i}".encode()).hash for i, s in enumerate(stores)]
        assert {s._flat for s in stores} == {True}
        for store in stores:
            assert [store.read_bytes(d) for d in digests] == [
                f"blob {i}".encode() for i in range(8)
            ]
        assert [p.name for p in (tmp_path / "home" / "blobs" / "tmp").iterdir()] == []

    def test_s3_keeps_two_levels(self, s3_endpoint: str, tmp_path: Path) -> None:
        store = open_blob_store(Settings(home=tmp_path / "home", **s3_settings(s3_endpoint)))
        digest = store.put_bytes(b"on s3").hash
        assert store.fs.cat_file(f"{store.root}/{digest[:2]}/{digest[2:4]}/{digest}") == b"on s3"
        assert not store.fs.exists(f"{store.root}/{LAYOUT_FILE}")
