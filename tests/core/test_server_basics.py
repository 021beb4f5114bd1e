"""Server behaviour every domain relies on: health, JSON errors, size limits, streaming."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from tests.conftest import run_async

from shipyard.client.inprocess import InProcessTransport
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.platform import Platform
from shipyard.server.app import create_app


def test_health_and_openapi(platform: Platform, server_for) -> None:  # type: ignore[no-untyped-def]
    srv = server_for(platform)
    with httpx.Client(base_url=srv.url) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready"}
        spec = http.get("/openapi.json").json()
        assert "/api/v1/projects" in spec["paths"]


def test_errors_are_json_without_traces(platform: Platform, server_for) -> None:  # type: ignore[no-untyped-def]
    srv = server_for(platform)
    with httpx.Client(base_url=srv.url) as http:
        r = http.get("/api/v1/projects/does-not-exist")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        r = http.post(
            "/api/v1/projects", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        body = r.json()["error"]
        assert body["code"] == "invalid_input" and "Traceback" not in r.text
        r = http.post("/api/v1/projects", json={"name": 5})
        assert r.status_code == 400 and "name" in r.json()["error"]["message"]
        assert http.get("/no/such/route").status_code == 404


def test_an_unexpected_error_is_answered_and_the_connection_kept(
    platform: Platform,
    server_for,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    from shipyard.projects import service
    from shipyard.tracking import experiments

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "list_projects", broken)
    monkeypatch.setattr(experiments, "list_experiments", broken)

    # The exception is not raised past the app (httpx's ASGI transport would raise it).
    async def answers() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as local:
            return [
                await local.get("/api/v1/projects"),
                await local.get("/api/2.0/mlflow/experiments/search"),
            ]

    native, mlflow = run_async(answers())
    assert native.status_code == 500 and "a bug" not in native.text
    assert native.json()["error"]["code"] == "internal_error"
    assert mlflow.status_code == 500 and mlflow.json()["error_code"] == "INTERNAL_ERROR"
    # Over HTTP the kept-alive connection stays usable: a client retrying a 5xx on it
    # gets the answer again, not a reset connection.
    srv = server_for(platform)
    opened: list[object] = []
    with httpx.Client(
        base_url=srv.url, event_hooks={"request": [lambda req: opened.append(req)]}
    ) as http:
        for _ in range(3):
            assert http.get("/api/v1/projects").status_code == 500
            assert http.get("/healthz").status_code == 200
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1 and len(opened) == 6


def test_request_size_limit(tmp_path: Path, platform: Platform, server_for) -> None:  # type: ignore[no-untyped-def]
    platform.settings.max_request_bytes = 1000
    srv = server_for(platform)
    with httpx.Client(base_url=srv.url) as http:
        r = http.post("/api/v1/projects", json={"name": "x", "description": "y" * 5000})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        names = [p["name"] for p in http.get("/api/v1/projects").json()]
        assert names == ["default"]


def test_a_path_naming_artifacts_keeps_the_size_limit(
    platform: Platform,
    server_for,  # type: ignore[no-untyped-def]
) -> None:
    """Only the streaming upload routes are exempt from the limit, matched on the whole
    path: a project or model named after them is not (it let any body through)."""
    platform.settings.max_request_bytes = 1000
    srv = server_for(platform)
    big = {"k": "v" * 5000}
    with httpx.Client(base_url=srv.url) as http:
        for name in ("artifacts", "dataset-blobs"):
            assert http.post("/api/v1/projects", json={"name": name}).status_code == 201
            assert http.post(f"/api/v1/projects/{name}/models", json={"name": name}).is_success
            r = http.put(f"/api/v1/projects/{name}/models/{name}/tags", json=big)
            assert r.status_code == 413, r.text
            assert http.get(f"/api/v1/projects/{name}/models/{name}").json()["tags"] == {}
        # An MLflow route under such a project, too.
        r = http.post(
            "/projects/artifacts/api/2.0/mlflow/experiments/create",
            json={"name": "e", "tags": [{"key": "k", "value": "v" * 5000}]},
        )
        assert r.status_code == 413
        # The artifact upload itself still streams past the request limit.
        exp = http.post("/api/v1/projects/default/experiments", json={"name": "e"}).json()
        run = http.post(f"/api/v1/experiments/{exp['id']}/runs", json={"name": "r"}).json()
        r = http.put(f"/api/v1/runs/{run['id']}/artifacts/big.bin", content=b"x" * 5000)
        assert r.is_success, r.text


def test_a_body_found_too_large_while_streaming_is_413(
    platform: Platform,
    server_for,  # type: ignore[no-untyped-def]
) -> None:
    """Without a Content-Length the limit is found while the body streams in; the JSON
    route's own body parsing must not turn that into a 400."""
    platform.settings.max_request_bytes = 1000
    srv = server_for(platform)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "description": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    with httpx.Client(base_url=srv.url) as http:
        json_type = {"content-type": "application/json"}
        r = http.post("/api/v1/projects", content=chunks(), headers=json_type)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
        assert [p["name"] for p in http.get("/api/v1/projects").json()] == ["default"]


def test_the_sdk_takes_no_redirect_for_an_answer() -> None:
    """The API redirects nowhere: a 3xx means the request went to another route (a
    path that lost a segment), not that it succeeded."""
    from shipyard.client.api import Api

    request = httpx.Request("DELETE", "http://server/api/v1/runs/r/tags")
    response = httpx.Response(307, headers={"location": "/api/v1/runs/r/tags/"}, request=request)
    with pytest.raises(ShipyardError, match="unexpected redirect"):
        Api._decode(response)


