"""The run side of lineage: the dataset versions a run read.

``POST /runs/{run_id}/dataset-inputs`` records one as a ``run_inputs`` row linked to
the version (the same table MLflow's ``log_input`` fills, so an ``mlflow`` client sees
it among the run's dataset inputs); ``GET`` lists them. A run may only name versions of
its own project: a link across projects would let a run's readers learn another
project's data, so it is refused whatever the caller's roles elsewhere.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from shipyard.auth.authz import RequestContext, require
from shipyard.auth.principal import Action
from shipyard.clock import now_ms
from shipyard.datasets.service import dataset_row
from shipyard.datasets.tables import DatasetRow, DatasetVersionRow
from shipyard.datasets.types import DatasetInput, check_dataset_name
from shipyard.datasets.versions import version_row
from shipyard.errors import InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.projects.resolvers import project_from_path
from shipyard.projects.tables import ProjectRow
from shipyard.tracking.resolvers import run_project
from shipyard.tracking.runs import writable_run
from shipyard.tracking.tables import RunInputRow
from shipyard.tracking.upserts import dialect_insert

router = APIRouter(tags=["datasets"])

SOURCE_TYPE = "shipyard.dataset"
"""``source_type`` of the run_inputs rows that stand for a Shipyard dataset version."""
MAX_CONTEXT = 100  # the run_inputs.context column


class DatasetInputCreate(BaseModel):
    """A version a run read: the dataset (in the run's project) and a number or tag."""

    project: str
    dataset: str
    version: int | str = "latest"
    context: str = ""


def _project_id(platform: Platform, project: str) -> int | None:
    try:
        return project_from_path.resolve(platform, project)
    except NotFound:
        return None


def log_dataset_input(ctx: RequestContext, run_id: str, spec: DatasetInputCreate) -> DatasetInput:
    """Record that the run read a version; logging the same (version, context) again
    changes nothing. Conflict for a deleted run, NotFound for an unknown dataset or
    version, InvalidInput for a dataset outside the run's project."""
    assert ctx.project_id is not None
    check_dataset_name(spec.dataset)
    if not isinstance(spec.context, str) or len(spec.context) > MAX_CONTEXT:
        raise InvalidInput(f"context must be at most {MAX_CONTEXT} characters")
    # An unknown project name is refused the same way as another project's: the answer
    # must not tell which projects exist.
    if _project_id(ctx.platform, spec.project) != ctx.project_id:
        raise InvalidInput(
            f"dataset {spec.dataset!r} of project {spec.project[:100]!r} is not in the "
            "run's project: a run can only read datasets of its own project",
            {"project": spec.project[:100], "dataset": spec.dataset},
        )
    with ctx.platform.db.write() as session:
        writable_run(session, run_id)
        dataset = dataset_row(session, ctx.project_id, spec.dataset)
        version = version_row(session, dataset, spec.version)
        project = session.scalar(select(ProjectRow.name).where(ProjectRow.id == ctx.project_id))
        assert project is not None
        key = {
            "run_id": run_id,
            "name": dataset.name,
            "digest": version.digest,
            "context": spec.context,
        }
        table = RunInputRow.__table__
        stmt = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=list(key))
            .returning(table.c.created_at)
        )
        # A row comes back only when this call inserted one (rowcount is not reliable
        # for INSERT .. ON CONFLICT with RETURNING across drivers).
        created_at = session.execute(
            stmt,
            {
                **key,
                "source_type": SOURCE_TYPE,
                "source": f"{project}/{dataset.name}@{version.version}",
                "schema": "",
                "profile": "",
                "tags": {},
                "dataset_version_id": version.id,
                "created_at": now_ms(),
            },
        ).scalar()
        inserted = created_at is not None
        if not inserted:
            created_at = session.scalar(
                select(RunInputRow.created_at).where(
                    *(getattr(RunInputRow, column) == value for column, value in key.items())
                )
            )
        ctx.audit(
            session,
            "runs.log_dataset_input",
            "run",
            run_id,
            {
                "dataset": dataset.name,
                "version": version.version,
                "digest": version.digest,
                "context": spec.context,
                "new": inserted,
            },
        )
    return DatasetInput(
        run_id=run_id,
        project=project,
        dataset=dataset.name,
        version=version.version,
        digest=version.digest,
        context=spec.context,
        created_at=created_at or 0,
    )


def dataset_inputs(platform: Platform, run_id: str) -> list[DatasetInput]:
    """The dataset versions a run read, in the order it logged them. An input whose
    dataset has since been deleted stays, ``deleted``, named as it was when logged: a
    run's record of what it read outlives the data."""
    with platform.db.read() as session:
        rows = session.execute(
            select(
                ProjectRow.name,
                DatasetRow.name,
                DatasetVersionRow.version,
                RunInputRow.source,
                RunInputRow.digest,
                RunInputRow.context,
                RunInputRow.created_at,
            )
            .outerjoin(DatasetVersionRow, DatasetVersionRow.id == RunInputRow.dataset_version_id)
            .outerjoin(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
            .outerjoin(ProjectRow, ProjectRow.id == DatasetRow.project_id)
            .where(RunInputRow.run_id == run_id, RunInputRow.source_type == SOURCE_TYPE)
            .order_by(RunInputRow.id)
        )
        found = []
        for project, dataset, version, source, digest, context, created_at in rows:
            deleted = version is None
            if deleted:  # "project/dataset@version", as log_dataset_input wrote it
                where, _, number = source.rpartition("@")
                project, _, dataset = where.partition("/")
                version = int(number) if number.isdigit() else 0
            found.append(
                DatasetInput(
                    run_id=run_id,
                    project=project,
                    dataset=dataset,
                    version=version,
                    digest=digest,
                    context=context or "",
                    created_at=created_at,
                    deleted=deleted,
                )
            )
        return found


@router.post("/runs/{run_id}/dataset-inputs")
def log_input(
    run_id: str,
    spec: DatasetInputCreate,
    ctx: RequestContext = require(Action.WRITE, run_project),
) -> DatasetInput:
    """Record that the run read a dataset version of its project (idempotent)."""
    return log_dataset_input(ctx, run_id, spec)


@router.get("/runs/{run_id}/dataset-inputs")
def list_inputs(
    run_id: str, ctx: RequestContext = require(Action.READ, run_project)
) -> list[DatasetInput]:
    """The dataset versions the run read."""
    return dataset_inputs(ctx.platform, run_id)
