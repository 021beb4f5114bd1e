"""Runs record the dataset versions they read (``log_input``), embedded over SQLite and
remote over PostgreSQL: by name or version object, once, within the run's project only,
seen from both sides of lineage and by an ``mlflow`` client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import build_platform

import shipyard
from shipyard.client import Client
from shipyard.datasets.schema import columns_of
from shipyard.datasets.transfer import Transfer
from shipyard.datasets.types import DataFile, DatasetVersion, VersionCreate
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.tracking import fluent


@pytest.fixture
def fluent_state(client: Client) -> Iterator[None]:
    """Module functions use the test's client; no run outlives its test."""
    fluent.set_client(client)
    yield
    for run in reversed(list(fluent._active)):
        run.end("killed")
    fluent.set_client(None)


def make_version(
    client: Client, tmp: Path, name: str, ids: list[int], project: str | None = None
) -> DatasetVersion:
    """A version of ``name`` (created if missing) holding one Parquet file of ``ids``."""
    project = project or client.project
    path = tmp / f"{name}-{len(ids)}-{ids[0]}.parquet"
    table = pa.table({"id": ids})
    pq.write_table(table, path)
    transfer = Transfer(client, project)
    blob = transfer.put(path)
    transfer.publish({blob.hash: path})
    try:
        client.datasets.get(name, project)
    except NotFound:
        client.datasets.create(name, project=project)
    spec = VersionCreate(
        files=[DataFile(path="part.parquet", hash=blob.hash, size=blob.size, rows=len(ids))],
        columns=columns_of(table.schema),
    )
    return client.datasets.create_version(name, spec, project=project)


@pytest.mark.usefixtures("fluent_state")
def test_runs_log_versions_by_name_and_object(client: Client, tmp_path: Path) -> None:
    v1 = make_version(client, tmp_path, "churn", [1, 2, 3])
    v2 = make_version(client, tmp_path, "churn", [1, 2, 3, 4])
    client.datasets.set_tag("churn", "prod", 1)

    with shipyard.start_run(run_name="train", system_metrics_interval=0) as run:
        first = run.log_input("churn", "prod")
        assert (first.dataset, first.version, first.digest) == ("churn", 1, v1.digest)
        assert (first.project, first.context, first.run_id) == ("default", "training", run.id)
        assert first.created_at > 0
        # The version object names its own number; the module function logs to this run.
        second = shipyard.log_input(v2, context="eval")
        assert (second.version, second.context) == (2, "eval")
        # Again, by another spelling of the same version: nothing new.
        again = run.log_input("churn", 1)
        assert again == first

    inputs = client.datasets.inputs_of(run.id)
    assert [(i.dataset, i.version, i.context) for i in inputs] == [
        ("churn", 1, "training"),
        ("churn", 2, "eval"),
    ]
    assert inputs[0] == first
    lineage = client.datasets.lineage("churn", 1)
    assert [(r.run_id, r.name, r.context) for r in lineage.runs] == [(run.id, "train", "training")]
    assert [r.context for r in client.datasets.lineage("churn", 2).runs] == ["eval"]
    assert client.datasets.lineage("churn", 2).runs[0].experiment_id == run.experiment_id
    assert lineage.runs[0].lifecycle == "active"
    # A deleted run still read the version: lineage keeps it, and says so.
    client.runs.delete(run.id)
    assert [(r.run_id, r.lifecycle) for r in client.datasets.lineage("churn", 1).runs] == [
        (run.id, "deleted")
    ]
    client.runs.restore(run.id)

    # Each call is audited on the run; the repeat says it added nothing.
    events = client.audit.list(action="runs.log_dataset_input", object_id=run.id)
    assert len(events) == 3
    assert sorted((e.details["version"], e.details["new"]) for e in events) == [
        (1, False),
        (1, True),
        (2, True),
    ]
    assert all(e.object_type == "run" for e in events)

    # A deleted dataset takes its links with it; the run keeps its own record of what
    # it read, named as it was logged.
    before = client.datasets.inputs_of(run.id)
    client.datasets.delete("churn")
    after = client.datasets.inputs_of(run.id)
    assert [(i.dataset, i.version, i.digest, i.deleted) for i in after] == [
        (i.dataset, i.version, i.digest, True) for i in before
    ]
    assert {i.project for i in after} == {"default"}


