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

from shipyard.auth.loopback import IN_PROCESS

log = logging.getLogger("shipyard.client")
_END = object()
WINDOW = 16


def _body_receiver(
    request: httpx.Request, loop: asyncio.AbstractEventLoop, finished: asyncio.Event
) -> Any:
    """The ASGI ``receive`` for ``request``'s body.

    In-memory bodies are handed over at once. Streamed bodies (file uploads) are
    pulled by a feeder thread of their own, a few chunks ahead of the app. No
    executor is used, so requests still work from ``atexit`` handlers, after
    Python has shut ``concurrent.futures`` down. Once the body is consumed,
    ``receive`` waits for the response to finish and then reports a disconnect,
    as a server does (Starlette listens for it while streaming).
    """
    if isinstance(request.stream, httpx.ByteStream):
        body: bytes | None = request.read()

        async def receive_once() -> Message:
            nonlocal body
            if body is None:
                await finished.wait()
                return {"type": "http.disconnect"}
            chunk, body = body, None
            return {"type": "http.request", "body": chunk, "more_body": False}

        return receive_once

    pending: asyncio.Queue[Any] = asyncio.Queue()
    ahead = threading.Semaphore(WINDOW)
    stream: Any = request.stream

    def feed() -> None:
        try:
            for chunk in stream:
                ahead.acquire()
                loop.call_soon_threadsafe(pending.put_nowait, bytes(chunk))
            loop.call_soon_threadsafe(pending.put_nowait, None)
        except BaseException as exc:  # the caller's iterator failed: fail the request
            loop.call_soon_threadsafe(pending.put_nowait, exc)

    feeder = threading.Thread(target=feed, name="shipyard-upload", daemon=True)
    feeder_started = False
    body_done = False

    async def receive() -> Message:
        nonlocal feeder_started, body_done
        if body_done:
            await finished.wait()
            return {"type": "http.disconnect"}
        if not feeder_started:
            feeder_started = True
            feeder.start()
        item = await pending.get()
        if item is None:
            body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if isinstance(item, BaseException):
            raise item
        ahead.release()
        return {"type": "http.request", "body": item, "more_body": True}

    return receive


class _QueueStream(httpx.SyncByteStream):
    def __init__(
        self,
        chunks: queue.Queue[Any],
        task: concurrent.futures.Future[None],
        window: threading.Semaphore,
    ) -> None:
        self._chunks = chunks
        self._task = task
        self._window = window

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(f"response body failed: {item}") from item
            self._window.release()
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
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._serve, name="shipyard-embedded", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # One long-lived task runs the loop (not run_forever): anyio takes the task that
        # run_until_complete started as the root of every request, so the worker threads
        # that run the synchronous routes are kept between requests. Under run_forever
        # each request was its own root, and its end stopped the thread it had started:
        # a thread started and stopped per request, ~1 ms of a 200-run search here.
        async def until_closed() -> None:
            await self._closed

        self._loop.run_until_complete(until_closed())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started: concurrent.futures.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            concurrent.futures.Future()
        )
        chunks: queue.Queue[Any] = queue.Queue()
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
            # Marks a caller in this process (it shares the platform's stores): set only
            # here, never from anything a network request carries.
            IN_PROCESS: True,
        }
        loop = self._loop
        finished = asyncio.Event()
        receive = _body_receiver(request, loop, finished)
        # The response window: the app may run at most WINDOW chunks ahead of the reader.
        window = threading.Semaphore(WINDOW)

        body_ended = False

        async def send(message: Message) -> None:
            nonlocal body_ended
            if message["type"] == "http.response.start":
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                data = message.get("body", b"")
                if data:
                    while not window.acquire(blocking=False):
                        await asyncio.sleep(0.001)
                    chunks.put(data)
                if not message.get("more_body", False):
                    body_ended = True
                    chunks.put(_END)
                    finished.set()

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
                finished.set()
            except BaseException as exc:
                finished.set()
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
                elif not body_ended:
                    # A server closes the connection here and the client sees a cut-off
                    # body: the reader must fail, not wait for the rest forever.
                    chunks.put(RuntimeError("app returned before the end of its response body"))

        task = asyncio.run_coroutine_threadsafe(run(), loop)
        status, headers = started.result()
        return httpx.Response(
            status_code=status,
            headers=headers,
            stream=_QueueStream(chunks, task, window),
            request=request,
        )

    def close(self) -> None:
        def finish() -> None:
            if not self._closed.done():
                self._closed.set_result(None)

        self._loop.call_soon_threadsafe(finish)
