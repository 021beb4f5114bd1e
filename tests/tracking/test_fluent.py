"""The fluent API (``shipyard.start_run`` and friends) against real servers, in both modes."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.client import Client
from shipyard.errors import Conflict, InvalidInput
from shipyard.tracking import fluent


@pytest.fixture(autouse=True)
def fluent_state(client: Client) -> Iterator[None]:
    """Module functions use the test's client; no run outlives its test."""
    fluent.set_client(client)
    yield
    for run in reversed(list(fluent._active)):
        run.end("killed")
    fluent.set_client(None)
    fluent._experiment = None


def all_runs(client: Client) -> list[str]:
    return [r.id for r in client.runs.search(max_results=1000).runs]


def test_start_run_stores_params_tags_code_and_environment(client: Client) -> None:
    with shipyard.start_run(
        experiment="exp-a",
        run_name="first",
        params={"lr": 0.01, "layers": 3},
        tags={"team": "vision"},
    ) as run:
        stored = client.runs.get(run.id)
        assert stored.status == "running"
        assert stored.name == "first"
        assert stored.params == {"lr": "0.01", "layers": "3"}
        assert stored.tags["team"] == "vision"
        assert stored.environment["python_version"] == ".".join(
            str(v) for v in sys.version_info[:3]
        )
        assert "pydantic" in stored.environment["packages"]
        assert "git_commit" in stored.code_version
        assert client.experiments.get(stored.experiment_id).name == "exp-a"
        assert shipyard.active_run() is run
    ended = client.runs.get(run.id)
    assert ended.status == "finished"
    assert ended.end_time is not None
    assert shipyard.active_run() is None


def test_metrics_from_many_threads_are_all_stored_in_step_order(client: Client) -> None:
    with shipyard.start_run(system_metrics_interval=0) as run:

        def work(n: int) -> None:
            # Worker threads have no run of their own: they log into the main one.
            for step in range(300):
                shipyard.log_metric(f"w{n}", step * 0.5, step=step)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for n in range(6):
        history = client.runs.metric_history(run.id, f"w{n}")
        assert history.steps == list(range(300))
        assert history.values == [s * 0.5 for s in range(300)]
    assert client.runs.get(run.id).metrics["w0"] == 149.5


def test_flush_makes_logged_metrics_visible(client: Client) -> None:
    with shipyard.start_run(system_metrics_interval=0) as run:
        shipyard.log_metrics({"acc": 0.5, "loss": 2.0}, step=1)
        shipyard.log_metric("acc", 0.75, step=2, timestamp=123)
        run.flush()
        stored = client.runs.get(run.id)
        assert stored.metrics == {"acc": 0.75, "loss": 2.0}
        history = client.runs.metric_history(run.id, "acc")
        assert history.steps == [1, 2]
        assert history.timestamps[1] == 123


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValueError("boom"), "failed"),
        (KeyboardInterrupt(), "killed"),
        (SystemExit(0), "finished"),
        (SystemExit(3), "failed"),
    ],
)
def test_error_in_block_sets_status_keeps_metrics_and_is_reraised(
    client: Client, error: BaseException, status: str
) -> None:
    with pytest.raises(type(error)):
        with shipyard.start_run(system_metrics_interval=0) as run:
            for step in range(100):
                shipyard.log_metric("loss", 1.0 / (step + 1), step=step)
            raise error
    stored = client.runs.get(run.id)
    assert stored.status == status
    assert len(client.runs.metric_history(run.id, "loss").steps) == 100
    assert shipyard.active_run() is None


def test_nested_runs_form_a_stack(client: Client) -> None:
    with shipyard.start_run(experiment="sweep", run_name="parent") as parent:
        with shipyard.start_run(run_name="child", nested=True) as child:
            assert shipyard.active_run() is child
            shipyard.log_metric("score", 1.0)
        assert shipyard.active_run() is parent
        shipyard.log_metric("best", 1.0)
    stored = client.runs.get(child.id)
    assert stored.parent_run_id == parent.id
    assert stored.experiment_id == parent.experiment_id  # inherited
    assert "score" in stored.metrics
    assert "best" in client.runs.get(parent.id).metrics
    assert "score" not in client.runs.get(parent.id).metrics


def test_second_run_without_nested_is_refused_and_creates_nothing(client: Client) -> None:
    with shipyard.start_run() as run:
        before = all_runs(client)
        with pytest.raises(InvalidInput):
            shipyard.start_run()
        assert all_runs(client) == before
        assert shipyard.active_run() is run


def test_conflicting_param_raises_at_the_call_and_changes_nothing(client: Client) -> None:
    with shipyard.start_run(params={"lr": "0.1"}) as run:
        shipyard.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(Conflict):
            shipyard.log_param("lr", 0.2)
        with pytest.raises(Conflict):
            shipyard.log_params({"batch": 32, "lr": 0.3})
        shipyard.set_tags({"stage": "a"})
        shipyard.set_tag("stage", "b")
    stored = client.runs.get(run.id)
    assert stored.params == {"lr": "0.1"}
    assert stored.tags["stage"] == "b"
    assert stored.status == "finished"


