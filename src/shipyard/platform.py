"""The platform: the stores every service works over, built once per process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from shipyard.blobs import BlobStore, open_blob_store
from shipyard.config import Settings
from shipyard.db import Database, upgrade
from shipyard.db.migrate import StepReport
from shipyard.errors import Unavailable
from shipyard.throttle import FailureThrottle
from shipyard.turns import UploadTurns


@dataclass
class Platform:
    """Settings plus the metadata and blob stores, shared by every request."""

    settings: Settings
    db: Database
    blobs: BlobStore
    auth_required: bool = False
    # Failed password sign-ins by user name and by source address (slows guessing).
    login_failures: FailureThrottle = field(default_factory=FailureThrottle)
    # Bounds the uploads received at once (settings.max_uploads).
    upload_turns: UploadTurns = field(init=False)
    # When a server's platform was opened (time.monotonic()); None in an embedded
    # process. A server marks no run lost just after it starts (tracking/liveness.py).
    serving_since: float | None = None

    def __post_init__(self) -> None:
        self.upload_turns = UploadTurns(self.settings.max_uploads)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        host: str | None = None,
        migrate: bool = True,
        on_step: StepReport | None = None,
    ) -> Platform:
        """Open the stores named by ``settings`` and bring the database to head
        (telling ``on_step`` of each migration applied)."""
        db = Database(settings.resolved_database_url)
        if migrate:
            try:
                upgrade(db, on_step=on_step)
            except OperationalError as exc:
                db.dispose()
                raise unreachable_database(db, exc) from None
        return cls(
            settings=settings,
            db=db,
            blobs=open_blob_store(settings),
            auth_required=settings.auth_required(host),
            serving_since=None if host is None else time.monotonic(),
        )

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()


def unreachable_database(db: Database, exc: OperationalError) -> Unavailable:
    """Unavailable naming the metadata database (password hidden) and the driver's first
    line of why it cannot be used (connection refused, authentication failed, no such
    database)."""
    said = str(exc.orig or exc).strip()
    reason = said.splitlines()[0] if said else type(exc.orig or exc).__name__
    where = db.url.render_as_string(hide_password=True)
    return Unavailable(f"cannot use the metadata database {where}: {reason}", {"url": where})
