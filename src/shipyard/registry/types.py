"""API shapes of the model registry, and the rules for names, aliases and references."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from shipyard.errors import InvalidInput
from shipyard.int64 import numeric_id
from shipyard.tracking.types import INT64_MAX, Key, StoredText, TagValue

# No '@' or '/' in a model name: "name@alias" and "name/3" must parse one way only.
# Spaces are allowed inside a name ("Churn Model", common in MLflow registries), not at
# either end; '/' and '@' are not: they separate the version and the alias in a reference.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._ -]{0,248}[A-Za-z0-9._-])?$"
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# "latest" is what a bare model name means; an alias with that name would shadow it.
RESERVED_ALIASES = frozenset({"latest"})
DESCRIPTOR = "shipyard-model.json"
# Status of a deleted version: kept as a tombstone so its number is never reused.
DELETED_STATUS = "deleted"
# MLflow's model stages (deprecated there), kept as a version tag so that MLflow clients'
# ``models:/name/Production`` and get-latest-versions keep working; no tag means "None".
STAGE_TAG = "mlflow.stage"
STAGES = ("None", "Staging", "Production", "Archived")
MAX_DESCRIPTION_LENGTH = 100_000

ModelTags = dict[Key, TagValue]
"""Tags of a model or a version: run tags' rules (key, value length, no NUL, no lone
surrogate), so that both databases take the same tags."""

Description = Annotated[StoredText, Field(max_length=MAX_DESCRIPTION_LENGTH)]
"""The description of a model or a version."""

_TAGS: TypeAdapter[dict[str, str]] = TypeAdapter(ModelTags)
_DESCRIPTION: TypeAdapter[str] = TypeAdapter(Description)
T = TypeVar("T")


def _checked(adapter: TypeAdapter[T], value: object, what: str) -> T:
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        loc = first["loc"]
        if len(loc) == 1:  # a tag's value: name its key (a key's message names it)
            what = f"{what} {str(loc[0])[:60]!r}"
        raise InvalidInput(f"invalid {what}: {message}") from None


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` when they follow :data:`ModelTags`; InvalidInput naming the first bad
    key or value otherwise. The services check what every route hands them (MLflow's
    routes pass tags through as sent)."""
    return _checked(_TAGS, tags, "tag")


def check_description(description: str) -> str:
    """``description`` when it is a :data:`Description`; InvalidInput otherwise."""
    return _checked(_DESCRIPTION, description, "description")


def check_alias(alias: str) -> str:
    """Refuse alias names that could be confused with a version number or 'latest'."""
    if not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"invalid alias {alias[:120]!r}: use 1-100 letters, digits, '_' or '-'",
            {"alias": alias[:120]},
        )
    if alias.isdigit():
        raise InvalidInput(
            f"invalid alias {alias!r}: a pure number would be read as a version number",
            {"alias": alias},
        )
    if alias.lower() in RESERVED_ALIASES:
        raise InvalidInput(f"alias {alias!r} is reserved", {"alias": alias})
    return alias


def canonical_stage(stage: str) -> str:
    """MLflow's spelling of a stage name given in any case; InvalidInput otherwise."""
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise InvalidInput(f"invalid stage {stage[:50]!r}: use one of {', '.join(STAGES)}")


def check_model_name(name: str) -> str:
    """Refuse model names outside :data:`MODEL_NAME_PATTERN`."""
    if not re.match(MODEL_NAME_PATTERN, name):
        raise InvalidInput(
            f"invalid model name {name[:120]!r}: use letters, digits, spaces, '.', '_' or '-' "
            "(at most 250, starting with a letter or digit, not ending with a space)"
        )
    return name


MLFLOW_MODELS_SCHEME = "models:/"
ACCEPTED_REFERENCES = (
    "a registered model is named 'NAME/VERSION', 'NAME@ALIAS' or 'NAME' (its latest "
    "version), or in MLflow's spelling 'models:/NAME/VERSION' or 'models:/NAME@ALIAS'"
)


