"""Values no column can hold (integers past 64 bits, text with NUL or a lone surrogate)
are refused with a clear 4xx on both databases, never a 500, and nothing is stored."""

from __future__ import annotations

import base64
import urllib.parse
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


def _token(offset: str) -> str:
    return base64.urlsafe_b64encode(offset.encode()).decode()


def test_integers_past_64_bits_in_filters_tokens_ids_and_queries_are_400(
    served: tuple[httpx.Client, Client],
) -> None:
    http, sdk = served
    run = sdk.runs.create("e")
    sdk.runs.log_batch(run.id, metrics=[("acc", 0.5, 0, 1)])
    sdk.models.create("churn")
    user = sdk.users.create("ann", "ann-password-1")
    token = sdk.tokens.create(username=user.username)
    api = API_PREFIX + "/projects/default"
    search = api + "/runs/search"
    history = {"run_id": run.id, "metric_key": "acc", "max_results": "1"}
    answers = {
        "metric literal": (
            http.post(search, json={"filter": f"metrics.acc > {HUGE}"}),
            f"integer {HUGE} is out of the 64-bit range",
        ),
        "attribute literal": (
            http.post(search, json={"filter": f"attributes.start_time > {2**63}"}),
            f"integer {2**63} is out of the 64-bit range",
        ),
        "experiment id string": (
            http.post(search, json={"filter": f"attributes.experiment_id = '{HUGE}'"}),
            f"attributes.experiment_id {HUGE} is out of the 64-bit",
        ),
        "runs page": (http.post(search, json={"page_token": _token(HUGE)}), "invalid page_token"),
        "models page": (
            http.get(api + "/models", params={"page_token": _token(HUGE)}),
            "invalid page_token",
        ),
        "versions page": (
            http.get(api + "/models/churn/versions", params={"page_token": _token(HUGE)}),
            "invalid page_token",
        ),
        "token id": (http.delete(f"{API_PREFIX}/tokens/{HUGE}"), "token_id"),
        "project id": (http.get(f"{API_PREFIX}/projects/{HUGE}"), f"project id {HUGE}"),
        "experiment id": (http.get(f"{API_PREFIX}/experiments/{HUGE}"), f"experiment id {HUGE}"),
        "audit project": (
            http.get(API_PREFIX + "/audit", params={"project": HUGE}),
            f"project id {HUGE}",
        ),
        "series points": (
            http.get(f"{API_PREFIX}/runs/{run.id}/metrics/acc/series", params={"points": HUGE}),
            f"got {HUGE}",
        ),
        "mlflow filter": (
            http.post(
                "/api/2.0/mlflow/runs/search",
                json={
                    "experiment_ids": [str(run.experiment_id)],
                    "filter": f"metrics.acc > {HUGE}",
                },
            ),
            f"integer {HUGE} is out of the 64-bit range",
        ),
        "mlflow version filter": (
            http.get(
                "/api/2.0/mlflow/model-versions/search",
                params={"filter": f"name='churn' AND version_number = {HUGE}"},
            ),
            f"version number {HUGE} is out of the 64-bit",
        ),
        "mlflow runs page": (
            http.post(
                "/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [str(run.experiment_id)], "page_token": _token(HUGE)},
            ),
            "invalid page_token",
        ),
        "mlflow models page": (
            http.get(
                "/api/2.0/mlflow/registered-models/search", params={"page_token": _token(HUGE)}
            ),
            "invalid page_token",
        ),
        "mlflow history page": (
            http.get(
                "/api/2.0/mlflow/metrics/get-history",
                params={**history, "page_token": _token(HUGE)},
            ),
            "invalid page_token",
        ),
        "mlflow history size": (
            http.get(
                "/api/2.0/mlflow/metrics/get-history", params={**history, "max_results": HUGE}
            ),
            "'max_results': expected a 64-bit integer",
        ),
    }
    for what, (answer, message) in answers.items():
        assert answer.status_code == 400, (what, answer.status_code, answer.text[:300])
        body = answer.json()
        got = body["error"] if "error" in body else body
        code = got.get("code", got.get("error_code"))
        assert code in ("invalid_input", "INVALID_PARAMETER_VALUE"), (what, body)
        assert message in got["message"], (what, got["message"])
    # A page past every row, and the largest point budget, are still fine.
    last = http.post(search, json={"page_token": _token(str(2**63 - 1))})
    assert last.status_code == 200 and last.json()["runs"] == []
    biggest = http.get(
        "/api/2.0/mlflow/metrics/get-history", params={**history, "max_results": 2**63 - 1}
    )
    assert biggest.status_code == 200 and len(biggest.json()["metrics"]) == 1
    # Nothing changed.
    assert [t.id for t in sdk.tokens.list(username="ann")] == [token.id]
    assert sdk.tokens.list(username="ann")[0].revoked_at is None
    assert sdk.runs.metric_history(run.id, "acc").values == [0.5]


