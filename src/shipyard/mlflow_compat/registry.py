"""MLflow model-registry messages <-> Shipyard's registry services.

The routes in :mod:`shipyard.mlflow_compat.registry_routes` read a message, call the
functions here and the native services in :mod:`shipyard.registry`, and answer what
this module renders. What MLflow names differently is translated here, once:

- a version's ``source``: ``runs:/<run>/<path>``, ``models:/<logged model id>``,
  ``models:/<name>/<version>`` (a copy of another version) and
  ``mlflow-artifacts:/<exp>/<run>/artifacts/<path>`` or
  ``mlflow-artifacts:/<exp>/models/<model id>/artifacts/<path>`` become a run (and a
  folder of its artifacts) or a logged model; other schemes are refused, since
  Shipyard registers files it already holds, by hash;
- the download URI of a version is the artifact proxy's path of those files;
- filters (``name LIKE 'x%' AND tags.k = 'v'``) become :class:`Condition` lists and
  order_by items Shipyard's field names;
- MLflow's deprecated stages are the ``mlflow.stage`` version tag (no tag: "None"),
  shown as ``current_stage`` and left out of the tags MLflow sees;
- status is always READY: a version is complete when it is created.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from shipyard.errors import InvalidInput, NotFound
from shipyard.int64 import numeric_id, parse_int64
from shipyard.mlflow_compat.artifact_routes import model_artifact_uri, parse_target
from shipyard.mlflow_compat.errors import fail
from shipyard.mlflow_compat.tracking import run_artifact_uri
from shipyard.platform import Platform
from shipyard.registry import versions
from shipyard.registry.types import (
    STAGE_TAG,
    Condition,
    ModelRef,
    ModelVersion,
    RegisteredModel,
)
from shipyard.tracking.artifacts import files_under
from shipyard.tracking.logged_models import LOGGED_MODEL_PREFIX
from shipyard.tracking.paths import normalize_artifact_prefix
from shipyard.tracking.search_parser import TokenCursor
from shipyard.tracking.tables import ExperimentRow, LoggedModelRow, RunRow

# --- search filters and ordering ------------------------------------------------------------

_MODEL_FIELDS = {"name": "name"}
_VERSION_FIELDS = {
    "name": "name",
    "version_number": "version",
    "run_id": "run_id",
    "source_path": "source_path",
}
_TAG_PREFIXES = ("tags.", "tag.")
_ATTRIBUTE_PREFIXES = ("attributes.", "attribute.", "attr.")
_TEXT_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"})
_TAG_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_LISTS = frozenset({"name", "run_id"})

_MODEL_ORDER = {
    "name": "name",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
    "timestamp": "updated_at",
}
_VERSION_ORDER = {
    "name": "name",
    "version_number": "version",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
    "timestamp": "updated_at",
}
_ORDER_ITEM = re.compile(r"^\s*(\S+)(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)


class _FilterParser(TokenCursor):
    """``comparison (AND comparison)*`` over the tokens of the run search tokenizer:
    the whole of MLflow's registry filter language (it has no OR, NOT or parentheses)."""

    def __init__(self, source: str, fields: dict[str, str]) -> None:
        super().__init__(source)
        self.source = source
        self.fields = fields

    def fail(self, message: str) -> InvalidInput:
        return InvalidInput(
            f"Invalid filter {self.source[:200]!r}: {message} at position {self.tok.pos}"
        )

    def parse(self) -> list[Condition]:
        conditions = [self.comparison()]
        while self.tok.is_keyword("and"):
            self.advance()
            conditions.append(self.comparison())
        if self.tok.kind != "eof":
            raise self.fail(f"expected AND or the end, got {self.tok.shown()}")
        return conditions

    def comparison(self) -> Condition:
        field, key = self.field()
        op = self.operator()
        if field == "tag":
            if op not in _TAG_OPS:
                raise self.fail(f"{op} does not apply to tags (use =, !=, LIKE, ILIKE)")
            return Condition("tag", op, self.text(), key)
        ops = _NUMBER_OPS if field == "version" else _TEXT_OPS
        if op not in ops:
            raise self.fail(f"{op} does not apply to {key}")
        if op in ("IN", "NOT IN"):
            if field not in _LISTS and field != "version":
                raise self.fail(f"IN does not apply to {key}")
            values = self.values(number=field == "version")
            return Condition(field, op, values)  # type: ignore[arg-type]
        value: str | int = self.number() if field == "version" else self.text()
        return Condition(field, op, value)  # type: ignore[arg-type]

    def field(self) -> tuple[str, str]:
        tok = self.advance()
        if tok.kind != "word":
            raise self.fail(f"expected a field, got {tok.shown()}")
        word = tok.text
        for prefix in _TAG_PREFIXES:
            if word.lower().startswith(prefix):
                key = word[len(prefix) :]
                if not key:
                    quoted = self.advance()
                    if quoted.kind != "string" or not quoted.text:
                        raise self.fail("expected a tag key after 'tags.'")
                    key = quoted.text
                return "tag", key
        for prefix in _ATTRIBUTE_PREFIXES:
            if word.lower().startswith(prefix):
                word = word[len(prefix) :]
        if word not in self.fields:
            raise self.fail(
                f"invalid attribute key {word!r}: valid keys are {sorted(self.fields)} "
                "and tags.<key>"
            )
        return self.fields[word], word

    def operator(self) -> str:
        tok = self.advance()
        if tok.kind == "op":
            return "!=" if tok.text == "<>" else tok.text
        if tok.is_keyword("like", "ilike", "in"):
            return tok.text.upper()
        if tok.is_keyword("not") and self.tok.is_keyword("in"):
            self.advance()
            return "NOT IN"
        raise self.fail(f"expected a comparison operator, got {tok.shown()}")

    def text(self) -> str:
        tok = self.advance()
        if tok.kind == "string" and tok.quote in "'\"":
            return tok.text
        raise self.fail(f"expected a quoted string value, got {tok.shown()}")

    def number(self) -> int:
        tok = self.advance()
        text = tok.text if tok.kind in ("number", "string") else ""
        try:
            number = numeric_id(text, "version number")
        except InvalidInput as exc:  # past 64 bits
            raise self.fail(exc.message) from None
        if number is None:
            raise self.fail(f"expected a version number, got {tok.shown()}")
        return number

    def values(self, *, number: bool) -> tuple[str | int, ...]:
        if self.advance().kind != "lparen":
            raise self.fail("expected '(' to open a list of values")
        values: list[str | int] = [self.number() if number else self.text()]
        while self.tok.kind == "comma":
            self.advance()
            values.append(self.number() if number else self.text())
        if self.advance().kind != "rparen":
            raise self.fail("expected ',' or ')' in the list of values")
        return tuple(values)


