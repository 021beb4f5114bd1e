"""Bad input on MLflow's tracking routes: MLflow's error codes (so the client raises what
MLflow users expect), a message that says what is wrong, and nothing changed."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from sqlalchemy import func, select

from shipyard.auth.tables import AuditEventRow
from shipyard.tracking.tables import ExperimentRow, MetricRow, ParamRow, RunRow, RunTagRow

from .conftest import MlflowTarget

API = "/api/2.0/mlflow"


def _counts(target: MlflowTarget) -> dict[str, int]:
    with target.platform.db.read() as session:
        return {
            table.__tablename__: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (ExperimentRow, RunRow, ParamRow, RunTagRow, MetricRow, AuditEventRow)
        }


def _call(target: MlflowTarget, method: str, path: str, **kw: Any) -> tuple[int, str]:
    response = httpx.request(method, f"{target.url}{API}{path}", **kw)
    payload = response.json()
    assert set(payload) == {"error_code", "message"}, payload
    assert payload["message"]
    return response.status_code, payload["error_code"]


@pytest.fixture
def existing(mlflow_client: Any, mlflow_target: MlflowTarget) -> tuple[str, str]:
    """An experiment and a finished run with a param, a tag and a metric."""
    eid = mlflow_client.create_experiment("errors")
    mlflow_client.create_experiment("taken")
    mlflow_client.get_experiment("0")  # the default experiment exists before counting
    run = mlflow_client.create_run(eid, run_name="r", start_time=5_000)
    run_id = run.info.run_id
    mlflow_client.log_param(run_id, "p", "1")
    mlflow_client.set_tag(run_id, "t", "v")
    mlflow_client.log_metric(run_id, "m", 1.0, timestamp=6_000)
    return eid, run_id


def test_bad_requests_get_mlflow_codes_and_change_nothing(
    existing: tuple[str, str], mlflow_target: MlflowTarget
) -> None:
    eid, run_id = existing
    before = _counts(mlflow_target)
    t = mlflow_target
    missing_run = "f" * 32
    missing_param = {"run_id": run_id, "key": "m", "value": 1.0}
    json_header = {"content-type": "application/json"}
    many_params = [{"key": f"k{i}", "value": "v"} for i in range(101)]
    twice = [{"key": "d", "value": "1"}, {"key": "d", "value": "2"}]
    no_value = [{"key": "m", "timestamp": 1}]
    bad_step = [{"key": "m", "value": 1, "timestamp": 1, "step": "one"}]
    orphan = [{"key": "mlflow.parentRunId", "value": missing_run}]
    history = {"run_id": run_id, "metric_key": "m"}
    float_tag = {"key": "f", "value": 1.5}
    number_value, bool_value = [{"key": "i", "value": 1}], [{"key": "b", "value": False}]
    bulk = {"run_ids": run_id, "metric_key": "m"}
    gone, bad = "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"
    taken = "RESOURCE_ALREADY_EXISTS"
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        # Unknown objects.
        (gone, "GET", "/runs/get", {"run_id": missing_run}),
        (gone, "GET", "/experiments/get", {"experiment_id": "9999"}),
        (gone, "GET", "/experiments/get", {"experiment_id": "abc"}),
        (gone, "GET", "/experiments/get-by-name", {"experiment_name": "nope"}),
        (gone, "POST", "/runs/log-parameter", {"run_id": missing_run, "key": "a", "value": "1"}),
        (gone, "POST", "/runs/create", {"experiment_id": "9999"}),
        (gone, "POST", "/runs/create", {"experiment_id": eid, "tags": orphan}),
        (gone, "POST", "/runs/delete-tag", {"run_id": run_id, "key": "absent"}),
        (gone, "POST", "/experiments/delete", {"experiment_id": "9999"}),
        (gone, "GET", "/metrics/get-history", {"run_id": missing_run, "metric_key": "m"}),
        # Missing or malformed fields.
        (bad, "POST", "/experiments/create", {}),
        (bad, "POST", "/experiments/create", {"name": 5}),
        (bad, "POST", "/experiments/create", {"name": " padded "}),
        (bad, "POST", "/experiments/create", {"name": "x", "tags": "k=v"}),
        (bad, "POST", "/experiments/create", {"name": "x", "tags": [{"key": "../k"}]}),
        (bad, "POST", "/runs/create", {}),
        (bad, "POST", "/runs/create", {"experiment_id": eid, "start_time": "soon"}),
        (bad, "POST", "/runs/update", {"run_id": run_id, "status": "DONE"}),
        (bad, "POST", "/runs/update", {"run_id": run_id, "end_time": 1}),
        (bad, "POST", "/runs/log-metric", {**missing_param, "value": "high", "timestamp": 1}),
        (bad, "POST", "/runs/log-metric", missing_param),
        (bad, "POST", "/runs/log-metric", {**missing_param, "key": "/abs", "timestamp": 1}),
        (bad, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"}),
        (bad, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "l", "value": "x" * 6001}),
        (bad, "POST", "/runs/log-parameter", {"run_id": run_id}),
        (bad, "POST", "/runs/set-tag", {"run_id": run_id, "key": "a" * 251, "value": "v"}),
        # Strings only where MLflow's handlers assert them (not stored as Python wrote them).
        (bad, "POST", "/runs/set-tag", {"run_id": run_id, "key": "n", "value": 5}),
        (bad, "POST", "/runs/set-tag", {"run_id": run_id, "key": 5, "value": "v"}),
        (bad, "POST", "/runs/log-parameter", {"run_id": run_id, "key": "b", "value": True}),
        (bad, "POST", "/experiments/set-experiment-tag", {**float_tag, "experiment_id": eid}),
        (bad, "POST", "/runs/log-batch", {"run_id": run_id, "params": many_params}),
        (bad, "POST", "/runs/log-batch", {"run_id": run_id, "params": number_value}),
        (bad, "POST", "/runs/log-batch", {"run_id": run_id, "tags": bool_value}),
        (bad, "POST", "/runs/log-batch", {"run_id": run_id, "params": twice}),
        (bad, "POST", "/runs/log-batch", {"run_id": run_id, "tags": twice, "metrics": no_value}),
        (bad, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": bad_step}),
        (bad, "POST", "/experiments/update", {"experiment_id": eid}),
        (bad, "POST", "/runs/search", {"experiment_ids": [eid], "filter": "metrics.m >> 1"}),
        (bad, "POST", "/runs/search", {"experiment_ids": [eid], "run_view_type": "SOME"}),
        (bad, "POST", "/experiments/search", {"max_results": 0}),
        (bad, "GET", "/metrics/get-history", {**history, "max_results": 0}),
        (bad, "GET", "/metrics/get-history-bulk-interval", {**bulk, "start_step": 3}),
        # Names that are taken.
        (taken, "POST", "/experiments/update", {"experiment_id": eid, "new_name": "taken"}),
        (taken, "POST", "/experiments/create", {"name": "taken"}),
    ]  # fmt: skip
    for code, method, path, message in cases:
        extra = {"params": message} if method == "GET" else {"json": message}
        status = 404 if code == gone else 400
        assert _call(t, method, path, **extra) == (status, code), (method, path, message)
    # Not a message at all.
    for body, code in ((b"{not json", "MALFORMED_REQUEST"), (b"[1, 2]", bad)):
        got = _call(t, "POST", "/runs/set-tag", content=body, headers=json_header)
        assert got == (400, code)
    assert _counts(mlflow_target) == before


def test_client_raises_mlflow_exceptions(existing: tuple[str, str], mlflow_client: Any) -> None:
    eid, run_id = existing
    with pytest.raises(MlflowException) as err:
        mlflow_client.get_run("0" * 32)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        mlflow_client.log_batch(run_id, params=[Param("p", "changed")])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "p" in err.value.message
    with pytest.raises(MlflowException) as err:
        mlflow_client.rename_experiment(eid, "taken")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    mlflow_client.delete_run(run_id)
    with pytest.raises(MlflowException) as err:
        mlflow_client.set_terminated(run_id)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    mlflow_client.delete_experiment(eid)
    with pytest.raises(MlflowException) as err:
        mlflow_client.rename_experiment(eid, "renamed")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        mlflow_client.set_experiment_tag(eid, "k", "v")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert mlflow_client.get_experiment(eid).name == "errors"
    assert mlflow_client.get_run(run_id).data.params == {"p": "1"}


def test_wrong_types_and_numbers_past_64_bits_are_invalid_and_change_nothing(
    existing: tuple[str, str], mlflow_target: MlflowTarget
) -> None:
    eid, run_id = existing
    before = _counts(mlflow_target)
    huge = "99999999999999999999999"
    token = base64.urlsafe_b64encode(huge.encode()).decode()
    runs = {"experiment_ids": [eid]}
    history = {"run_id": run_id, "metric_key": "m", "max_results": "1"}
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        # Fields of the wrong JSON type.
        ("POST", "/runs/search", {**runs, "filter": 1}, "'filter'"),
        ("POST", "/runs/search", {**runs, "filter": ["x"]}, "'filter'"),
        ("POST", "/runs/search", {**runs, "page_token": 1}, "'page_token'"),
        ("POST", "/runs/search", {**runs, "order_by": [1]}, "order_by[0]"),
        ("POST", "/experiments/search", {"filter": ["x"]}, "'filter'"),
        ("POST", "/experiments/search", {"filter": {"a": 1}}, "'filter'"),
        ("POST", "/experiments/search", {"page_token": 1}, "'page_token'"),
        ("POST", "/experiments/search", {"order_by": 5}, "order_by[0]"),
        ("POST", "/experiments/search", {"order_by": [{}]}, "order_by[0]"),
        # Numbers no 64-bit column holds.
        ("POST", "/runs/search", {**runs, "filter": f"metrics.m > {huge}"}, huge),
        ("POST", "/runs/search", {**runs, "page_token": token}, "invalid page_token"),
        ("POST", "/experiments/search", {"page_token": token}, "invalid page_token"),
        ("POST", "/experiments/search", {"filter": f"creation_time > {huge}"}, huge),
        ("GET", "/experiments/get", {"experiment_id": huge}, f"experiment id {huge}"),
        ("GET", "/metrics/get-history", {**history, "page_token": token}, "invalid page_token"),
        ("GET", "/metrics/get-history", {**history, "max_results": huge}, "'max_results'"),
        ("POST", "/runs/create", {"experiment_id": eid, "start_time": 1e23}, "start_time"),
        ("POST", "/runs/search", {"experiment_ids": [huge]}, f"experiment id {huge}"),
        ("POST", "/experiments/search", {"view_type": "\u00b2"}, "view type"),
    ]
    for method, path, message, said in cases:
        extra = {"params": message} if method == "GET" else {"json": message}
        response = httpx.request(method, f"{mlflow_target.url}{API}{path}", **extra)
        payload = response.json()
        got = (response.status_code, payload.get("error_code"))
        assert got == (400, "INVALID_PARAMETER_VALUE"), (method, path, message, payload)
        assert said in payload["message"], (path, message, payload)
    assert _counts(mlflow_target) == before
    # Other digits than ASCII's are no id: an experiment that does not exist.
    r = httpx.post(f"{mlflow_target.url}{API}/runs/search", json={"experiment_ids": ["\u00b2"]})
    assert r.json().get("error_code") == "RESOURCE_DOES_NOT_EXIST", r.text
