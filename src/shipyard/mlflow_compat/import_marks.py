"""The marks ``shipyard import mlflow`` leaves on its copies (``shipyard.import.*``
tags) and what a re-import compares through them: they are what makes it incremental.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from shipyard.tracking.types import MAX_TAG_VALUE_LENGTH, storable_metric

TAG_SOURCE = "shipyard.import.source"
TAG_EXPERIMENT = "shipyard.import.mlflow_experiment_id"
TAG_RUN = "shipyard.import.mlflow_run_id"
TAG_PARENT = "shipyard.import.mlflow_parent_run_id"
TAG_USER = "shipyard.import.mlflow_user"
# The run's MLflow status when it was copied; written last, so a copy without it
# was interrupted.
TAG_STATUS = "shipyard.import.mlflow_status"
TAG_ARTIFACTS = "shipyard.import.artifacts"
TAG_MODEL = "shipyard.import.mlflow_model"
TAG_VERSION = "shipyard.import.mlflow_version"
TAG_STAGE = "shipyard.import.mlflow_stage"
# The MLflow tag keys a copy got, so a tag deleted in MLflow is deleted on the copy
# too, while a tag set on the copy in Shipyard is left alone.
TAG_TAG_KEYS = "shipyard.import.mlflow_tag_keys"
# What a search of MLflow runs does not show: metric point counts and artifact files
# (compared by a thorough import).
TAG_CONTENT = "shipyard.import.mlflow_content"
# Set on a copy this import deleted because its run was deleted in MLflow (and
# removed when the run is restored there).
TAG_DELETED = "shipyard.import.deleted_in_mlflow"

MLFLOW_PARENT = "mlflow.parentRunId"
MLFLOW_NOTE = "mlflow.note.content"
ARTIFACTS_COPIED = "copied"
TERMINAL = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}


def storable(value: float | None) -> float | None:
    """A metric value as Shipyard stores it (compared and sent in that form)."""
    return storable_metric(None if value is None else float(value))


def tag_keys(tags: Iterable[str]) -> dict[str, str]:
    """The tag recording which tag keys came from MLflow (none when it would not fit:
    then a tag deleted in MLflow stays on the copy)."""
    text = json.dumps(sorted(tags), separators=(",", ":"))
    return {TAG_TAG_KEYS: text} if len(text) <= MAX_TAG_VALUE_LENGTH else {}


def stale_tags(copy_tags: Mapping[str, str], src_tags: Mapping[str, str]) -> list[str]:
    """Tags the copy got from MLflow that MLflow no longer has."""
    try:
        recorded = json.loads(copy_tags.get(TAG_TAG_KEYS, "[]"))
    except ValueError:
        return []  # edited by hand: better to keep tags than to guess
    return sorted(k for k in recorded if k not in src_tags and k in copy_tags)


def fingerprint(counts: Mapping[str, int], files: Iterable[tuple[str, int | None]] | None) -> str:
    """A short digest of a run's metric point counts and artifact files (None: the
    artifacts could not be read); equal digests mean nothing to copy."""
    body = {"metrics": sorted(counts.items()), "files": None if files is None else sorted(files)}
    text = json.dumps(body, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