@pytest.mark.parametrize(
    ("key", "value"),
    [("", 1.0), ("a" * 251, 1.0), ("/abs", 1.0), ("x/../y", 1.0), (3, 1.0), ("ok", "nan?")],
)
def test_bad_metric_is_refused_at_the_call(client: Client, key: object, value: object) -> None:
    with shipyard.start_run(system_metrics_interval=0) as run:
        with pytest.raises(InvalidInput):
            shipyard.log_metric(key, value)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            shipyard.log_metrics({key: value, "good": 1.0})  # type: ignore[dict-item]
        run.flush()
        assert client.runs.get(run.id).metrics == {}


@pytest.mark.parametrize(
    ("step", "timestamp"),
    [(2**63, None), (-(2**63) - 1, None), (0, -1), (0, 2**63), ("x", None), (0, "soon")],
)
def test_a_bad_step_or_time_is_refused_at_the_call_and_loses_no_other_point(
    client: Client, step: object, timestamp: object
) -> None:
    """Refused later by the server (or by the encoder), the point took its whole batch
    with it, and in the last batch left the run running."""
    with shipyard.start_run(system_metrics_interval=0) as run:
        shipyard.log_metric("good", 1.0, step=0)
        with pytest.raises(InvalidInput):
            shipyard.log_metric("bad", 1.0, step=step, timestamp=timestamp)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            shipyard.log_metrics({"bad": 1.0}, step=step, timestamp=timestamp)  # type: ignore[arg-type]
        shipyard.log_metric("good", 2.0, step=1)
    stored = client.runs.get(run.id)
    assert stored.status == "finished"
    assert client.runs.metric_history(run.id, "good").values == [1.0, 2.0]
    assert "bad" not in stored.metrics


def test_the_int64_bounds_are_accepted(client: Client) -> None:
    with shipyard.start_run(system_metrics_interval=0) as run:
        shipyard.log_metric("m", 1.0, step=-(2**63), timestamp=0)
        shipyard.log_metric("m", 2.0, step=2**63 - 1, timestamp=2**63 - 1)
    assert client.runs.metric_history(run.id, "m").steps == [-(2**63), 2**63 - 1]


def test_nan_is_stored_as_null(client: Client) -> None:
    with shipyard.start_run(system_metrics_interval=0) as run:
        shipyard.log_metric("loss", float("nan"))
    assert client.runs.metric_history(run.id, "loss").values == [None]


def test_set_experiment_then_start_run(client: Client) -> None:
    exp = shipyard.set_experiment("churn")
    assert exp.name == "churn"
    assert shipyard.set_experiment("churn").id == exp.id
    with shipyard.start_run() as run:
        assert run.experiment_id == exp.id


def test_end_run_and_logging_after_the_end(client: Client) -> None:
    run = shipyard.start_run(system_metrics_interval=0)
    shipyard.log_metric("m", 1.0)
    shipyard.end_run("killed")
    assert shipyard.active_run() is None
    assert client.runs.get(run.id).status == "killed"
    with pytest.raises(InvalidInput):
        run.log_metric("m", 2.0)
    run.end()  # already ended: nothing happens
    assert client.runs.get(run.id).status == "killed"
    assert client.runs.metric_history(run.id, "m").values == [1.0]
    with pytest.raises(InvalidInput):
        run.end("paused")


def test_logging_without_a_run_starts_one(client: Client) -> None:
    assert shipyard.active_run() is None
    shipyard.log_metric("m", 1.0)
    run = shipyard.active_run()
    assert run is not None
    shipyard.end_run()
    assert client.runs.get(run.id).metrics == {"m": 1.0}


def test_a_thread_can_run_its_own_run(client: Client) -> None:
    seen: dict[str, str] = {}
    with shipyard.start_run(run_name="main") as main:

        def work() -> None:
            with shipyard.start_run(run_name="own") as own:
                shipyard.log_metric("x", 1.0)
                seen["own"] = own.id

        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert shipyard.active_run() is main
    assert client.runs.get(seen["own"]).metrics == {"x": 1.0}
    assert client.runs.get(seen["own"]).parent_run_id is None
    assert client.runs.get(main.id).metrics == {}


def test_artifacts_and_models(client: Client, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("1,2")
    (folder / "sub" / "b.csv").write_text("3,4")
    with shipyard.start_run() as run:
        info = shipyard.log_artifact(tmp_path / "notes.txt")
        assert info.path == "notes.txt"
        shipyard.log_artifact(tmp_path / "notes.txt", artifact_path="docs")
        uploaded = shipyard.log_artifacts(folder, artifact_path="plots")
        assert sorted(i.path for i in uploaded) == ["plots/a.csv", "plots/sub/b.csv"]
        model = shipyard.log_model({"weights": [1, 2, 3]})
    assert model.flavor == "python"
    assert model.uri == f"runs:/{run.id}/model"
    assert client.artifacts.read_bytes(run.id, "docs/notes.txt") == b"hello"
    names = {i.path for i in client.artifacts.list(run.id, "model")}
    assert "model/shipyard-model.json" in names


def test_import_shipyard_is_light() -> None:
    code = (
        "import sys, shipyard\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'starlette', 'uvicorn', 'psutil') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(shipyard.start_run) and shipyard.Conflict.status == 409\n"
        "assert set(shipyard.__all__) <= set(dir(shipyard))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