@pytest.mark.usefixtures("fluent_state")
def test_a_run_reads_datasets_of_its_project_only(client: Client, tmp_path: Path) -> None:
    client.projects.create("other")
    make_version(client, tmp_path, "elsewhere", [1], project="other")
    make_version(client, tmp_path, "here", [1])
    with shipyard.start_run(system_metrics_interval=0) as run:
        for project in ("other", "no-such-project"):
            with pytest.raises(InvalidInput, match="run's project"):
                run.log_input("elsewhere", 1, project=project)
        with pytest.raises(InvalidInput):
            # A dataset of the same name would not help: the project is the boundary.
            client.datasets.log_input(run.id, "here", 1, project="other")
    assert client.datasets.inputs_of(run.id) == []
    assert client.datasets.lineage("elsewhere", 1, project="other").runs == []

    # A run started in the other project finds its datasets without being told.
    with shipyard.start_run(project="other", system_metrics_interval=0) as there:
        logged = there.log_input("elsewhere")
    assert (logged.project, logged.dataset, logged.version) == ("other", "elsewhere", 1)
    with pytest.raises(InvalidInput):
        client.datasets.log_input(there.id, "here", 1)  # default project: not the run's


@pytest.mark.usefixtures("fluent_state")
def test_bad_inputs_are_refused_and_change_nothing(client: Client, tmp_path: Path) -> None:
    make_version(client, tmp_path, "churn", [1, 2])
    run = client.runs.create(name="r")
    with pytest.raises(NotFound):
        client.datasets.log_input(run.id, "nope", 1)
    with pytest.raises(NotFound):
        client.datasets.log_input(run.id, "churn", 7)
    with pytest.raises(NotFound):
        client.datasets.log_input(run.id, "churn", "prod")  # no such tag
    with pytest.raises(InvalidInput):
        client.datasets.log_input(run.id, "churn", 1, context="x" * 101)
    with pytest.raises(InvalidInput):
        client.datasets.log_input(run.id, "bad name", 1)
    with pytest.raises(NotFound):
        client.datasets.log_input("0" * 32, "churn", 1)
    with pytest.raises(NotFound):
        client.datasets.inputs_of("0" * 32)
    with shipyard.start_run(system_metrics_interval=0) as active:
        with pytest.raises(InvalidInput, match="name or a dataset version"):
            active.log_input(42)  # type: ignore[arg-type]
    assert client.datasets.inputs_of(run.id) == []
    assert client.audit.list(action="runs.log_dataset_input") == []

    client.runs.delete(run.id)
    with pytest.raises(Conflict, match="deleted"):
        client.datasets.log_input(run.id, "churn", 1)
    assert client.datasets.inputs_of(run.id) == []
    client.runs.restore(run.id)
    assert client.datasets.log_input(run.id, "churn", 1).version == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_mlflow_client_sees_the_input(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    platform = build_platform(request, "sqlite", tmp_path / "home")
    url = server_for(platform).url
    with Client(url, settings=platform.settings) as client:
        version = make_version(client, tmp_path, "churn", [1, 2, 3])
        run = client.runs.create(name="r")
        client.datasets.log_input(run.id, "churn", 1, context="training")

    inputs = mlflow.MlflowClient(url).get_run(run.id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert (dataset.name, dataset.digest) == ("churn", version.digest)
    assert (dataset.source_type, dataset.source) == ("shipyard.dataset", "default/churn@1")
    assert {(t.key, t.value) for t in inputs[0].tags} == {("mlflow.data.context", "training")}


def test_lineage_lists_the_newest_readers_and_pages_through_all(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version read by many runs: lineage names the newest few and counts them all;
    ``readers`` pages through every one, newest first."""
    from shipyard.datasets import versions

    make_version(client, tmp_path, "churn", [1, 2, 3])
    ids = []
    for i in range(5):
        run = client.runs.create("sweep", name=f"r{i}", start_time=1_700_000_000_000 + i)
        client.datasets.log_input(run.id, "churn", 1, context="training")
        ids.append(run.id)
    newest_first = ids[::-1]
    monkeypatch.setattr(versions, "LINEAGE_RUNS", 2)
    lineage = client.datasets.lineage("churn", 1)
    assert [r.run_id for r in lineage.runs] == newest_first[:2]
    assert lineage.runs_total == 5
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = client.datasets.readers("churn", 1, max_results=2, page_token=token)
        pages.append([r.run_id for r in page.runs])
        token = page.next_page_token
        if token is None:
            break
    assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]
    assert client.datasets.readers("churn", "latest", max_results=5).next_page_token is None
    for bad in (0, 1001):
        with pytest.raises(InvalidInput, match="max_results"):
            client.datasets.readers("churn", 1, max_results=bad)
    with pytest.raises(InvalidInput, match="page_token"):
        client.datasets.readers("churn", 1, page_token="???")
    with pytest.raises(NotFound):
        client.datasets.readers("churn", 9)
