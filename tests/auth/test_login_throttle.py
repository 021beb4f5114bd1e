"""Password guessing is slowed: repeated failed sign-ins by name or from one address are
refused for a while, through the API, Basic auth and the sign-in form alike."""

from __future__ import annotations

import base64

import httpx
import pytest
from tests.auth.conftest import Secured, local_ctx

from shipyard.auth import service
from shipyard.auth.types import LoginRequest, UserCreate
from shipyard.errors import TooManyRequests, Unauthenticated
from shipyard.platform import Platform
from shipyard.throttle import FailureThrottle

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_counts_failures_in_a_window_and_forgets_them() -> None:
    clock = Clock()
    throttle = FailureThrottle(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        throttle.check("guesses", "user:a")
        throttle.failed("user:a", "source:x")
    with pytest.raises(TooManyRequests) as err:
        throttle.check("guesses", "user:a")
    assert 1 <= err.value.details["retry_after_s"] <= 61
    with pytest.raises(TooManyRequests):
        throttle.check("guesses", "user:b", "source:x")  # the address is over too
    throttle.check("guesses", "user:b", "source:y")  # others are not
    clock.now += 61
    throttle.check("guesses", "user:a", "source:x")  # the window moved on
    throttle.failed("user:a")
    throttle.clear("user:a")
    throttle.check("guesses", "user:a")


def _user(platform: Platform, name: str) -> None:
    service.create_user(local_ctx(platform), UserCreate(username=name, password=PASSWORD))


def test_login_is_refused_after_repeated_failures_even_with_the_right_password(
    platform: Platform,
) -> None:
    _user(platform, "ada")
    _user(platform, "bob")
    for _ in range(10):
        with pytest.raises(Unauthenticated):
            service.login(platform, LoginRequest(username="ada", password="wrong"), "10.0.0.1")
    with pytest.raises(TooManyRequests):
        service.login(platform, LoginRequest(username="ada", password=PASSWORD), "10.0.0.2")
    with pytest.raises(TooManyRequests):  # the guessing address is held back for everyone
        service.login(platform, LoginRequest(username="bob", password=PASSWORD), "10.0.0.1")
    # Another user from another address signs in; no token was issued to the refused calls.
    assert service.login(platform, LoginRequest(username="bob", password=PASSWORD), "10.0.0.3")
    assert [t.username for t in service.list_tokens(platform, local_ctx(platform).principal)] == [
        "bob"
    ]


def test_basic_auth_guessing_is_throttled(secured: Secured) -> None:
    _user(secured.platform, "ada")
    url = secured.url + "/api/v1/users/me"

    def basic(password: str) -> httpx.Response:
        cred = base64.b64encode(f"ada:{password}".encode()).decode()
        return httpx.get(url, headers={"authorization": f"Basic {cred}"})

    for _ in range(10):
        assert basic(f"guess-{_}").status_code == 401
    refused = basic(PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_requests"
