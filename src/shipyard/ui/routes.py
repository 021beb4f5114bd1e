"""The UI's router: every page module's routes, plus the static assets."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

# Each module exposes ``router``; a later capability adds its pages by adding one here.
PAGE_MODULES = (
    "shipyard.ui.static_files",
    "shipyard.ui.pages.session",
    "shipyard.ui.pages.home",
    "shipyard.ui.pages.experiments",
    "shipyard.ui.pages.runs",
    "shipyard.ui.pages.compare",
    "shipyard.ui.pages.models",
    "shipyard.ui.pages.datasets",
    "shipyard.ui.pages.audit",
)


def build_router() -> APIRouter:
    """One router holding every page (no prefix: pages live at ``/``)."""
    router = APIRouter(include_in_schema=False)
    for module in PAGE_MODULES:
        router.include_router(importlib.import_module(module).router)
    return router
