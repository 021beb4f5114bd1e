"""HTTP routes of datasets: thin calls into the service modules.

Permissions: reading, diffing and re-validating need READ; creating datasets and
versions, uploading their files, and moving tags need WRITE (editor); deleting a whole
dataset needs MANAGE (project admin). Dataset files are uploaded by content hash to the
project (``/dataset-blobs``) before the version that lists them is made.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.loopback import IN_PROCESS
from shipyard.auth.principal import Action
from shipyard.blobs.http import blob_response
from shipyard.blobs.store import check_hash
from shipyard.datasets import analysis, service, versions
from shipyard.datasets.types import (
    Dataset,
    DatasetCreate,
    DatasetPage,
    DatasetVersion,
    DatasetVersionDetail,
    ExpectationSuite,
    Lineage,
    ReaderPage,
    ValidationReport,
    VersionCreate,
    VersionDiff,
    VersionPage,
)
from shipyard.errors import InvalidInput
from shipyard.projects.resolvers import project_from_path
from shipyard.tracking.artifact_routes import receive_blob, upload_limit
from shipyard.turns import JOIN_UNITS

router = APIRouter(tags=["datasets"])

MAX_JOINED_PIECES = 100_000
"""Pieces one blob may be joined from (400 GB in pieces of 4 MiB, the average where
row groups are small)."""

DATASETS = "/projects/{project}/datasets"
DATASET = DATASETS + "/{name}"
VERSION = DATASET + "/versions/{version}"
BLOBS = "/projects/{project}/dataset-blobs"
# Dataset names start with a letter or digit, so "-" is free for project-wide calls.
DATASETS_ANY = DATASETS + "/-"


class DatasetUpdate(BaseModel):
    description: str | None = None
    expectations: ExpectationSuite | None = None


class Hashes(BaseModel):
    hashes: list[str]


class MissingBlobs(BaseModel):
    missing: list[str]


class JoinedBlob(BaseModel):
    """A blob to keep as the join of pieces the project holds, in order."""

    hash: str
    pieces: list[tuple[str, int]] = Field(
        min_length=1,
        max_length=MAX_JOINED_PIECES,
        description="[hash, size] of each piece, as uploaded to /dataset-blobs.",
    )


class StoredBlob(BaseModel):
    hash: str
    size: int


class TagSet(BaseModel):
    version: int | str


def _pid(ctx: RequestContext) -> int:
    assert ctx.project_id is not None
    return ctx.project_id


@router.post(DATASETS, status_code=201)
def create_dataset(
    project: str,
    spec: DatasetCreate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> Dataset:
    return service.create_dataset(ctx, spec)


@router.get(DATASETS)
def list_datasets(
    project: str,
    query: str | None = Query(None, description="Substring of the name (any case)."),
    max_results: int = 100,
    page_token: str | None = None,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> DatasetPage:
    return service.list_datasets(
        ctx.platform, _pid(ctx), query=query, max_results=max_results, page_token=page_token
    )


@router.get(DATASET)
def get_dataset(
    project: str, name: str, ctx: RequestContext = require(Action.READ, project_from_path)
) -> Dataset:
    return service.get_dataset(ctx.platform, _pid(ctx), name)


@router.patch(DATASET)
def update_dataset(
    project: str,
    name: str,
    spec: DatasetUpdate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> Dataset:
    return service.update_dataset(
        ctx, name, description=spec.description, expectations=spec.expectations
    )


@router.delete(DATASET, status_code=204)
def delete_dataset(
    project: str, name: str, ctx: RequestContext = require(Action.MANAGE, project_from_path)
) -> None:
    service.delete_dataset(ctx, name)


# --- versions --------------------------------------------------------------------------


@router.post(DATASET + "/versions", status_code=201)
def create_version(
    project: str,
    name: str,
    spec: VersionCreate,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> DatasetVersion:
    return versions.create_version(ctx, name, spec)


@router.get(DATASET + "/versions")
def list_versions(
    project: str,
    name: str,
    max_results: int = 100,
    page_token: str | None = None,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> VersionPage:
    return versions.list_versions(
        ctx.platform, _pid(ctx), name, max_results=max_results, page_token=page_token
    )


@router.get(VERSION)
def get_version(
    project: str,
    name: str,
    version: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> DatasetVersionDetail:
    """A version by number or tag (``latest``, ``prod``), with files, profile and report."""
    return versions.get_version(ctx.platform, _pid(ctx), name, version)


@router.get(VERSION + "/lineage")
def get_lineage(
    project: str,
    name: str,
    version: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> Lineage:
    """The versions it was made from, those made from it, and the newest runs that read
    it with their count (all of them: ``/readers``)."""
    return versions.lineage(ctx.platform, _pid(ctx), name, version)


@router.get(VERSION + "/readers")
def list_readers(
    project: str,
    name: str,
    version: str,
    max_results: int = 100,
    page_token: str | None = None,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> ReaderPage:
    """Every run that read the version, newest first, a page at a time."""
    return versions.readers(
        ctx.platform, _pid(ctx), name, version, max_results=max_results, page_token=page_token
    )


@router.get(VERSION + "/files/{path:path}", response_class=StreamingResponse)
def download_file(
    project: str,
    name: str,
    version: str,
    path: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> Response:
    """One Parquet file of the version, verified, with ``X-Shipyard-Blob-Hash``."""
    found = versions.version_file(ctx.platform, _pid(ctx), name, version, path)
    return blob_response(ctx.platform.blobs, found.hash, found.size)


@router.post(VERSION + "/validate")
def validate_version(
    project: str,
    name: str,
    version: str,
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> ValidationReport:
    """Judge the version against the dataset's current expectations (nothing is stored)."""
    return analysis.validate_version(ctx.platform, _pid(ctx), name, version)


