"""MLflow's artifact proxy (``mlflow-artifacts:`` URIs) over Shipyard's artifacts.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts`` and a
logged model's ``mlflow-artifacts:/<experiment>/models/<model>/artifacts``; the
client turns them into ``/api/2.0/mlflow-artifacts/artifacts/<that path>/<file>``.
Those paths map onto run artifacts (:mod:`shipyard.tracking.artifacts`, the same
checks and audit as native uploads) and logged model files
(:mod:`shipyard.tracking.logged_models`). The project, and so the authorization,
comes from the run or model named in the path, never from the body: uploads
stream into the blob store as native ones do, and downloads stream back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.auth.resolvers import CachedResolver
from shipyard.blobs.http import blob_response
from shipyard.errors import NotFound
from shipyard.mlflow_compat.errors import fail
from shipyard.mlflow_compat.protocol import field, message_of, run_message
from shipyard.mlflow_compat.tracking import conflict_as, run_artifact_uri
from shipyard.platform import Platform
from shipyard.server.responses import FastJSON
from shipyard.tracking import artifacts, logged_models
from shipyard.tracking.artifact_routes import (  # the one streamed upload
    receive_blob,
    upload_limit,
)
from shipyard.tracking.artifact_types import ArtifactInfo
from shipyard.tracking.resolvers import experiment_project
from shipyard.tracking.tables import RunRow

router = APIRouter(tags=["mlflow"])

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ROOT = "artifacts"  # the folder name that ends a run's or model's prefix
MODELS = "models"

# What the client learns from /server-info: no presigned multipart transfers, so it
# streams every file through the proxy (which holds none of them in memory).
SERVER_INFO = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}
# MLflow's client falls back to a plain upload on an answer starting with this.
_MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


def model_artifact_uri(experiment_id: int, model_id: str) -> str:
    """Where MLflow clients find a logged model's files (the artifact proxy)."""
    return f"mlflow-artifacts:/{experiment_id}/{MODELS}/{model_id}/{ROOT}"


@dataclass(frozen=True)
class Target:
    """What an artifact proxy path names: a run's or a logged model's file or folder."""

    kind: Literal["run", "model"]
    experiment: str
    owner: str  # the run id or the model id
    path: str  # below the owner's artifact root; '' is the root


