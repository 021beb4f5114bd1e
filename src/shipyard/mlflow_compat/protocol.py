"""The MLflow wire protocol: request messages and project choice.

MLflow clients send GET requests with the message in the query string and other
methods with a JSON body; ids travel inside the message, not the path. Routes of
this package read the message once (:func:`message_of`) after the authorization
check has parsed it through a :class:`MessageResolver`.

A tracking URI picks the project: ``http://host:8080`` is the settings' default
project, ``http://host:8080/projects/<name>`` another one (the client keeps the
path prefix for every call, artifacts included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request

from shipyard.auth.resolvers import CachedResolver
from shipyard.int64 import INT64_MAX, INT64_MIN, parse_int64
from shipyard.mlflow_compat.errors import fail
from shipyard.platform import Platform
from shipyard.projects.resolvers import project_from_path
from shipyard.tracking.resolvers import experiment_project, run_project

Message = dict[str, Any]


# --- messages -----------------------------------------------------------------------------


async def read_message(request: Request) -> Message:
    """The request's message: the query string for GET, else the JSON body (or {}).

    Query fields that repeat (``order_by=a&order_by=b``) become lists; others stay
    strings, as MLflow's server reads them.
    """
    if request.method == "GET":
        message: Message = {}
        for key, value in request.query_params.multi_items():
            if key in message:
                prior = message[key]
                message[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
            else:
                message[key] = value
        return message
    body = await request.body()
    if not body.strip():
        return dict(request.query_params)
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise fail("MALFORMED_REQUEST", f"the request body is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise fail("INVALID_PARAMETER_VALUE", "the request body must be a JSON object")
    return message


def message_of(request: Request) -> Message:
    """The message the authorization check parsed for this request."""
    message = getattr(request.state, "mlflow_message", None)
    assert message is not None, "route lacks a MessageResolver in its require(...)"
    return message  # type: ignore[no-any-return]


def field(message: Message, name: str, *aliases: str, required: bool = True) -> Any:
    """A field of the message (or one of its older names); INVALID_PARAMETER_VALUE
    naming the field when it is required and missing or empty."""
    for key in (name, *aliases):
        value = message.get(key)
        if value not in (None, ""):
            return value
    if required:
        raise fail("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'.")
    return None


def int_of(value: Any, name: str, default: int | None = None) -> int | None:
    """An int64 field: a JSON number or a decimal string (protobuf's spelling), in the
    64-bit range (JSON numbers past it arrive as floats)."""
    if value in (None, ""):
        return default
    number: int | None = None
    if isinstance(value, str):
        number = parse_int64(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    if number is None or not INT64_MIN <= number <= INT64_MAX:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {value!r:.100} for parameter '{name}': expected a 64-bit integer.",
        )
    return number


def string_field(message: Message, name: str, *, required: bool = True) -> str:
    """A string field, as MLflow's handlers assert it: INVALID_PARAMETER_VALUE naming
    the field when it holds another JSON type (a number, a bool: stored as Python
    wrote them before), or, when ``required``, when it is missing or empty; "" for an
    optional one that is absent."""
    value = message.get(name)
    if value is not None and not isinstance(value, str):
        raise fail(
            "INVALID_PARAMETER_VALUE", f"Invalid value {value!r:.100} for parameter '{name}'."
        )
    if required and not value:
        raise fail("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'.")
    return value or ""


def text_field(message: Message, name: str) -> str | None:
    """An optional string field (None when absent or empty); INVALID_PARAMETER_VALUE
    naming the field when the message holds another JSON type there."""
    value = message.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise fail(
            "INVALID_PARAMETER_VALUE", f"Invalid value {value!r:.100} for parameter '{name}'."
        )
    return value


def int_field(message: Message, name: str, *, default: int | None = None) -> int | None:
    """The integer field ``name`` of a message (see :func:`int_of`)."""
    return int_of(message.get(name), name, default)


def list_field(message: Message, name: str) -> list[Any]:
    """A repeated field: a list in JSON, one or many query values in a GET."""
    value = message.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- choosing the project ------------------------------------------------------------------


def project_of_url(request: Request, platform: Platform) -> int:
    """The project the tracking URI names: ``/projects/<name>/...`` or the default."""
    return project_from_path.resolve(platform, _url_name(request, platform))


DEFAULT_EXPERIMENT_ID = "0"
"""MLflow's default experiment id; here, the experiment named 'Default' of the project."""


class MessageResolver:
    """A project resolver for MLflow routes: parses the message first (async), then
    ``locate(request, platform, message)`` finds the project.

    ``cached(request, platform, message)``, when given, answers from the resolvers'
    caches only (None when not cached): the authorization check then decides on the
    event loop, sparing a worker-thread hop per request.
    """

    def __init__(
        self,
        locate: Callable[[Request, Platform, Message], int],
        cached: Callable[[Request, Platform, Message], int | None] | None = None,
    ) -> None:
        self.locate = locate
        self.cached = cached

    async def prepare(self, request: Request) -> None:
        if getattr(request.state, "mlflow_message", None) is None:
            request.state.mlflow_message = await read_message(request)

    def __call__(self, request: Request, platform: Platform) -> int:
        return self.locate(request, platform, message_of(request))

    def peek(self, request: Request, platform: Platform) -> int | None:
        """The project without I/O, when the caches know it; else None."""
        if self.cached is None:
            return None
        return self.cached(request, platform, message_of(request))


def _peek(resolver: CachedResolver, platform: Platform, value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    return resolver.cached(platform, value)


def _url_name(request: Request, platform: Platform) -> str:
    return str(request.path_params.get("project") or platform.settings.project)


def _url(request: Request, platform: Platform, _: Message) -> int:
    return project_of_url(request, platform)


def _url_cached(request: Request, platform: Platform, _: Message) -> int | None:
    return _peek(project_from_path, platform, _url_name(request, platform))


def _experiment(request: Request, platform: Platform, message: Message) -> int:
    raw = str(field(message, "experiment_id"))
    if raw == DEFAULT_EXPERIMENT_ID:
        return project_of_url(request, platform)
    return experiment_project.resolve(platform, raw)


def _experiment_cached(request: Request, platform: Platform, message: Message) -> int | None:
    raw = message.get("experiment_id")
    if raw == DEFAULT_EXPERIMENT_ID:
        return _url_cached(request, platform, message)
    return _peek(experiment_project, platform, str(raw) if isinstance(raw, int) else raw)


def _run(request: Request, platform: Platform, message: Message) -> int:
    return run_project.resolve(platform, str(field(message, "run_id", "run_uuid")))


def _run_cached(request: Request, platform: Platform, message: Message) -> int | None:
    return _peek(run_project, platform, message.get("run_id") or message.get("run_uuid"))


url_message = MessageResolver(_url, _url_cached)
"""Parse the message; the project is the tracking URI's (names, searches, creates)."""

experiment_message = MessageResolver(_experiment, _experiment_cached)
"""Parse the message; the project of its ``experiment_id`` ('0': the URI's project)."""

run_message = MessageResolver(_run, _run_cached)
"""Parse the message; the project of its ``run_id`` (or the older ``run_uuid``)."""
