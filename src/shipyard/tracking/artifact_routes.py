"""HTTP routes of run artifacts: streamed uploads and downloads, listing.

Bodies are never held whole in memory: an upload is read from the socket and
written to the blob store a few MiB at a time (the hashing and I/O in worker
threads, so the event loop keeps serving), and a download streams verified
chunks of the blob.
"""

from __future__ import annotations

import asyncio
import contextlib

import anyio
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.blobs import BlobRef
from shipyard.blobs.http import blob_response
from shipyard.errors import PayloadTooLarge
from shipyard.tracking import artifacts
from shipyard.tracking.artifact_types import ArtifactInfo
from shipyard.tracking.resolvers import run_project

router = APIRouter(tags=["artifacts"])

# Socket reads arrive in ~64 KiB pieces; they are gathered into this much before
# each hop to a worker thread, which keeps the per-hop overhead negligible. Small
# enough that hashing and writing keep pace with the socket from the first MiB and
# little is left to do after the last byte (measured: 1 MiB uploads 50 MB ~7% faster
# than 4 MiB).
WRITE_UNIT = 1024 * 1024


@router.put("/runs/{run_id}/artifacts/{path:path}")
async def upload_artifact(
    run_id: str,
    path: str,
    request: Request,
    ctx: RequestContext = require(Action.WRITE, run_project),
) -> ArtifactInfo:
    """Store the request body as the run's file ``path`` (replacing any earlier one)."""
    platform = ctx.platform
    limit = upload_limit(request, ctx)
    path = await run_in_threadpool(artifacts.check_upload, platform, run_id, path)
    blob = await receive_blob(request, ctx, limit)
    return await run_in_threadpool(artifacts.record_upload, ctx, run_id, path, blob)


def upload_limit(request: Request, ctx: RequestContext, what: str = "artifact") -> int:
    """The largest body an upload may have; PayloadTooLarge at once when the request
    announces more (before any work is done for it)."""
    limit = ctx.platform.settings.max_artifact_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes")
    return limit


async def receive_blob(request: Request, ctx: RequestContext, limit: int) -> BlobRef:
    """Stream the request body into the blob store (PayloadTooLarge past ``limit``),
    once the upload has its turn (``Platform.upload_turns``)."""
    async with ctx.platform.upload_turns.held():
        return await _receive_blob(request, ctx, limit)


async def _receive_blob(request: Request, ctx: RequestContext, limit: int) -> BlobRef:
    # Double-buffered: while a worker thread hashes and writes one unit, the loop
    # keeps reading the next from the socket. At most two units are in memory; a
    # unit goes to the worker as the list of socket reads (joining them would copy
    # every byte once more).
    loop = asyncio.get_running_loop()
    writer = await run_in_threadpool(ctx.platform.blobs.writer, max_bytes=limit)
    in_flight: asyncio.Future[None] | None = None
    try:
        pending: list[bytes] = []
        pending_size = received = 0
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise PayloadTooLarge(f"artifact is larger than the limit of {limit} bytes")
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= WRITE_UNIT:
                unit, pending, pending_size = pending, [], 0
                if in_flight is not None:
                    await in_flight
                in_flight = loop.run_in_executor(None, writer.write_all, unit)
        if in_flight is not None:
            await in_flight
            in_flight = None
        if pending:
            await run_in_threadpool(writer.write_all, pending)
        return await run_in_threadpool(writer.commit)
    except BaseException:
        # Also on a client disconnect or cancellation: never leave a partial blob.
        with anyio.CancelScope(shield=True):
            if in_flight is not None:
                with contextlib.suppress(BaseException):
                    await in_flight
            await run_in_threadpool(writer.abort)
        raise


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(
    run_id: str,
    path: str = Query("", description="Folder to list; '' is the run's root."),
    recursive: bool = Query(False, description="Every file below the folder instead."),
    ctx: RequestContext = require(Action.READ, run_project),
) -> list[ArtifactInfo]:
    """The direct children of a folder, like ``ls`` (a file path lists that file)."""
    return artifacts.list_artifacts(ctx.platform, run_id, path, recursive=recursive)


@router.get("/runs/{run_id}/artifacts/{path:path}", response_class=StreamingResponse)
def download_artifact(
    run_id: str, path: str, ctx: RequestContext = require(Action.READ, run_project)
) -> Response:
    """The file's bytes, verified against its hash, with ``X-Shipyard-Blob-Hash``."""
    info = artifacts.get_file(ctx.platform, run_id, path)
    assert info.hash is not None and info.size is not None
    return blob_response(ctx.platform.blobs, info.hash, info.size)
