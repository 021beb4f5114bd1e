"""SDK client of the model registry (to be filled in)."""

from __future__ import annotations

from typing import Any

from shipyard.client.api import Api


class ModelsClient:
    def __init__(self, api: Api, client: Any) -> None:
        self._api = api
        self._client = client