def model_filter(filter_string: str | None) -> list[Condition]:
    """The conditions of a registered-model search filter (``name``, ``tags.<key>``)."""
    if not filter_string or not filter_string.strip():
        return []
    return _FilterParser(filter_string, _MODEL_FIELDS).parse()


def version_filter(filter_string: str | None) -> list[Condition]:
    """The conditions of a model-version search filter (``name``, ``version_number``,
    ``run_id``, ``source_path``, ``tags.<key>``)."""
    if not filter_string or not filter_string.strip():
        return []
    return _FilterParser(filter_string, _VERSION_FIELDS).parse()


def _order(items: Sequence[str], fields: dict[str, str]) -> list[str]:
    out = []
    for item in items:
        match = _ORDER_ITEM.match(item)
        name = match.group(1) if match else ""
        for prefix in _ATTRIBUTE_PREFIXES:
            if name.lower().startswith(prefix):
                name = name[len(prefix) :]
        if match is None or name not in fields:
            raise InvalidInput(
                f"Invalid order_by {item[:200]!r}: use one of {sorted(fields)} "
                "optionally followed by ASC or DESC"
            )
        out.append(f"{fields[name]} {(match.group(2) or 'ASC').upper()}")
    return out


def model_order(items: Sequence[str]) -> list[str]:
    """MLflow's order_by items for models in Shipyard's field names, ties broken by
    name as MLflow does."""
    order = _order(items, _MODEL_ORDER)
    if not any(item.startswith("name ") for item in order):
        order.append("name ASC")
    return order


def version_order(items: Sequence[str]) -> list[str]:
    """MLflow's order_by items for versions in Shipyard's field names."""
    return _order(items, _VERSION_ORDER)


# --- references -------------------------------------------------------------------------------


def version_selector(raw: Any) -> str:
    """A version number as the native services take it; INVALID_PARAMETER_VALUE when it is
    not an integer (as MLflow answers), RESOURCE_DOES_NOT_EXIST when it is below 1."""
    text = str(raw).strip()
    number = parse_int64(text)
    if number is None:
        raise fail(
            "INVALID_PARAMETER_VALUE",
            f"Parameter 'version' must be a 64-bit integer, got {raw!r:.50}.",
        )
    if number < 1:
        raise NotFound(f"model version {text} not found: versions start at 1")
    return str(number)


# --- version sources --------------------------------------------------------------------------

