"""The metric series for charts: downsampled keeping spikes, raw on demand, clear errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.auth.conftest import Secured, secured_server

from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.platform import Platform
from shipyard.tracking.downsample import RAW_CAP

N = 20_000
SPIKE_STEP, DIP_STEP = 12_345, 3_210
T0 = 1_700_000_000_000


def _series(client: Client, run_id: str, key: str, **params: Any) -> dict[str, Any]:
    return client.api.get(f"/runs/{run_id}/metrics/{key}/series", **params)


def _wave(step: int) -> float:
    if step == SPIKE_STEP:
        return 1e6
    if step == DIP_STEP:
        return -1e6
    return math.sin(step / 500)


def _long_run(client: Client) -> str:
    """A run with N points of "loss": a sine wave plus one spike up and one down."""
    run = client.runs.create("series")
    points = [("loss", _wave(s), s, T0 + s * 10) for s in range(N)]
    client.runs.log_batch(run.id, metrics=points)
    return run.id


def test_downsampling_keeps_spikes_in_step_order(client: Client) -> None:
    run_id = _long_run(client)
    got = _series(client, run_id, "loss", points=200)
    assert got["key"] == "loss" and got["x_axis"] == "step"
    assert got["total"] == N and got["downsampled"] is True
    assert 100 <= len(got["x"]) <= 200 and len(got["x"]) == len(got["y"])
    assert got["x"] == sorted(got["x"])
    pairs = dict(zip(got["x"], got["y"], strict=True))
    assert pairs[SPIKE_STEP] == 1e6 and pairs[DIP_STEP] == -1e6
    # Every point shown is a logged point, at its own step.
    assert all(y == _wave(x) for x, y in pairs.items())
    # The wave's own extremes survive too, not only the planted ones.
    rest = [y for x, y in pairs.items() if x not in (SPIKE_STEP, DIP_STEP)]
    assert max(rest) > 0.999 and min(rest) < -0.999


def test_time_axis_places_points_at_their_time(client: Client) -> None:
    run_id = _long_run(client)
    got = _series(client, run_id, "loss", points=200, x="time")
    assert got["x_axis"] == "time" and got["downsampled"] is True
    assert got["x"] == sorted(got["x"])
    pairs = dict(zip(got["x"], got["y"], strict=True))
    assert pairs[T0 + SPIKE_STEP * 10] == 1e6 and pairs[T0 + DIP_STEP * 10] == -1e6


def test_short_history_and_raw_are_every_point(client: Client) -> None:
    run = client.runs.create("series")
    # Logged out of order, a step repeated, a NaN: raw keeps all of it, ordered.
    points = [("acc", 0.3, 3, 300), ("acc", 0.1, 1, 150), ("acc", 0.2, 2, 200)]
    points += [("acc", 0.15, 1, 100), ("acc", math.nan, 4, 50)]
    client.runs.log_batch(run.id, metrics=points)
    by_step = _series(client, run.id, "acc")
    assert by_step["total"] == 5 and by_step["downsampled"] is False
    assert by_step["x"] == [1, 1, 2, 3, 4]
    assert by_step["y"] == [0.15, 0.1, 0.2, 0.3, None]
    by_time = _series(client, run.id, "acc", points=0, x="time")
    assert by_time["x"] == [50, 100, 150, 200, 300]
    assert by_time["y"] == [None, 0.15, 0.1, 0.2, 0.3]
    assert by_time["downsampled"] is False


def test_raw_returns_the_whole_history(client: Client) -> None:
    run_id = _long_run(client)
    got = _series(client, run_id, "loss", points=0)
    assert got["total"] == N and got["downsampled"] is False
    assert got["x"] == list(range(N))
    assert got["y"] == [_wave(s) for s in range(N)]


def test_nan_only_buckets_are_left_out(client: Client) -> None:
    run = client.runs.create("series")
    points = [("gap", math.nan if 100 <= s < 300 else float(s % 7), s, s) for s in range(1000)]
    client.runs.log_batch(run.id, metrics=points)
    got = _series(client, run.id, "gap", points=20)
    assert got["downsampled"] is True and None not in got["y"]
    assert not [x for x in got["x"] if 100 <= x < 300]
    assert max(got["y"]) == 6.0 and min(got["y"]) == 0.0


def test_a_step_window_gives_finer_buckets_down_to_every_point(client: Client) -> None:
    run_id = _long_run(client)
    # Zoomed on the spike: 2,001 steps, still more than the budget, so buckets of ~10.
    near = _series(client, run_id, "loss", points=400, start=11_345, end=13_345)
    assert near["total"] == 2_001 and near["downsampled"] is True
    assert near["x"] == sorted(near["x"]) and 11_345 <= min(near["x"]) <= max(near["x"]) <= 13_345
    assert dict(zip(near["x"], near["y"], strict=True))[SPIKE_STEP] == 1e6
    assert DIP_STEP not in near["x"]
    # Zoomed further: the window holds fewer points than the budget, so every one.
    close = _series(client, run_id, "loss", points=400, start=12_300, end=12_399)
    assert close["downsampled"] is False and close["total"] == 100
    assert close["x"] == list(range(12_300, 12_400))
    assert close["y"] == [_wave(s) for s in range(12_300, 12_400)]
    # One side open: from a step to the end.
    tail = _series(client, run_id, "loss", points=0, start=N - 5)
    assert tail["x"] == list(range(N - 5, N))
    # On the time axis the window is still in steps; points sit at their times.
    timed = _series(client, run_id, "loss", x="time", start=10, end=19)
    assert timed["x"] == [T0 + s * 10 for s in range(10, 20)]


def test_a_window_with_no_points_is_empty_not_missing(client: Client) -> None:
    run_id = _long_run(client)
    got = _series(client, run_id, "loss", start=N + 10, end=N + 20)
    assert got["total"] == 0 and got["x"] == [] and got["y"] == []
    with pytest.raises(NotFound, match="has no metric 'lost'"):
        _series(client, run_id, "lost", start=0, end=10)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"points": -1}, "points must be 0"),
        ({"points": 1}, "points must be 0"),
        ({"points": RAW_CAP + 1}, "points must be 0"),
        ({"x": "epoch"}, "x must be one of step, time"),
        ({"start": 10, "end": 9}, "start \\(10\\) must not be after end \\(9\\)"),
        ({"start": 2**63}, "start must be a 64-bit step"),
        ({"end": -(2**63) - 1}, "end must be a 64-bit step"),
    ],
)
def test_bad_parameters_are_refused(client: Client, params: dict[str, Any], message: str) -> None:
    run = client.runs.create("series")
    client.runs.log_batch(run.id, metrics=[("loss", 1.0, 0, 1)])
    with pytest.raises(InvalidInput, match=message):
        _series(client, run.id, "loss", **params)
    assert client.runs.metric_history(run.id, "loss").values == [1.0]
    assert client.runs.get(run.id).metrics == {"loss": 1.0}


def test_unknown_key_run_and_bad_key(client: Client) -> None:
    run = client.runs.create("series")
    client.runs.log_batch(run.id, metrics=[("loss", 1.0, 0, 1)])
    with pytest.raises(NotFound, match="has no metric 'lost'"):
        _series(client, run.id, "lost")
    with pytest.raises(NotFound, match="not found"):
        _series(client, "0" * 32, "loss")
    with pytest.raises(InvalidInput, match="invalid metric key"):
        _series(client, run.id, "a..b")
    assert client.runs.get(run.id).metrics == {"loss": 1.0}


def test_keys_with_slashes(client: Client) -> None:
    run = client.runs.create("series")
    client.runs.log_batch(run.id, metrics=[("system/cpu_percent", 12.5, 0, 1)])
    got = _series(client, run.id, "system/cpu_percent")
    assert got["key"] == "system/cpu_percent" and got["y"] == [12.5]


@pytest.fixture
def secured(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """A server requiring auth, on each metadata backend."""
    yield from secured_server(request, db_backend, tmp_path, server_for)


def test_viewer_reads_and_outsider_is_refused(secured: Secured) -> None:
    secured.project("alpha")
    secured.project("beta")
    owner = secured.sdk(secured.user("ed", roles={"alpha": "editor"}))
    run = owner.runs.create("series", project="alpha")
    owner.runs.log_batch(run.id, metrics=[("loss", float(s), s, s) for s in range(10)])
    viewer = secured.http(secured.user("vic", roles={"alpha": "viewer"}))
    outsider = secured.http(secured.user("bea", roles={"beta": "editor"}))
    path = f"/runs/{run.id}/metrics/loss/series"
    seen = viewer.get(path, params={"points": 4})
    assert seen.status_code == 200 and seen.json()["downsampled"] is True
    refused = outsider.get(path)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert secured.http().get(path).status_code == 401
