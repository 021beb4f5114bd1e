"""Helpers of the registry tests: runs holding a saved model as artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from tests.conftest import StoredBlob, stored_blob

from shipyard.client import Client
from shipyard.clock import new_id
from shipyard.registry.flavors import save_model


def train(seed: int = 0) -> tuple[LogisticRegression, np.ndarray]:
    """A tiny real model (50 rows) and inputs to compare predictions on."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=50) > 0).astype(int)
    return LogisticRegression().fit(x, y), x


def new_run(client: Client, project: str | None = None) -> str:
    """A run in ``project`` (default: the client's)."""
    return client.runs.create("registry-tests", project=project).id


def log_model(
    client: Client, model: Any, tmp: Path, *, project: str | None = None, path: str = "model"
) -> str:
    """Save ``model`` with the flavors module and log it as artifacts of a new run."""
    folder = tmp / f"saved-{new_id()[:8]}"
    save_model(model, folder)
    run_id = new_run(client, project)
    client.artifacts.upload_dir(run_id, folder, path)
    return run_id


def blob_file(client: Client, digest: str) -> StoredBlob:
    """The platform's stored copy of a blob (local folder or S3)."""
    return stored_blob(client.settings, digest)
