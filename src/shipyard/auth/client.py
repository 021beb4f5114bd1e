"""SDK clients of users, tokens and the audit log (to be filled in)."""

from __future__ import annotations

from shipyard.client.api import Api


class UsersClient:
    def __init__(self, api: Api) -> None:
        self._api = api


class TokensClient:
    def __init__(self, api: Api) -> None:
        self._api = api


class AuditClient:
    def __init__(self, api: Api) -> None:
        self._api = api