@pytest.mark.parametrize("ref", ["%C2%B2", "%D9%A2", "%EF%BC%92"])  # '²', '٢', '２'
def test_only_ascii_digits_are_ids(served: tuple[httpx.Client, Client], ref: str) -> None:
    http, sdk = served
    # Ids 2 exist: what int() reads '٢' and '２' as.
    assert sdk.projects.create("second").id == 2
    assert max(sdk.experiments.create(name).id for name in ("e1", "e2")) >= 2
    name = urllib.parse.unquote(ref)
    answers = {
        "project": http.get(f"{API_PREFIX}/projects/{ref}"),
        "experiment": http.get(f"{API_PREFIX}/experiments/{ref}"),
        "audit": http.get(API_PREFIX + "/audit", params={"project": name}),
        "mlflow experiment": http.get(
            "/api/2.0/mlflow/experiments/get", params={"experiment_id": name}
        ),
        "mlflow project": http.get(f"/projects/{ref}/api/2.0/mlflow/experiments/search"),
    }
    for what, answer in answers.items():
        assert answer.status_code == 404, (what, answer.status_code, answer.text[:300])
    refused = http.post(
        API_PREFIX + "/projects/default/runs/search",
        json={"filter": f"attributes.experiment_id = '{name}'"},
    )
    assert refused.status_code == 400, refused.text
    assert "compares to numbers" in refused.json()["error"]["message"]


LONE_SURROGATE = "\\ud800"  # as JSON writes it: json.loads makes it a lone surrogate


def test_lone_surrogates_are_refused_on_both_databases(
    served: tuple[httpx.Client, Client],
) -> None:
    http, sdk = served
    run = sdk.runs.create("e")
    experiment = sdk.experiments.get_by_name("e")
    sdk.models.create("churn")
    api = API_PREFIX + "/projects/default"

    def raw(method: str, path: str, body: str) -> httpx.Response:
        headers = {"content-type": "application/json"}
        return http.request(method, path, content=body.encode(), headers=headers)

    s = LONE_SURROGATE
    answers = {
        "run name": raw(
            "POST", f"{API_PREFIX}/experiments/{experiment.id}/runs", f'{{"name": "{s}"}}'
        ),
        "run tag": raw(
            "POST", f"{API_PREFIX}/experiments/{experiment.id}/runs", f'{{"tags": {{"k": "{s}"}}}}'
        ),
        "run tag key": raw(
            "POST", f"{API_PREFIX}/experiments/{experiment.id}/runs", f'{{"tags": {{"{s}": "v"}}}}'
        ),
        "run description": raw("PATCH", f"{API_PREFIX}/runs/{run.id}", f'{{"description": "{s}"}}'),
        "experiment description": raw(
            "POST", api + "/experiments", f'{{"name": "x", "description": "a{s}"}}'
        ),
        "experiment tag": raw(
            "PUT", f"{API_PREFIX}/experiments/{experiment.id}/tags", f'{{"k": "{s}"}}'
        ),
        "model tag": raw("PUT", api + "/models/churn/tags", f'{{"k": "{s}"}}'),
        "model description": raw("PATCH", api + "/models/churn", f'{{"description": "{s}"}}'),
        "new model": raw("POST", api + "/models", f'{{"name": "m2", "tags": {{"k": "{s}"}}}}'),
        "project description": raw(
            "POST", API_PREFIX + "/projects", f'{{"name": "p2", "description": "{s}"}}'
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 400, (what, answer.status_code, answer.text[:300])
        error = answer.json()["error"]
        assert error["code"] == "invalid_input", what
        assert "surrogate" in error["message"] or "unicode" in error["message"], (what, error)
    stored = sdk.runs.get(run.id)
    assert (stored.name, stored.description, stored.tags) == (run.name, "", {})
    assert [r.id for r in sdk.runs.search(experiments=[experiment.id]).runs] == [run.id]
    assert [e.name for e in sdk.experiments.list()] == ["e"]
    assert sdk.experiments.get(experiment.id).tags == {}
    model = sdk.models.get("churn")
    assert (model.description, model.tags) == ("", {})
    assert [m.name for m in sdk.models.list()] == ["churn"]
    assert [p.name for p in sdk.projects.list()] == ["default"]
