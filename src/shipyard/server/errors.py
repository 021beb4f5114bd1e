"""Turn every failure into the one JSON error shape; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.auth.loopback import IN_PROCESS
from shipyard.blobs.http import BodyCut
from shipyard.errors import IntegrityError, InvalidInput, NotFound, ShipyardError, Unavailable
from shipyard.int64 import INT64_MAX, INT64_MIN
from shipyard.mlflow_compat.errors import MLFLOW_CODE, is_mlflow_path, mlflow_error
from shipyard.server.responses import FastJSON
from shipyard.ui.page_route import is_page

log = logging.getLogger("shipyard.server")

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}


# An error answer past this size is rendered with its details cut (see _renderable).
_MAX_ERROR_BYTES = 1 << 20
_MAX_TEXT = 2_000
_MAX_ITEMS = 100
_MAX_DEPTH = 8


def _renderable(value: Any, depth: int = 0) -> Any:
    """``value`` cut down to JSON that orjson always encodes: an integer past 64 bits
    as text, a lone surrogate as its escape, text cut to 2,000 characters,
    containers to 100 items and 8 levels, anything else as its ``repr``."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        # str() of an int raises past 4,300 digits.
        return str(value) if value.bit_length() < 1000 else f"({value.bit_length()}-bit integer)"
    if isinstance(value, str):
        text = value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
        # A lone surrogate is no character (UTF-8 has none): written as its escape.
        return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()
    if depth >= _MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_ITEMS]
        return {_renderable(str(k)): _renderable(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [_renderable(v, depth + 1) for v in list(value)[:_MAX_ITEMS]]
    return _renderable(repr(value))


def _error_json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    """``payload`` (an error) as a JSON response that always renders: an error must
    reach its caller even when its details hold what orjson refuses (an integer past
    64 bits, a lone surrogate, an object) or a refused value copied whole. Those are
    rendered through :func:`_renderable`; any other error goes out exactly as it is."""
    try:
        response = FastJSON(payload, status_code=status, headers=headers)
        if len(response.body) <= _MAX_ERROR_BYTES:
            return response
    except TypeError:  # orjson's JSONEncodeError
        pass
    return FastJSON(_renderable(payload), status_code=status, headers=headers)


def error_response(err: ShipyardError, request: Request | None = None) -> Response:
    """The error in Shipyard's shape, in MLflow's on an MLflow protocol route, or as a
    page for a browser on the web UI."""
    if request is not None and is_page(request):
        from shipyard.ui.errors import error_page

        return error_page(request, err)
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    if request is not None and is_mlflow_path(request.url.path):
        payload, status = mlflow_error(err)
        return _error_json(payload, status, headers)
    return _error_json(err.to_payload(), err.status, headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
        )
    return out


_INTERNAL = "internal error; the server log has the details"


def _log_reported(scope: Scope, err: ShipyardError | BodyCut, where: str = "") -> None:
    """Log a server-side failure whose message the caller receives too.

    A network caller's failure is the operator's to see: an error line in the
    server's log. A caller in this process (the embedded SDK) is the same program
    that gets the error raised; with no logging configured, Python prints warnings
    and errors on stderr, which would repeat it into the user's terminal, so there
    it is logged at INFO (kept for whoever configures logging).
    """
    level = logging.INFO if scope.get(IN_PROCESS) else logging.ERROR
    code = err.code if isinstance(err, ShipyardError) else IntegrityError.code
    log.log(level, "%s: %s%s", code, err, where)


class AnswerUnexpected:
    """Answers an exception no handler knows as the JSON 500 of the error tree, and
    logs it, without raising it further.

    Starlette's outermost handler (the one for ``Exception``) answers and then raises
    again, and uvicorn closes the connection on an exception: a client that keeps its
    connection alive and retries 5xx answers (the mlflow client does) then meets a
    reset connection instead of the error. This middleware sits inside that one, so
    only exceptions from the outer middlewares still reach it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except BodyCut as cut:
            if not started:  # never raised before the body: but if so, a plain 500
                raise
            _log_reported(scope, cut, f" (the download of {scope.get('path')} was cut)")
            # An ASGI app cannot abort a response: a server drops the connection when
            # the app returns before the body's end, the in-process transport when
            # the app raises (where nothing prints a traceback: see _unexpected).
            if scope.get(IN_PROCESS):
                raise
        except Exception:
            if started:  # too late for an answer: the outer handler logs it, closes
                raise
            request = Request(scope)
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            await error_response(ShipyardError(_INTERNAL), request)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that produce ``{"error": {code, message, details}}``."""

    @app.exception_handler(ShipyardError)
    async def _shipyard(request: Request, exc: ShipyardError) -> Response:
        if exc.status >= 500:
            _log_reported(request.scope, exc)
        return error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] or first["loc"])
        message = f"invalid request: {where}: {first['msg']}" if where else first["msg"]
        return error_response(InvalidInput(message, {"errors": details}), request)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and not is_mlflow_path(request.url.path):
            from shipyard.ui.errors import error_page, wants_html

            if wants_html(request):
                return error_page(request, NotFound(f"there is no page at {request.url.path}"))
        if exc.status_code == 404:
            return error_response(
                NotFound("no such route", {MLFLOW_CODE: "ENDPOINT_NOT_FOUND"}), request
            )
        if is_mlflow_path(request.url.path):
            if exc.status_code == 405:
                message = f"method {request.method} is not allowed on {request.url.path}"
                return error_response(
                    NotFound(message, {MLFLOW_CODE: "ENDPOINT_NOT_FOUND"}), request
                )
            return error_response(ShipyardError(str(exc.detail)), request)
        err = ShipyardError(str(exc.detail))
        payload = err.to_payload()
        payload["error"]["code"] = _STATUS_CODES.get(exc.status_code, "http_error")
        return _error_json(payload, exc.status_code)

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> Response:
        # The database refused a value the API let through (too long, out of range).
        log.warning("database refused a value: %s", exc.orig)
        if "NUL" in str(exc.orig):  # PostgreSQL's text holds no \x00
            message = "a value was refused by the metadata store: text must not contain NUL"
        else:
            message = "a value was refused by the metadata store (too large?)"
        return error_response(InvalidInput(message), request)

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> Response:
        log.error("database error: %s", exc)
        return error_response(Unavailable("the metadata store is unavailable"), request)

    app.add_middleware(AnswerUnexpected)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Only what the middlewares outside AnswerUnexpected raise comes here, and a
        # cut blob download, which AnswerUnexpected has logged already.
        if not isinstance(exc, BodyCut):
            log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ShipyardError(_INTERNAL), request)
