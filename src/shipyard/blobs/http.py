"""Send a stored blob as an HTTP response, verified against its hash.

Small blobs are read and verified before the status line goes out, so a
corrupt one is answered with a clean ``integrity_error``. Large ones stream;
``BlobStore.iter_chunks`` holds its last chunk back until the hash has been
checked, so a corrupt blob ends as a cut connection, never a complete body.
"""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from shipyard.blobs import BlobStore
from shipyard.hashing import HASH_HEADER

# Up to this size the blob is verified in memory before answering.
VERIFY_FIRST_BYTES = 8 * 1024 * 1024


def blob_response(blobs: BlobStore, digest: str, size: int) -> Response:
    """The blob's bytes with ``X-Shipyard-Blob-Hash`` (and its length when streamed)."""
    headers = {HASH_HEADER: digest}
    if size <= VERIFY_FIRST_BYTES:
        data = blobs.read_bytes(digest)
        return Response(data, media_type="application/octet-stream", headers=headers)
    headers["content-length"] = str(size)
    return StreamingResponse(
        blobs.iter_chunks(digest), media_type="application/octet-stream", headers=headers
    )
