"""ASGI entry point for multi-worker servers: each worker builds its own platform."""

from __future__ import annotations

import os

from shipyard.config import Settings
from shipyard.heap import serving
from shipyard.platform import Platform
from shipyard.server.app import create_app

app = create_app(
    Platform.from_settings(Settings(), host=os.environ.get("SHIPYARD_SERVER_HOST", "127.0.0.1"))
)
serving()