_SOURCE_HINT = (
    "Shipyard registers files it already holds: give runs:/<run_id>/<path>, "
    "models:/<logged model id>, models:/<name>/<version>, "
    "mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path> or "
    "mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts"
)
# The artifact proxy's path inside an http(s) source (what the MLflow server accepts too).
_PROXY_ROOT = "/api/2.0/mlflow-artifacts/artifacts/"


@dataclass(frozen=True)
class VersionSource:
    """Where a new version's files come from, in Shipyard's terms."""

    run_id: str | None
    logged_model_id: str | None
    source_path: str
    source_uri: str


def _invalid_source(source: str, why: str) -> InvalidInput:
    return InvalidInput(f"Invalid model version source: {source[:300]!r}: {why}")


def _path(source: str, raw: str) -> str:
    """A folder inside a run or logged model, decoded and checked (no '..', no '\\0')."""
    try:
        return normalize_artifact_prefix(urllib.parse.unquote(raw.strip("/")))
    except InvalidInput as exc:
        raise _invalid_source(source, exc.message) from None


def _experiment_of(
    platform: Platform,
    project_id: int,
    source: str,
    experiment: str,
    owner: tuple[str, str],
) -> None:
    """Refuse an ``mlflow-artifacts`` source whose experiment is not its run's (or logged
    model's), as the artifact proxy does: ``owner`` is ``("run", id)`` or ``("model", id)``.
    Sources outside the project are left for the registry to report as not found."""
    kind, owner_id = owner
    table = LoggedModelRow if kind == "model" else RunRow
    with platform.db.read() as session:
        actual = session.scalar(
            select(table.experiment_id)
            .join(ExperimentRow, ExperimentRow.id == table.experiment_id)
            .where(table.id == owner_id, ExperimentRow.project_id == project_id)
        )
    if actual is not None and experiment != str(actual):
        raise _invalid_source(source, f"the {kind} is not in experiment {experiment}")


def _logged_model_named(platform: Platform, run_id: str, name: str) -> str | None:
    """The newest ready logged model of the run with this name (MLflow 3's
    ``runs:/<run>/<name>`` for a model logged with ``name=``), when the run has no
    artifacts at that path."""
    with platform.db.read() as session:
        if files_under(session, run_id, name):
            return None
        return session.scalar(
            select(LoggedModelRow.id)
            .where(
                LoggedModelRow.run_id == run_id,
                LoggedModelRow.name == name,
                LoggedModelRow.status == "ready",
                LoggedModelRow.lifecycle == "active",
            )
            .order_by(LoggedModelRow.created_at.desc())
            .limit(1)
        )


def version_source(
    platform: Platform,
    project_id: int,
    source: str,
    run_id: str | None,
    model_id: str | None,
) -> VersionSource:
    """Translate ``CreateModelVersion``'s source, run_id and model_id; INVALID_PARAMETER_VALUE
    for a source Shipyard does not hold or that contradicts run_id or model_id."""
    parsed = urllib.parse.urlparse(source)
    scheme = parsed.scheme.lower()
    if "\x00" in source:
        raise _invalid_source(source, "it contains a NUL character")
    if scheme == "models":
        found = _models_source(platform, project_id, source, parsed)
    elif scheme == "runs":
        if parsed.netloc:
            raise _invalid_source(source, "a runs:/ source names no host")
        run, _, path = parsed.path.lstrip("/").partition("/")
        if not run:
            raise _invalid_source(source, "it names no run")
        folder = _path(source, path)
        logged = _logged_model_named(platform, run, folder) if folder else None
        found = VersionSource(run, logged, "" if logged else folder, source)
    elif scheme == "mlflow-artifacts" or (
        scheme in ("http", "https") and _PROXY_ROOT in parsed.path
    ):
        path = parsed.path
        if scheme != "mlflow-artifacts":
            path = path.split(_PROXY_ROOT, 1)[1]
        found = _proxy_source(platform, project_id, source, path.lstrip("/"))
    else:
        raise _invalid_source(source, _SOURCE_HINT)
    if run_id and found.run_id and run_id != found.run_id:
        raise _invalid_source(source, f"run_id {run_id!r} is not the run of the source")
    if model_id and found.logged_model_id != model_id:
        raise _invalid_source(source, f"model_id {model_id!r} is not the model of the source")
    if run_id and not found.run_id:
        return VersionSource(run_id, found.logged_model_id, found.source_path, found.source_uri)
    return found