def _not_a_reference(ref: str) -> str | None:
    """Why ``ref`` is no model reference at all (a path, another URI), or None."""
    quoted = repr(ref[:200])
    if ref.startswith("runs:/"):
        return (
            f"{quoted} names a run's files, not a registered model: register them first "
            "(client.models.create_version(NAME, RUN_ID, 'model') or `shipyard models "
            "register NAME RUN_ID`) and load that version, or fetch the files with "
            "client.artifacts.download(RUN_ID, 'model', DEST)"
        )
    if "://" in ref or ref.startswith(("/", "./", "../", "~")) or ref in (".", ".."):
        return (
            f"{quoted} looks like a path or a URI, not a registered model: load() and "
            "download() fetch models from the registry"
        )
    return None


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: ``name@alias``, ``name/3`` or ``name`` (latest).

    MLflow's spelling of the same references is accepted too: ``models:/name/3``,
    ``models:/name@alias`` and ``models:/name/latest`` (a model name holds no ``:``
    nor ``/``, so neither spelling can be read as the other).

    ``selector`` is what the version routes accept: a version number, an alias,
    or ``"latest"``.
    """

    name: str
    selector: str

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        """Parse a reference; InvalidInput, saying what is accepted, for anything else."""
        given, ref = ref[:200], ref.removeprefix(MLFLOW_MODELS_SCHEME)
        if (refused := _not_a_reference(ref)) is not None:
            raise InvalidInput(f"{refused}; {ACCEPTED_REFERENCES}", {"reference": given})
        if "@" in ref:
            name, _, alias = ref.partition("@")
            return cls(check_model_name(name), check_alias(alias))
        if "/" in ref:
            name, _, version = ref.partition("/")
            if version == "latest":
                return cls(check_model_name(name), "latest")
            number = numeric_id(version, "version")
            if number is None or number < 1:
                raise InvalidInput(
                    f"invalid model reference {given!r}: the version must be a number "
                    f">= 1; {ACCEPTED_REFERENCES}",
                    {"reference": given},
                )
            return cls(check_model_name(name), str(number))
        return cls(check_model_name(ref), "latest")

    def __str__(self) -> str:
        if self.selector == "latest":
            return self.name
        sep = "/" if self.selector.isdigit() else "@"
        return f"{self.name}{sep}{self.selector}"


class RegisteredModelCreate(BaseModel):
    """Input of model registration."""

    name: str = Field(pattern=MODEL_NAME_PATTERN, description="Unique in the project.")
    description: Description = ""
    tags: ModelTags = Field(default_factory=dict)


class DescriptionUpdate(BaseModel):
    """Input of a description change (models and versions)."""

    description: Description


class RegisteredModel(BaseModel):
    """A named model in a project; its versions come from runs."""

    id: int
    project_id: int
    name: str
    description: str
    created_at: int
    updated_at: int
    tags: dict[str, str]
    aliases: dict[str, int] = Field(description="Alias -> version number.")
    latest_version: int | None


class ModelPage(BaseModel):
    """One page of a model search."""

    models: list[RegisteredModel]
    next_page_token: str | None


class ModelVersionCreate(BaseModel):
    """Input of version creation: the files under ``source_path`` in the run's artifacts,
    or (with ``logged_model_id``) the files of an MLflow 3 logged model."""

    run_id: str | None = Field(default=None, min_length=1, max_length=64)
    logged_model_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="An MLflow logged model ('m-...'): its files, and its run if it has one.",
    )
    source_path: str | None = Field(
        default=None,
        max_length=1000,
        description="Folder of the source: default 'model' in a run, all of a logged model.",
    )
    description: Description = ""
    tags: ModelTags = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_source(self) -> ModelVersionCreate:
        if self.run_id is None and self.logged_model_id is None:
            raise ValueError("give run_id (with source_path) or logged_model_id")
        return self


class ModelFile(BaseModel):
    """A file of a model version: path relative to the version root, blob hash and size."""

    path: str
    hash: str
    size: int


class ModelVersion(BaseModel):
    """A version of a registered model, made from a run's artifacts or a logged model."""

    id: int
    model_name: str
    version: int
    run_id: str | None = Field(description="None for a logged model made outside any run.")
    source_path: str
    logged_model_id: str | None = Field(
        default=None, description="The MLflow logged model the files came from, if any."
    )
    source_uri: str = Field(
        default="",
        description="The source in MLflow's words: as an MLflow client gave it, else "
        "'runs:/<run_id>/<source_path>' or 'models:/<logged_model_id>'.",
    )
    flavor: str = Field(description="From the shipyard-model.json descriptor; '' without one.")
    description: str
    status: str
    created_by: str
    created_at: int
    updated_at: int
    tags: dict[str, str]
    aliases: list[str]
    files: list[ModelFile] | None = Field(
        default=None, description="The version's files; None in listings."
    )


class VersionPage(BaseModel):
    """One page of a version search."""

    versions: list[ModelVersion]
    next_page_token: str | None


class AliasSet(BaseModel):
    """Point an alias at a version number."""

    version: int = Field(ge=1, le=INT64_MAX)


@dataclass(frozen=True)
class Condition:
    """One condition of a registry search, as the MLflow protocol expresses them.

    ``field`` is ``name`` (the model's), ``tag`` (``key`` names it), and for versions
    also ``version``, ``run_id`` or ``source_path``. ``op`` is ``=``, ``!=``, ``LIKE``
    (case-sensitive), ``ILIKE``, ``IN``, ``NOT IN``, or for ``version`` ``<``, ``<=``,
    ``>``, ``>=``. ``value`` is a tuple for IN and NOT IN.
    """

    field: Literal["name", "tag", "version", "run_id", "source_path"]
    op: str
    value: str | int | tuple[str | int, ...]
    key: str = ""