def parse_target(raw: str | None) -> Target:
    """``<exp>/<run>/artifacts[/path]`` or ``<exp>/models/<model>/artifacts[/path]``;
    INVALID_PARAMETER_VALUE for anything else. The path below is checked later, by the
    service that stores or reads it."""
    # Only the leading '/' goes: a trailing one would make "dir/" upload as "dir".
    parts = (raw or "").lstrip("/").split("/")
    if len(parts) >= 4 and parts[1] == MODELS and parts[3] == ROOT:
        return Target("model", parts[0], parts[2], "/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == ROOT and parts[1] != MODELS:
        return Target("run", parts[0], parts[1], "/".join(parts[3:]))
    raise fail(
        "INVALID_PARAMETER_VALUE",
        f"artifact path {str(raw)[:200]!r} is not under a run's or a logged model's artifacts: "
        "expected <experiment_id>/<run_id>/artifacts/... or "
        "<experiment_id>/models/<model_id>/artifacts/...",
    )


def _lookup_run_experiment(platform: Platform, run_id: str) -> int:
    with platform.db.read() as session:
        experiment_id = session.scalar(select(RunRow.experiment_id).where(RunRow.id == run_id))
    if experiment_id is None:
        raise NotFound(f"run {run_id!r} not found")
    return experiment_id


# A run never moves to another experiment: cached like the project resolvers.
run_experiment = CachedResolver("run_experiment", "run_id", _lookup_run_experiment)


class ArtifactPathResolver:
    """The project of the run or logged model an artifact proxy path names.

    Reads only the URL (the path, or the ``path`` query field of a listing), never
    the body, so an upload still streams. The experiment in the path must be the
    owner's, else NotFound: a path names one object, one way.
    """

    def __init__(self, raw_path: Callable[[Request], str | None]) -> None:
        self.raw_path = raw_path

    def target(self, request: Request) -> Target:
        """The parsed path (parsed once per request)."""
        found = getattr(request.state, "artifact_target", None)
        if found is None:
            found = request.state.artifact_target = parse_target(self.raw_path(request))
        return found  # type: ignore[no-any-return]

    def __call__(self, request: Request, platform: Platform) -> int:
        target = self.target(request)
        if target.kind == "run":
            experiment_id = run_experiment.resolve(platform, target.owner)
        else:
            experiment_id = logged_models.model_experiment.resolve(platform, target.owner)
        if str(experiment_id) != target.experiment:
            what = "run" if target.kind == "run" else "logged model"
            raise NotFound(f"{what} {target.owner!r} not found in experiment {target.experiment}")
        return experiment_project.resolve(platform, str(experiment_id))


artifact_path = ArtifactPathResolver(lambda r: r.path_params.get("artifact_path"))
"""The project of the ``{artifact_path}`` path parameter."""

listing_path = ArtifactPathResolver(lambda r: r.query_params.get("path"))
"""The project of the ``path`` query field of a listing."""


@router.put(ARTIFACTS + "/{artifact_path:path}")
async def upload_artifact(
    request: Request, ctx: RequestContext = require(Action.WRITE, artifact_path)
) -> FastJSON:
    """Store the body, streamed, as the file the path names (replacing an earlier one)."""
    target = artifact_path.target(request)
    platform = ctx.platform
    limit = upload_limit(request, ctx)
    with conflict_as("INVALID_PARAMETER_VALUE"):
        if target.kind == "run":
            path = await run_in_threadpool(
                artifacts.check_upload, platform, target.owner, target.path
            )
            blob = await receive_blob(request, ctx, limit)
            await run_in_threadpool(artifacts.record_upload, ctx, target.owner, path, blob)
        else:
            path = await run_in_threadpool(
                logged_models.check_file_upload, platform, target.owner, target.path
            )
            blob = await receive_blob(request, ctx, limit)
            await run_in_threadpool(logged_models.record_file, ctx, target.owner, path, blob)
    return FastJSON({})


@router.get(ARTIFACTS + "/{artifact_path:path}")
def download_artifact(
    request: Request, ctx: RequestContext = require(Action.READ, artifact_path)
) -> Response:
    """The file's bytes, streamed and verified against its hash."""
    target = artifact_path.target(request)
    if target.kind == "run":
        info = artifacts.get_file(ctx.platform, target.owner, target.path)
    else:
        info = logged_models.get_file(ctx.platform, target.owner, target.path)
    assert info.hash is not None and info.size is not None
    return blob_response(ctx.platform.blobs, info.hash, info.size)


@router.delete(ARTIFACTS + "/{artifact_path:path}")
def delete_artifact(
    request: Request, ctx: RequestContext = require(Action.WRITE, artifact_path)
) -> FastJSON:
    """Refused, changing nothing: Shipyard keeps what a run or model logged (versions
    and lineage point at those files)."""
    artifact_path.target(request)
    raise fail(
        "INVALID_STATE",
        "deleting artifacts is not supported: Shipyard keeps the files a run or a logged "
        "model logged (registered versions and lineage refer to them)",
    )


def file_infos(found: list[ArtifactInfo], *, names_only: bool) -> list[dict[str, object]]:
    """MLflow ``FileInfo`` messages: paths as given, or only their last segment."""
    out: list[dict[str, object]] = []
    for info in found:
        entry: dict[str, object] = {
            "path": info.path.rsplit("/", 1)[-1] if names_only else info.path,
            "is_dir": info.is_dir,
        }
        if info.size is not None:
            entry["file_size"] = info.size
        out.append(entry)
    return out


def _listing(platform: Platform, target: Target) -> list[ArtifactInfo]:
    """A folder's children (a file lists itself); empty for a path that is not there,
    as MLflow answers (its client then tries the path as a file)."""
    try:
        if target.kind == "run":
            return artifacts.list_artifacts(platform, target.owner, target.path)
        return logged_models.list_files(platform, target.owner, target.path)
    except NotFound:
        return []


@router.get(ARTIFACTS)
def list_artifacts(
    request: Request, ctx: RequestContext = require(Action.READ, listing_path)
) -> FastJSON:
    """``ls`` of a folder under a run's or model's artifacts, by name (as MLflow's
    server answers; a file lists itself, which the client recognises)."""
    found = _listing(ctx.platform, listing_path.target(request))
    return FastJSON({"files": file_infos(found, names_only=True)})


@router.get("/api/2.0/mlflow/artifacts/list")
def list_run_artifacts(
    request: Request, ctx: RequestContext = require(Action.READ, run_message)
) -> FastJSON:
    """MLflow's run-based listing: paths relative to the run's artifact root."""
    msg = message_of(request)
    run_id = str(field(msg, "run_id", "run_uuid"))
    path = msg.get("path") or ""
    if not isinstance(path, str):
        raise fail("INVALID_PARAMETER_VALUE", "Invalid value for parameter 'path'.")
    experiment_id = run_experiment.resolve(ctx.platform, run_id)
    found = _listing(ctx.platform, Target("run", str(experiment_id), run_id, path))
    return FastJSON(
        {
            "root_uri": run_artifact_uri(experiment_id, run_id),
            "files": file_infos(found, names_only=False),
        }
    )


@router.post("/api/2.0/mlflow-artifacts/mpu/create/{artifact_path:path}")
def create_multipart_upload(
    request: Request, ctx: RequestContext = require(Action.WRITE, artifact_path)
) -> FastJSON:
    """Refused in the words the client knows: it then uploads the file in one stream."""
    artifact_path.target(request)
    # 501, as MLflow answers: a client retries 5xx answers other than this one.
    return FastJSON({"error_code": "NOT_IMPLEMENTED", "message": _MULTIPART_UNSUPPORTED}, 501)


@router.get("/api/3.0/mlflow/server-info")
def server_info(ctx: RequestContext = require(Action.AUTHENTICATED)) -> FastJSON:
    """What this server offers the client: no multipart or presigned transfers."""
    return FastJSON(SERVER_INFO)
