"""An httpx transport that calls an ASGI app in this process.

Embedded mode uses it so that the SDK has one implementation, over HTTP, in
both modes. Unlike test transports it streams both ways: request bodies are
pulled from the caller's iterator chunk by chunk, and response bodies reach the
caller through a bounded queue, so a 2 GB artifact never sits in memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

log = logging.getLogger("shipyard.client")
_END = object()


class _QueueStream(httpx.SyncByteStream):
    def __init__(self, chunks: queue.Queue[Any], task: concurrent.futures.Future[None]) -> None:
        self._chunks = chunks
        self._task = task

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(f"response body failed: {item}") from item
            yield item

    def close(self) -> None:
        if not self._task.done():
            self._task.cancel()


class InProcessTransport(httpx.BaseTransport):
    """Run requests against ``app`` on a private event loop thread."""

    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.app = app
        self.client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="shipyard-embedded", daemon=True
        )
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.stream
        started: concurrent.futures.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            concurrent.futures.Future()
        )
        chunks: queue.Queue[Any] = queue.Queue(maxsize=16)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": self.client,
            "server": (request.url.host, request.url.port or 80),
        }
        body_iter = iter(body)  # type: ignore[call-overload]
        loop = self._loop

        def next_chunk() -> bytes | None:
            return next(body_iter, None)

        async def receive() -> Message:
            chunk = await loop.run_in_executor(None, next_chunk)
            if chunk is None:
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                data = message.get("body", b"")
                if data:
                    await loop.run_in_executor(None, chunks.put, data)
                if not message.get("more_body", False):
                    await loop.run_in_executor(None, chunks.put, _END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                else:
                    log.debug("embedded app failed after responding: %r", exc)
                    chunks.put(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if not started.done():
                    started.set_exception(RuntimeError("app returned without a response"))

        task = asyncio.run_coroutine_threadsafe(run(), loop)
        status, headers = started.result()
        return httpx.Response(
            status_code=status, headers=headers, stream=_QueueStream(chunks, task), request=request
        )

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
