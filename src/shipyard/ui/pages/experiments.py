"""Pages of experiments (being built)."""

from __future__ import annotations

from shipyard.ui.page_route import page_router

router = page_router()
