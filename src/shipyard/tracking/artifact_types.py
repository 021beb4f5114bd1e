"""API shapes of run artifacts."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ArtifactInfo(BaseModel):
    """A file or folder among a run's artifacts (folders have no size or hash)."""

    path: str = Field(description="Path inside the run, e.g. 'model/weights.bin'.")
    is_dir: bool = False
    size: int | None = Field(default=None, description="Bytes; None for a folder.")
    hash: str | None = Field(default=None, description="BLAKE3 hex digest; None for a folder.")
