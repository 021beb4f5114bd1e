"""The HTTP core of the SDK: one httpx client, JSON in and out, errors re-raised."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
from blake3 import blake3
from pydantic import BaseModel

from shipyard.errors import IntegrityError, ShipyardError, Unavailable
from shipyard.hashing import HASH_HEADER, VERIFY_FIRST_HEADER

API_PREFIX = "/api/v1"
M = TypeVar("M", bound=BaseModel)
_DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def segment(value: str | int) -> str:
    """``value`` (a name, a key, an id) as one URL path segment. Percent-encoded, as a
    name may hold '/', '?' or '%'; and ``.`` and ``..`` too, which a URL would
    otherwise resolve away (``/runs/r/tags/..`` is ``/runs/tags``): sent as they are,
    a request for an experiment named ``..`` reached the list of experiments."""
    text = quote(str(value), safe="")
    return _DOT_SEGMENTS.get(text, text)


def segments(path: str) -> str:
    """A ``/``-separated path (an artifact's) as URL path segments, each as
    :func:`segment` writes it: a ``..`` in it reaches the server, which refuses it,
    instead of being resolved away on the way."""
    return "/".join(segment(part) for part in path.split("/"))


class _BodyCut(Exception):
    """A download's body broke off after its status line."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


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
        timeout: float | None = None,
    ) -> Any:
        """Call ``API_PREFIX + path`` and return the decoded JSON body. ``timeout``
        (seconds to wait for the reply) replaces the client's own for this request."""
        return self._decode(self._send(method, path, json, params, timeout))

    def request_as(self, model: type[M], method: str, path: str, *, json: Any = None) -> M:
        """Call ``API_PREFIX + path`` and validate the reply as ``model`` straight from
        its bytes (pydantic's own parser: faster than decoding, then validating)."""
        response = self._send(method, path, json, None)
        if response.status_code >= 300:
            self._decode(response)
        return model.model_validate_json(response.content)

    def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: dict[str, Any] | None,
        timeout: float | None = None,
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
                **({} if timeout is None else {"timeout": httpx.Timeout(timeout, connect=10.0)}),
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

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
            raise self._unreachable(exc) from exc
        return self._decode(response)

    @contextmanager
    def download(
        self, path: str, /, *, headers: dict[str, str] | None = None, **params: Any
    ) -> Iterator[httpx.Response]:
        """GET a streamed body; the caller iterates ``response.iter_bytes()``."""
        try:
            with self.http.stream(
                "GET", API_PREFIX + path, params=_clean(params), headers=headers
            ) as response:
                if response.status_code >= 300:
                    response.read()
                    self._decode(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _verified_chunks(
        self, path: str, what: str, expected: str | None, *, verify_first: bool = False
    ) -> Iterator[bytes]:
        """The body of GET ``path``, re-hashed (BLAKE3) as it streams: IntegrityError
        after the last chunk if it differs from ``expected`` (the hash the caller
        knows) or, without one, from the hash the server announced; _BodyCut when
        the body breaks off. ``verify_first`` asks the server to check the blob
        before it answers."""
        headers = {VERIFY_FIRST_HEADER: "1"} if verify_first else None
        with self.download(path, headers=headers) as response:
            announced = response.headers.get(HASH_HEADER, "")
            if expected is not None and announced != expected:
                raise IntegrityError(
                    f"{what}: the server announced hash {announced[:64] or 'none'}, "
                    f"expected {expected}"
                )
            hasher = blake3()
            try:
                for chunk in response.iter_raw():
                    hasher.update(chunk)
                    yield chunk
            except httpx.TransportError as exc:
                raise _BodyCut(exc) from exc
        want = expected or announced
        if hasher.hexdigest() != want:
            raise IntegrityError(
                f"{what} is corrupt: got BLAKE3 {hasher.hexdigest()}, "
                f"expected {want[:64] or 'no hash'}"
            )

    def _receive_verified(
        self,
        path: str,
        what: str,
        expected: str | None,
        write: Callable[[bytes], object],
        restart: Callable[[], object],
    ) -> None:
        """Pass the verified body of GET ``path`` to ``write``, asking once more after
        a cut body (``restart`` drops what was written).

        A server finds a large blob corrupt only while it streams it, after the
        status line: it can only cut the body, which reads like a network fault. Asked
        again with the blob to be checked first, it answers IntegrityError cleanly (or,
        where the network cut it, the whole body). Intact blobs are read once.
        """
        try:
            for chunk in self._verified_chunks(path, what, expected):
                write(chunk)
            return
        except _BodyCut:
            restart()
        try:
            for chunk in self._verified_chunks(path, what, expected, verify_first=True):
                write(chunk)
        except _BodyCut as cut:
            raise self._unreachable(cut.error) from cut.error

    def read_verified(self, path: str, what: str, *, expected: str | None = None) -> bytes:
        """GET ``path`` into memory, verified (small bodies only)."""
        parts: list[bytes] = []
        self._receive_verified(path, what, expected, parts.append, parts.clear)
        return b"".join(parts)

    def download_verified(
        self, path: str, target: Path, what: str, *, expected: str | None = None
    ) -> None:
        """Stream GET ``path`` to ``target``; the file appears only once verified."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with open(tmp, "wb") as out:

                def restart() -> None:
                    out.seek(0)
                    out.truncate()

                self._receive_verified(path, what, expected, out.write, restart)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _unreachable(self, exc: httpx.TransportError) -> Unavailable:
        """Unavailable, naming the server (SHIPYARD_URL) that could not be reached."""
        return Unavailable(f"cannot reach the Shipyard server at {self.http.base_url}: {exc}")

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        body = response.content
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = body[:500].decode(errors="replace")
        if response.status_code >= 400:
            raise ShipyardError.from_payload(response.status_code, payload)
        if response.status_code >= 300:  # the API redirects nowhere: a path went wrong
            where = response.headers.get("location", "")
            raise ShipyardError(
                f"unexpected redirect ({response.status_code}) from {response.request.url.path}"
                f" to {where}"
            )
        return payload

    def close(self) -> None:
        self.http.close()


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None}
