"""The HTTP core of the SDK: one httpx client, JSON in and out, errors re-raised."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel

from shipyard.errors import ShipyardError, Unavailable

API_PREFIX = "/api/v1"
M = TypeVar("M", bound=BaseModel)


class Api:
    """Sends requests to a Shipyard server (remote or in-process) and decodes replies."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Call ``API_PREFIX + path`` and return the decoded JSON body."""
        return self._decode(self._send(method, path, json, params))

    def request_as(self, model: type[M], method: str, path: str, *, json: Any = None) -> M:
        """Call ``API_PREFIX + path`` and validate the reply as ``model`` straight from
        its bytes (pydantic's own parser: faster than decoding, then validating)."""
        response = self._send(method, path, json, None)
        if response.status_code >= 400:
            self._decode(response)
        return model.model_validate_json(response.content)

    def _send(
        self, method: str, path: str, json: Any, params: dict[str, Any] | None
    ) -> httpx.Response:
        content = (
            orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY) if json is not None else None
        )
        headers = {"content-type": "application/json"} if content is not None else None
        try:
            return self.http.request(
                method,
                API_PREFIX + path,
                content=content,
                params=_clean(params),
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Shipyard server: {exc}") from exc

    def get(self, path: str, /, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, /, **params: Any) -> Any:
        return self.request("POST", path, json=json, params=params)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.request("PATCH", path, json=json)

    def put(self, path: str, json: Any = None) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str, /, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)

    def upload(
        self, path: str, chunks: Iterable[bytes], *, params: dict[str, Any] | None = None
    ) -> Any:
        """PUT a streamed body (artifacts): never read whole into memory."""
        try:
            response = self.http.put(
                API_PREFIX + path,
                content=chunks,
                params=_clean(params),
                headers={"content-type": "application/octet-stream"},
            )
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Shipyard server: {exc}") from exc
        return self._decode(response)

    @contextmanager
    def download(self, path: str, /, **params: Any) -> Iterator[httpx.Response]:
        """GET a streamed body; the caller iterates ``response.iter_bytes()``."""
        try:
            with self.http.stream("GET", API_PREFIX + path, params=_clean(params)) as response:
                if response.status_code >= 400:
                    response.read()
                    self._decode(response)
                yield response
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Shipyard server: {exc}") from exc

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        body = response.content
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = body[:500].decode(errors="replace")
        if response.status_code >= 400:
            raise ShipyardError.from_payload(response.status_code, payload)
        return payload

    def close(self) -> None:
        self.http.close()


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None}
