"""The blob store under test, once per backend: a local folder, and S3 on moto."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import s3_settings

from shipyard.blobs import BlobStore, open_blob_store
from shipyard.config import Settings


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A fresh, empty blob store of each backend."""
    settings: dict[str, str] = {}
    if request.param == "s3":
        settings = s3_settings(request.getfixturevalue("s3_endpoint"))
    return open_blob_store(Settings(home=tmp_path / "home", **settings))