@router.get(DATASET + "/diff")
def diff_versions(
    project: str,
    name: str,
    old: str = Query(..., description="Version number or tag."),
    new: str = Query(..., description="Version number or tag."),
    key: list[str] = Query([], description="Key column(s): compare rows by them."),
    samples: int = Query(5, ge=0, le=100),
    ctx: RequestContext = require(Action.READ, project_from_path),
) -> VersionDiff:
    """Schema, row-count and per-column profile changes; rows added, removed and changed
    when key columns are given."""
    return analysis.diff(ctx.platform, _pid(ctx), name, old, new, keys=key, samples=samples)


@router.put(DATASET + "/tags/{tag}")
def set_tag(
    project: str,
    name: str,
    tag: str,
    spec: TagSet,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> DatasetVersion:
    return versions.set_tag(ctx, name, tag, spec.version)


@router.delete(DATASET + "/tags/{tag}", status_code=204)
def delete_tag(
    project: str,
    name: str,
    tag: str,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> None:
    versions.delete_tag(ctx, name, tag)


# --- the project's dataset files, by content hash ---------------------------------------


@router.post(DATASETS_ANY + "/missing-blobs")
def missing_blobs(
    project: str, spec: Hashes, ctx: RequestContext = require(Action.WRITE, project_from_path)
) -> MissingBlobs:
    """Which of these hashes the project has not stored yet: upload only those."""
    return MissingBlobs(missing=service.missing_blobs(ctx.platform, _pid(ctx), spec.hashes))


@router.post(DATASETS_ANY + "/claim-blobs")
def claim_blobs(
    project: str,
    spec: Hashes,
    request: Request,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> MissingBlobs:
    """Embedded clients only: record blobs they wrote to the shared store themselves."""
    if not request.scope.get(IN_PROCESS):
        raise InvalidInput("claiming stored blobs is only for in-process clients: upload them")
    return MissingBlobs(missing=service.claim_stored_blobs(ctx, spec.hashes))


@router.post(DATASETS_ANY + "/join-blob")
async def join_blob(
    project: str, spec: JoinedBlob, ctx: RequestContext = require(Action.WRITE, project_from_path)
) -> StoredBlob:
    """Keep a blob as the join of pieces the project uploaded (a large Parquet file's
    row groups, the new ones sent alone); refused unless their bytes hash to ``hash``."""
    # It reads the whole file back: an upload's worth of work, taking turns with them.
    async with ctx.platform.upload_turns.held(JOIN_UNITS):
        blob = await run_in_threadpool(service.join_blob, ctx, spec.hash, spec.pieces)
    return StoredBlob(hash=blob.hash, size=blob.size)


@router.put(BLOBS + "/{digest}")
async def upload_blob(
    project: str,
    digest: str,
    request: Request,
    ctx: RequestContext = require(Action.WRITE, project_from_path),
) -> MissingBlobs:
    """Store the body as a dataset file of the project; refused unless its BLAKE3 hash is
    ``digest``."""
    check_hash(digest)
    blob = await receive_blob(request, ctx, upload_limit(request, ctx, "file"))
    await run_in_threadpool(service.record_upload, ctx, digest, blob)
    return MissingBlobs(missing=[])


@router.get(BLOBS + "/{digest}", response_class=StreamingResponse)
def download_blob(
    project: str, digest: str, ctx: RequestContext = require(Action.READ, project_from_path)
) -> Response:
    """A dataset file (or profile state) of the project by hash."""
    size = service.project_blob_size(ctx.platform, _pid(ctx), digest)
    return blob_response(ctx.platform.blobs, digest, size)
