"""Liveness and readiness probes (the only routes without authentication)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text

from shipyard.auth.authz import get_platform, public
from shipyard.errors import Unavailable
from shipyard.platform import Platform

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[public()])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[public()])
def readyz(platform: Platform = Depends(get_platform)) -> dict[str, str]:
    """The metadata and blob stores answer."""
    try:
        with platform.db.read() as session:
            session.execute(text("SELECT 1"))
        platform.blobs.fs.exists(platform.blobs.root)
    except Exception as exc:
        raise Unavailable(f"not ready: {type(exc).__name__}") from None
    return {"status": "ready"}