def test_error_classes_round_trip() -> None:
    for cls in (InvalidInput, NotFound):
        err = ShipyardError.from_payload(cls.status, cls("boom", {"a": 1}).to_payload())
        assert type(err) is cls and err.message == "boom" and err.details == {"a": 1}
    assert isinstance(ShipyardError.from_payload(404, "plain text"), NotFound)


def test_an_error_whose_details_orjson_refuses_is_still_answered() -> None:
    """An error is answered with its status whatever its details hold: integers past
    64 bits, lone surrogates, objects and huge values are rendered as text, cut short."""
    from shipyard.server.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    details = {
        "points": 10**30,
        "huge": 10**5000,
        "text": "a\ud800b",
        "object": object(),
        "long": "x" * 2_000_000,
        "many": list(range(1000)),
        5: "a non-str key",
    }

    @app.get("/native")
    def native() -> None:
        raise InvalidInput("bad points \udfff", details)

    @app.get("/api/2.0/mlflow/thing")
    def mlflow() -> None:
        raise InvalidInput("bad \udfff thing", details)

    @app.get("/fine")
    def fine() -> None:
        raise InvalidInput("as it is", {"n": 2**63 - 1, "many": list(range(1000))})

    http = httpx.Client(transport=InProcessTransport(app), base_url="http://t")
    answer = http.get("/native")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and error["message"] == "bad points \\udfff"
    got = error["details"]
    assert got["points"] == str(10**30) and got["huge"] == "(16610-bit integer)"
    assert got["text"] == "a\\ud800b" and got["object"].startswith("<object object")
    assert got["long"] == "x" * 2000 + "..." and got["many"] == list(range(100))
    assert got["5"] == "a non-str key"
    assert len(answer.content) < 10_000
    answer = http.get("/api/2.0/mlflow/thing")
    assert answer.status_code == 400
    assert answer.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "bad \\udfff thing",
    }
    # Details orjson takes go out exactly as they are.
    answer = http.get("/fine")
    assert answer.json()["error"]["details"] == {"n": 2**63 - 1, "many": list(range(1000))}


echo_app = FastAPI()


@echo_app.put("/echo-size")
async def size(request: Request) -> dict[str, int]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return {"size": total}


@echo_app.get("/stream")
def stream() -> StreamingResponse:
    return StreamingResponse(b"x" * 65536 for _ in range(64))


def test_inprocess_transport_streams_both_ways() -> None:
    app = echo_app
    http = httpx.Client(transport=InProcessTransport(app), base_url="http://t")
    chunks = (b"a" * 1_000_000 for _ in range(20))
    assert http.put("/echo-size", content=chunks).json() == {"size": 20_000_000}
    with http.stream("GET", "/stream") as r:
        assert sum(len(c) for c in r.iter_bytes()) == 64 * 65536


def test_inprocess_transport_fails_a_response_cut_off_by_the_app() -> None:
    """An app that returns after part of its body (a server would close the connection)
    makes the reader fail, where it used to wait for the rest forever."""

    async def cut_off(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    http = httpx.Client(transport=InProcessTransport(cut_off), base_url="http://t")
    outcome: list[object] = []

    def read() -> None:
        try:
            with http.stream("GET", "/") as r:
                outcome.append(b"".join(r.iter_bytes()))
        except httpx.ReadError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "the reader still waits for the rest of the body"
    assert isinstance(outcome[0], httpx.ReadError)
    assert "before the end of its response body" in str(outcome[0])


def test_inprocess_transport_keeps_its_worker_threads_between_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Synchronous routes run on worker threads; the embedded transport's loop keeps
    them between requests (it started and stopped one per request, ~0.4 ms each)."""
    app = FastAPI()

    @app.get("/sync")
    def sync_route() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    transport = InProcessTransport(app)
    http = httpx.Client(transport=transport, base_url="http://t")
    assert http.get("/sync").status_code == 200  # the first starts a worker
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    names = {http.get("/sync").json()["thread"] for _ in range(20)}
    monkeypatch.undo()
    assert started == []
    assert len(names) == 1
    transport.close()
    transport._thread.join(timeout=10)
    assert not transport._thread.is_alive(), "the loop thread outlived close()"


def test_create_app_without_network(platform: Platform) -> None:
    app = create_app(platform)
    assert app.state.platform is platform
    with pytest.raises(AttributeError):
        _ = app.state.nothing


@pytest.mark.parametrize("otel", [False, True])
def test_request_telemetry_follows_the_otel_setting(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, otel: bool
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # As `opentelemetry-instrument` would: a configured SDK (not set globally, which
    # the OpenTelemetry API allows once per process).
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(platform.settings, "otel", otel)
    app = create_app(platform, ui=False)
    with httpx.Client(transport=InProcessTransport(app), base_url="http://t") as http:
        assert http.get("/healthz").status_code == 200
        # An MLflow path goes through an app of its own inside the server's.
        got = http.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=none")
        assert got.status_code == 404
    served = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert len(served) == (2 if otel else 0), [s.name for s in served]


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    from tests.conftest import free_port

    from shipyard.client import Client
    from shipyard.config import Settings
    from shipyard.errors import Unavailable

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        Client(url, settings=Settings(home=tmp_path)) as client,
        pytest.raises(Unavailable, match=f"cannot reach the Shipyard server at {url}"),
    ):
        client.experiments.list()