def _models_source(
    platform: Platform, project_id: int, source: str, parsed: urllib.parse.ParseResult
) -> VersionSource:
    if parsed.netloc:
        raise _invalid_source(source, "sources must use this server's registry (no host)")
    parts = parsed.path.lstrip("/").split("/")
    if len(parts) == 1 and "@" not in parts[0]:
        model_id = parts[0]
        if not model_id.startswith(LOGGED_MODEL_PREFIX):
            raise _invalid_source(source, _SOURCE_HINT)
        return VersionSource(None, model_id, "", source)
    if len(parts) > 2 or not all(parts):
        raise _invalid_source(source, _SOURCE_HINT)
    # models:/<name>/<version|latest> or models:/<name>@<alias>: a copy of another version.
    if len(parts) == 1:
        reference = parts[0]
    elif parts[1].isascii() and parts[1].isdigit():
        reference = f"{parts[0]}/{parts[1]}"
    elif parts[1].lower() == "latest":
        reference = parts[0]
    else:
        raise _invalid_source(source, "stages are not sources: give a version or an alias")
    try:
        ref = ModelRef.parse(reference)
        origin = versions.get_version(platform, project_id, ref.name, ref.selector)
    except InvalidInput as exc:
        raise _invalid_source(source, exc.message) from None
    return VersionSource(
        origin.run_id,
        origin.logged_model_id,
        origin.source_path,
        f"models:/{origin.model_name}/{origin.version}",
    )


def _proxy_source(platform: Platform, project_id: int, source: str, path: str) -> VersionSource:
    """An artifact proxy path: a folder of a run's artifacts or of a logged model."""
    try:
        target = parse_target(path)
    except InvalidInput:
        raise _invalid_source(source, _SOURCE_HINT) from None
    _experiment_of(platform, project_id, source, target.experiment, (target.kind, target.owner))
    folder = _path(source, target.path)
    if target.kind == "model":
        return VersionSource(None, target.owner, folder, source)
    return VersionSource(target.owner, None, folder, source)


# --- rendering ------------------------------------------------------------------------------


def download_uri(platform: Platform, version: ModelVersion) -> str:
    """Where an MLflow client downloads a version's files: the artifact proxy's path of
    its logged model, or of its folder in the run's artifacts. ``version`` carries its
    files: INVALID_STATE when the source no longer holds exactly those."""
    with platform.db.read() as session:
        if version.logged_model_id is not None:
            experiment = session.scalar(
                select(LoggedModelRow.experiment_id).where(
                    LoggedModelRow.id == version.logged_model_id
                )
            )
            base = (
                model_artifact_uri(experiment, version.logged_model_id)
                if experiment is not None
                else None
            )
        else:
            experiment = session.scalar(
                select(RunRow.experiment_id).where(RunRow.id == version.run_id)
            )
            base = (
                run_artifact_uri(experiment, version.run_id)
                if experiment is not None and version.run_id is not None
                else None
            )
    if base is None:
        raise NotFound(
            f"the source of {version.model_name} version {version.version} no longer exists"
        )
    # The proxy serves the source as it is now; a version is the files as they were.
    if not versions.source_unchanged(platform, version):
        raise fail(
            "INVALID_STATE",
            f"the files of {version.model_name} version {version.version} changed at their "
            f"source ({version.source_uri}) after it was registered; download the version "
            "with Shipyard's client (client.models.download) or register a new version",
        )
    return f"{base}/{version.source_path}" if version.source_path else base


def version_to_mlflow(version: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message."""
    message: dict[str, Any] = {
        "name": version.model_name,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "user_id": version.created_by,
        "current_stage": version.tags.get(STAGE_TAG, "None"),
        "description": version.description,
        "source": version.source_uri
        or versions.default_source_uri(
            version.run_id, version.logged_model_id, version.source_path
        ),
        "status": "READY",
        "status_message": "",
        "tags": [{"key": k, "value": v} for k, v in version.tags.items() if k != STAGE_TAG],
        "aliases": list(version.aliases),
    }
    if version.run_id is not None:
        message["run_id"] = version.run_id
    if version.logged_model_id is not None:
        message["model_id"] = version.logged_model_id
    return message


def model_to_mlflow(model: RegisteredModel, latest: Sequence[ModelVersion]) -> dict[str, Any]:
    """A registered model as MLflow's ``RegisteredModel`` message; ``latest`` are its
    newest versions per stage (:func:`shipyard.registry.versions.latest_by_stage`)."""
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description,
        "latest_versions": [version_to_mlflow(v) for v in latest],
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
        "aliases": [{"alias": a, "version": str(n)} for a, n in model.aliases.items()],
    }


def models_to_mlflow(platform: Platform, models: Sequence[RegisteredModel]) -> list[dict[str, Any]]:
    """Registered models as MLflow messages, their latest versions in two queries."""
    latest = versions.latest_by_stage(platform, models)
    return [model_to_mlflow(m, latest[m.id]) for m in models]
