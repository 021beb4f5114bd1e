"""Send a stored blob as an HTTP response, verified against its hash.

Small blobs are read and verified before the status line goes out, so a
corrupt one is answered with a clean ``integrity_error``. Large ones stream;
``BlobStore.iter_chunks`` holds its last chunk back until the hash has been
checked, so a corrupt blob ends as a cut body (:class:`BodyCut`), never a complete
one. A client that verifies (the SDK) asks again after a cut with
``X-Shipyard-Verify-First``: that request has the blob checked before the status
line, so the corrupt blob is answered as a clean ``integrity_error`` too, and an
intact one (the cut was the network's) streams again. An intact blob is read once
on the first request: only a retry pays for the second read.
"""

from __future__ import annotations

from collections.abc import Iterator

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from shipyard.blobs import BlobStore
from shipyard.errors import IntegrityError
from shipyard.hashing import HASH_HEADER, VERIFY_FIRST_HEADER

# Up to this size the blob is verified in memory before answering.
VERIFY_FIRST_BYTES = 8 * 1024 * 1024


class BodyCut(Exception):
    """A streamed blob turned out corrupt after its status line went out, so its body
    is cut short. Not a ShipyardError on purpose: once a response has started, no
    error handler can answer, and the server's error layer ends the response quietly
    (``server/errors.py``) instead of logging a traceback."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} is corrupt: its content hash differs")
        self.digest = digest


def blob_response(blobs: BlobStore, digest: str, size: int) -> Response:
    """The blob's bytes with ``X-Shipyard-Blob-Hash`` (and its length when streamed)."""
    headers = {HASH_HEADER: digest}
    if size <= VERIFY_FIRST_BYTES:
        data = blobs.read_bytes(digest)
        return Response(data, media_type="application/octet-stream", headers=headers)
    headers["content-length"] = str(size)
    return _BlobStream(blobs, digest, headers)


class _BlobStream(StreamingResponse):
    """A large blob, streamed and verified as it goes (see the module's docstring)."""

    def __init__(self, blobs: BlobStore, digest: str, headers: dict[str, str]) -> None:
        super().__init__(
            _cut_when_corrupt(blobs, digest), media_type="application/octet-stream", headers=headers
        )
        self._blobs = blobs
        self._digest = digest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = VERIFY_FIRST_HEADER.lower().encode()
        if any(name == wanted for name, _ in scope.get("headers", ())):
            # Raised before the status line: answered by the error handlers as usual.
            await run_in_threadpool(_verify, self._blobs, self._digest)
        await super().__call__(scope, receive, send)


def _verify(blobs: BlobStore, digest: str) -> None:
    for _ in blobs.iter_chunks(digest):
        pass


def _cut_when_corrupt(blobs: BlobStore, digest: str) -> Iterator[bytes]:
    try:
        yield from blobs.iter_chunks(digest)
    except IntegrityError:
        raise BodyCut(digest) from None
