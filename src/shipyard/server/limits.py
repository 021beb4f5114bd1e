"""Request size limits, enforced before a route reads the body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLarge
from shipyard.server.responses import FastJSON


class BodyLimit:
    """Refuse bodies over ``max_bytes`` (by Content-Length, or while streaming).

    Streaming upload routes (paths containing a segment in ``streaming``) are
    exempt: they enforce their own, larger limit while they stream.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, streaming: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streaming = streaming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(s in scope["path"] for s in self.streaming):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        limit = self.max_bytes

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body is over {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = PayloadTooLarge(f"request body is over the limit of {self.max_bytes} bytes")
        response = FastJSON(err.to_payload(), status_code=err.status)
        await response(scope, receive, send)
