"""Metric history read page by page (as the mlflow client does, 25,000 points at a
time) comes out exactly as the whole history does, repeated steps included."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from shipyard.tracking import metrics

from .conftest import MlflowTarget


def _pages(store: Any, run_id: str, key: str, size: int) -> list[tuple[int, int, float]]:
    out: list[tuple[int, int, float]] = []
    token = None
    while True:
        page = store.get_metric_history(run_id, key, max_results=size, page_token=token)
        assert len(page) <= size
        out += [(m.step, m.timestamp, m.value) for m in page]
        token = page.token
        if token is None:
            return out


def test_pages_follow_the_native_order_with_repeated_steps(
    mlflow_client: Any, mlflow_target: MlflowTarget
) -> None:
    run_id = mlflow_client.create_run(mlflow_client.create_experiment("pages")).info.run_id
    # Steps repeat, and within a step the later-logged points carry earlier times:
    # the native order (step, then time) differs from the order of insertion.
    steps = [0, 1, 1, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 9, 9, 10]
    points = [Metric("m", float(i), 1_000 - i, step) for i, step in enumerate(steps)]
    for start in range(0, len(points), 5):
        mlflow_client.log_batch(run_id, metrics=points[start : start + 5])
    mlflow_client.log_batch(run_id, metrics=[Metric("plain", float(i), i, i) for i in range(23)])

    native = metrics.metric_history(mlflow_target.platform, run_id, "m")
    want = list(zip(native["steps"], native["timestamps"], native["values"], strict=True))
    assert [s for s, _, _ in want] == sorted(steps)
    store = mlflow_client._tracking_client.store
    for size in (1, 2, 3, 4, 7, 18, 100):
        assert _pages(store, run_id, "m", size) == want
    whole = mlflow_client.get_metric_history(run_id, "m")
    assert [(m.step, m.timestamp, m.value) for m in whole] == want

    plain = [(i, i, float(i)) for i in range(23)]
    for size in (1, 5, 22, 23, 24):
        assert _pages(store, run_id, "plain", size) == plain
    assert _pages(store, run_id, "unknown", 10) == []


def test_a_bad_page_request_is_refused(mlflow_client: Any) -> None:
    run_id = mlflow_client.create_run(mlflow_client.create_experiment("bad-pages")).info.run_id
    mlflow_client.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)])
    store = mlflow_client._tracking_client.store
    with pytest.raises(MlflowException) as err:
        store.get_metric_history(run_id, "m", max_results=10, page_token="not-a-token")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        store.get_metric_history(run_id, "a/../b", max_results=10)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    # Nothing was changed: the one point is still read, in one page without a token.
    page = store.get_metric_history(run_id, "m", max_results=10)
    assert [(m.step, m.value) for m in page] == [(0, 1.0)] and page.token is None
