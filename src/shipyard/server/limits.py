"""Request size limits, enforced before a route reads the body, and the turns that
large bodies take."""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLarge
from shipyard.server.responses import FastJSON
from shipyard.turns import UploadTurns


class StreamingUploads:
    """The upload routes that read their body as a stream and hold it to their own,
    larger limit (artifacts, dataset blobs): every other request is held to the server's
    request limit and takes turns for a big body.

    A request is one of them only if its method and its whole path match one of the
    routes' templates (``("PUT", "/api/v1/runs/{run_id}/artifacts/{path:path}")``): a
    path that merely contains ``/artifacts`` (a project or model named so) is not.
    """

    def __init__(self, routes: Iterable[tuple[str, str]]) -> None:
        self._routes: list[tuple[str, re.Pattern[str]]] = [
            (method, compile_path(template)[0]) for method, template in routes
        ]

    def __contains__(self, scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        return any(m == method and pattern.match(path) for m, pattern in self._routes)


class BodyLimit:
    """Refuse bodies over ``max_bytes`` (by Content-Length, or while streaming) with
    413, except on the ``streaming`` upload routes, which enforce their own limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, streaming: StreamingUploads) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streaming = streaming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope in self.streaming:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        limit = self.max_bytes
        over = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise PayloadTooLarge(f"request body is over {limit} bytes")
            return message

        async def answer_413_once_over(message: Message) -> None:
            # A route that reads its body whole (FastAPI's JSON parsing) turns any error
            # while reading into its own 400: a body found too large as it streamed in
            # (no Content-Length) is answered 413 here instead, whatever the app says.
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._refuse(scope, receive, send)

        await self.app(scope, counting_receive, answer_413_once_over)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = PayloadTooLarge(f"request body is over the limit of {self.max_bytes} bytes")
        response = FastJSON(err.to_payload(), status_code=err.status)
        await response(scope, receive, send)


BIG_BODY = 1 << 20
"""A body over this takes upload turns (:class:`BigBodyTurns`)."""
BYTES_PER_UNIT = 2 << 20


class BigBodyTurns:
    """Requests whose body is read and parsed whole (JSON: FastAPI's models, MLflow's
    messages) take upload turns when the body is over 1 MiB, a unit per 2 MiB, for as
    long as they run: parsed JSON takes several times its size in memory, and bodies
    may be 64 MiB. Small bodies (nearly every request) never wait; streaming uploads
    take their own turns in their routes."""

    def __init__(self, app: ASGIApp, turns: UploadTurns, streaming: StreamingUploads) -> None:
        self.app = app
        self.turns = turns
        self.streaming = streaming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        units = 0
        if scope["type"] == "http" and scope not in self.streaming:
            units = _body_units(scope.get("headers", []))
        if not units:
            await self.app(scope, receive, send)
            return
        async with self.turns.held(units):
            await self.app(scope, receive, send)


def _body_units(headers: list[tuple[bytes, bytes]]) -> int:
    """The turns a request's body takes: none when small; all when its size is unknown."""
    for name, value in headers:
        if name == b"content-length":
            size = int(value) if value.isdigit() else 0
            return 0 if size <= BIG_BODY else -(-size // BYTES_PER_UNIT)
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return 1 << 30  # held to the capacity: as many as may be
    return 0
