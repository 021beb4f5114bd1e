"""SDK client of the model registry (``client.models``)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from blake3 import blake3

from shipyard.client.api import Api, segment, segments
from shipyard.errors import IntegrityError, InvalidInput
from shipyard.registry.integrity import matches, safe_target
from shipyard.registry.types import (
    DESCRIPTOR,
    ModelFile,
    ModelPage,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    VersionPage,
)

if TYPE_CHECKING:
    from shipyard.client.client import Client


class ModelsClient:
    """``client.models``: registered models, their versions and aliases, download and load.

    A model reference is ``"name@alias"``, ``"name/3"`` or ``"name"`` (the
    latest version). Every method takes ``project`` (default: the client's).
    """

    def __init__(self, api: Api, client: Client) -> None:
        self._api = api
        self._client = client

    # --- paths ---------------------------------------------------------------------

    def _models(self, project: str | None) -> str:
        return f"/projects/{segment(project or self._client.project)}/models"

    def _model(self, name: str, project: str | None) -> str:
        return f"{self._models(project)}/{segment(name)}"

    def _version(self, name: str, version: int | str, project: str | None) -> str:
        return f"{self._model(name, project)}/versions/{segment(str(version))}"

    # --- registered models ---------------------------------------------------------

    def create(
        self,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        project: str | None = None,
    ) -> RegisteredModel:
        """Register a new model (Conflict when the name is taken in the project)."""
        body = {"name": name, "description": description, "tags": tags or {}}
        return RegisteredModel(**self._api.post(self._models(project), body))

    def get(self, name: str, project: str | None = None) -> RegisteredModel:
        """One registered model, with its tags, aliases and latest version number."""
        return RegisteredModel(**self._api.get(self._model(name, project)))

    def search(
        self,
        query: str | None = None,
        *,
        name_like: str | None = None,
        tags: dict[str, str | None] | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        project: str | None = None,
    ) -> ModelPage:
        """One page of models matching every condition.

        ``query`` is a substring of the name, ``name_like`` a LIKE pattern (both
        ignore case); ``tags`` maps a key to a value, or to None for "is set".
        ``order_by`` items: ``name``, ``updated_at``, ``created_at``, each
        optionally followed by ``ASC`` or ``DESC``.
        """
        tag_specs = [k if v is None else f"{k}={v}" for k, v in (tags or {}).items()]
        params: dict[str, Any] = {
            "query": query,
            "name_like": name_like,
            "tag": tag_specs or None,
            "order_by": list(order_by) if order_by else None,
            "max_results": max_results,
            "page_token": page_token,
        }
        return ModelPage(**self._api.get(self._models(project), **params))

    def list(
        self,
        query: str | None = None,
        *,
        name_like: str | None = None,
        tags: dict[str, str | None] | None = None,
        order_by: Sequence[str] | None = None,
        project: str | None = None,
    ) -> list[RegisteredModel]:
        """Every matching model (all pages of :meth:`search`)."""
        return list(self._iter(query, name_like, tags, order_by, project))

    def _iter(
        self,
        query: str | None,
        name_like: str | None,
        tags: dict[str, str | None] | None,
        order_by: Sequence[str] | None,
        project: str | None,
    ) -> Iterator[RegisteredModel]:
        token: str | None = None
        while True:
            page = self.search(
                query,
                name_like=name_like,
                tags=tags,
                order_by=order_by,
                max_results=1000,
                page_token=token,
                project=project,
            )
            yield from page.models
            token = page.next_page_token
            if token is None:
                return

    def update(self, name: str, description: str, project: str | None = None) -> RegisteredModel:
        """Change a model's description."""
        return RegisteredModel(
            **self._api.patch(self._model(name, project), {"description": description})
        )

    def delete(self, name: str, project: str | None = None) -> None:
        """Delete a model with all its versions and aliases (needs the project admin role)."""
        self._api.delete(self._model(name, project))

    def set_tag(self, name: str, key: str, value: str, project: str | None = None) -> None:
        """Set one tag of a model."""
        self._api.put(f"{self._model(name, project)}/tags", {key: value})

    def set_tags(
        self, name: str, tags: dict[str, str], project: str | None = None
    ) -> RegisteredModel:
        """Set several tags of a model at once."""
        return RegisteredModel(**self._api.put(f"{self._model(name, project)}/tags", tags))

    def delete_tag(self, name: str, key: str, project: str | None = None) -> None:
        """Remove one tag of a model."""
        self._api.delete(f"{self._model(name, project)}/tags/{segment(key)}")

    # --- versions ------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        run_id: str,
        source_path: str = "model",
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        project: str | None = None,
    ) -> ModelVersion:
        """Register the run's artifacts under ``source_path`` as the model's next version."""
        body = {
            "run_id": run_id,
            "source_path": source_path,
            "description": description,
            "tags": tags or {},
        }
        return ModelVersion(**self._api.post(f"{self._model(name, project)}/versions", body))

    def get_version(
        self, name: str, version_or_alias: int | str = "latest", project: str | None = None
    ) -> ModelVersion:
        """One version with its files: by number, by alias, or ``"latest"``."""
        return ModelVersion(**self._api.get(self._version(name, version_or_alias, project)))

    def resolve(self, ref: str, project: str | None = None) -> ModelVersion:
        """The version a reference (``name@alias``, ``name/3``, ``name``) points at now."""
        parsed = ModelRef.parse(ref)
        return self.get_version(parsed.name, parsed.selector, project)

    def version_page(
        self,
        name: str,
        *,
        max_results: int = 100,
        page_token: str | None = None,
        project: str | None = None,
    ) -> VersionPage:
        """One page of a model's versions, newest first (``files`` is None in this
        listing); pass ``next_page_token`` back for older ones."""
        return VersionPage(
            **self._api.get(
                f"{self._model(name, project)}/versions",
                max_results=max_results,
                page_token=page_token,
            )
        )

    def list_versions(
        self, name: str, project: str | None = None, *, limit: int | None = None
    ) -> list[ModelVersion]:
        """Every version of a model, newest first (the pages of :meth:`version_page`),
        or the newest ``limit`` of them."""
        found: list[ModelVersion] = []
        token: str | None = None
        while limit is None or len(found) < limit:
            want = 1000 if limit is None else min(limit - len(found), 1000)
            page = self.version_page(name, max_results=want, page_token=token, project=project)
            found.extend(page.versions)
            token = page.next_page_token
            if token is None:
                break
        return found

    def update_version(
        self, name: str, version: int | str, description: str, project: str | None = None
    ) -> ModelVersion:
        """Change a version's description."""
        return ModelVersion(
            **self._api.patch(self._version(name, version, project), {"description": description})
        )

    def delete_version(self, name: str, version: int | str, project: str | None = None) -> None:
        """Delete a version and the aliases pointing at it."""
        self._api.delete(self._version(name, version, project))

    def set_version_tag(
        self, name: str, version: int | str, key: str, value: str, project: str | None = None
    ) -> ModelVersion:
        """Set one tag of a version."""
        return ModelVersion(
            **self._api.put(f"{self._version(name, version, project)}/tags", {key: value})
        )

    def set_version_tags(
        self, name: str, version: int | str, tags: dict[str, str], project: str | None = None
    ) -> ModelVersion:
        """Set several tags of a version at once (all or none)."""
        return ModelVersion(**self._api.put(f"{self._version(name, version, project)}/tags", tags))

    def delete_version_tag(
        self, name: str, version: int | str, key: str, project: str | None = None
    ) -> None:
        """Remove one tag of a version."""
        self._api.delete(f"{self._version(name, version, project)}/tags/{segment(key)}")

    # --- aliases -------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, project: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        path = f"{self._model(name, project)}/aliases/{segment(alias)}"
        return ModelVersion(**self._api.put(path, {"version": version}))

    def delete_alias(self, name: str, alias: str, project: str | None = None) -> None:
        """Remove an alias."""
        self._api.delete(f"{self._model(name, project)}/aliases/{segment(alias)}")

    # --- files ---------------------------------------------------------------------

    def download(self, ref: str, dest: str | os.PathLike[str], project: str | None = None) -> Path:
        """Download a version's files into the folder ``dest``, each checked against its hash.

        The reference is resolved once, so an alias moving meanwhile does not
        mix two versions. The files are fetched into a hidden folder beside ``dest``
        and moved into ``dest`` only once every one of them is verified: after an
        error ``dest`` is as it was (absent, or holding what it held). Returns ``dest``.
        """
        version = self.resolve(ref, project)
        root = Path(dest)
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = root.with_name(f".{root.name}.{uuid.uuid4().hex}.part")
        staging.mkdir()  # as dest's own mkdir would: the user's umask decides its mode
        try:
            for file in version.files or []:
                self._fetch(version, file, safe_target(staging, file.path), project)
            if not root.exists():
                staging.rename(root)
                return root
            for file in version.files or []:
                target = safe_target(root, file.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(safe_target(staging, file.path), target)
            return root
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def load(self, ref: str, project: str | None = None) -> Any:
        """Load a registered model object (``name@alias``, ``name/3`` or ``name``).

        Files are cached under ``SHIPYARD_HOME/cache/models``. Every file is
        hashed with BLAKE3 and compared with the hash the registry recorded
        before anything is unpickled; a mismatch raises IntegrityError and
        nothing is loaded. A version in MLflow's format (an ``MLmodel`` file: logged
        with the ``mlflow`` client, or imported) loads through mlflow, once its files
        are verified the same way: a scikit-learn model as its estimator, any other
        as MLflow's pyfunc model.
        """
        from shipyard.registry.flavors import (
            MLFLOW_DESCRIPTOR,
            MODEL_FILE,
            load_mlflow_model,
            load_model,
        )

        version = self.resolve(ref, project)
        files = {f.path: f for f in version.files or []}
        mlflow_model = DESCRIPTOR not in files and MLFLOW_DESCRIPTOR in files
        if not mlflow_model and (not version.flavor or DESCRIPTOR not in files):
            raise InvalidInput(
                f"{version.model_name} version {version.version} has no {DESCRIPTOR}: "
                "it is not a loadable model (use download() for its files)"
            )
        folder = self._cache_folder(version)
        for file in files.values():
            target = safe_target(folder, file.path)
            # A cached copy counts only if it still hashes right; otherwise it
            # is fetched again from the platform's store (and checked again).
            if not matches(target, file.hash):
                self._fetch(version, file, target, project)
        if mlflow_model:
            return load_mlflow_model(folder, f"{version.model_name} version {version.version}")
        descriptor = orjson.loads((folder / DESCRIPTOR).read_bytes())
        listed = descriptor.get("files", []) if isinstance(descriptor, dict) else []
        wanted = {MODEL_FILE, *(str(p) for p in listed if isinstance(listed, list))}
        unverified = sorted(p for p in wanted if p not in files)
        if unverified:
            raise IntegrityError(
                f"{version.model_name} version {version.version} does not hold {unverified}: "
                "refusing to load files the registry did not record"
            )
        return load_model(folder)

    def _cache_folder(self, version: ModelVersion) -> Path:
        # Keyed by content, not by name and number: a deleted and re-created
        # version never reuses another's files.
        listing = orjson.dumps(sorted((f.path, f.hash) for f in version.files or []))
        key = blake3(listing).hexdigest()[:32]
        return Path(self._client.settings.home).resolve() / "cache" / "models" / key

    def _fetch(
        self, version: ModelVersion, file: ModelFile, target: Path, project: str | None
    ) -> None:
        """Stream one file to ``target`` atomically; IntegrityError if its hash differs
        from the one the registry recorded."""
        url = f"{self._version(version.model_name, version.version, project)}/files/"
        url += segments(file.path)
        what = f"{version.model_name} version {version.version}: file {file.path!r}"
        self._api.download_verified(url, target, what, expected=file.hash)
