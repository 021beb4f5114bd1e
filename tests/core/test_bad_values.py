"""Values no column can hold (integers past 64 bits, text with NUL) are refused with a
clear 4xx on both databases, never a 500, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shipyard.client import Client
from shipyard.client.api import API_PREFIX
from shipyard.platform import Platform

HUGE = "99999999999999999999999"


@pytest.fixture
def served(platform: Platform, server_for) -> Iterator[tuple[httpx.Client, Client]]:  # type: ignore[no-untyped-def]
    url = server_for(platform).url
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        Client(url, settings=platform.settings) as sdk,
    ):
        yield http, sdk


def test_integers_past_64_bits_are_4xx(served: tuple[httpx.Client, Client]) -> None:
    http, sdk = served
    sdk.runs.create("e")
    sdk.models.create("churn")
    api = API_PREFIX + "/projects/default"
    answers = {
        "version": http.get(f"{api}/models/churn/versions/{HUGE}"),
        "version file": http.get(f"{api}/models/churn/versions/{HUGE}/files/MLmodel"),
        "delete version": http.delete(f"{api}/models/churn/versions/{HUGE}"),
        "update version": http.patch(
            f"{api}/models/churn/versions/{HUGE}", json={"description": "x"}
        ),
        "alias": http.put(f"{api}/models/churn/aliases/x", content=f'{{"version": {HUGE}}}'),
        "audit": http.get(API_PREFIX + "/audit", params={"since": HUGE}),
        "mlflow version": http.get(
            "/api/2.0/mlflow/model-versions/get", params={"name": "churn", "version": HUGE}
        ),
        "audit page": http.get("/audit", params={"until": HUGE}),
        "version page": http.get(f"/projects/default/models/churn/versions/{HUGE}"),
    }
    for what, answer in answers.items():
        assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text[:300])
    assert sdk.models.get("churn").aliases == {}


def test_text_with_nul_is_refused_on_both_databases(served: tuple[httpx.Client, Client]) -> None:
    http, sdk = served
    run = sdk.runs.create("e")
    batch = f"{API_PREFIX}/runs/{run.id}/batch"
    answers = {
        "metric key": http.post(batch, json={"metrics": {"keys": ["k\x00"], "values": [1.0]}}),
        "param value": http.post(batch, json={"params": {"p": "v\x00"}}),
        "tag value": http.post(batch, json={"tags": {"t": "\x00"}}),
        "experiment": http.post(
            API_PREFIX + "/projects/default/experiments", json={"name": "\x00nul"}
        ),
        "run name": http.patch(f"{API_PREFIX}/runs/{run.id}", json={"name": "a\x00b"}),
        "search": http.post(
            API_PREFIX + "/projects/default/runs/search", json={"filter": "params.a = 'x\x00'"}
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 400, (what, answer.status_code, answer.text[:300])
        assert "NUL" in answer.json()["error"]["message"], what
    stored = sdk.runs.get(run.id)
    assert (stored.params, stored.tags, stored.metrics) == ({}, {}, {})
    assert [e.name for e in sdk.experiments.list()] == ["e"]
