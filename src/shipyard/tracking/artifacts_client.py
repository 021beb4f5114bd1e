"""SDK client of run artifacts (to be filled in)."""

from __future__ import annotations

from shipyard.client.api import Api


class ArtifactsClient:
    def __init__(self, api: Api) -> None:
        self._api = api
