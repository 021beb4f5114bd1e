"""Web UI fixtures: a real server (auth on or off), users with passwords, and a real browser.

The browser is Debian's Chromium driven by Playwright (``executable_path`` below;
Playwright cannot download browsers here). Each test gets a fresh browser context,
so cookies never leak between tests, and fails if a page raised a script error.
Screenshots go to ``test-artifacts/screenshots/`` for reviewers; they are not committed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.auth.conftest import Secured, secured_server
from tests.conftest import backend_missing, build_platform

from shipyard.platform import Platform

CHROMIUM = os.environ.get("SHIPYARD_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        backend_missing(f"Chromium at {CHROMIUM} (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@dataclass
class Site:
    """A running server and what a browser test needs to use it."""

    platform: Platform
    url: str
    secured: Secured | None = None
    errors: list[str] = field(default_factory=list)
    _contexts: list[Any] = field(default_factory=list)
    browser: Any = None

    def user(
        self, username: str, *, is_admin: bool = False, roles: dict[str, str] | None = None
    ) -> str:
        """Create a user with password :data:`PASSWORD` (auth-on sites); returns a token."""
        assert self.secured is not None, "this site has auth off"
        return self.secured.user(username, password=PASSWORD, is_admin=is_admin, roles=roles)

    def page(self, width: int = 1280, height: int = 860) -> Any:
        """A new page in its own browser context (no cookies), failing the test on script errors."""
        context = self.browser.new_context(
            base_url=self.url, viewport={"width": width, "height": height}
        )
        self._contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"{page.url}: console {msg.text}")
                if msg.type == "error" and not _expected_console(msg.text)
                else None
            ),
        )
        return page

    def sign_in(self, username: str, password: str = PASSWORD, *, width: int = 1280) -> Any:
        """A page signed in as ``username`` (through the login form), on the front page."""
        page = self.page(width=width)
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/$"))
        return page

    def close(self) -> None:
        for c in self._contexts:
            c.close()


def _expected_console(text: str) -> bool:
    # A refused API call (403/404 a test provokes on purpose) logs a failed resource load.
    return "Failed to load resource" in text


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot for reviewers; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _site(browser: Any, platform: Platform, url: str, secured: Secured | None) -> Site:
    return Site(platform=platform, url=url, secured=secured, browser=browser)


@pytest.fixture
def secure_site(
    request: pytest.FixtureRequest,
    browser: Any,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Site]:
    """A server on SQLite with auth required and a site admin ``root`` (password PASSWORD)."""
    gen = secured_server(request, "sqlite", tmp_path, server_for)
    secured = next(gen)
    from tests.auth.conftest import local_ctx

    from shipyard.auth import service
    from shipyard.auth.types import UserUpdate

    service.update_user(local_ctx(secured.platform), "root", UserUpdate(password=PASSWORD))
    site = _site(browser, secured.platform, secured.url, secured)
    yield site
    site.close()
    gen.close()
    assert not site.errors, "script errors on pages:\n" + "\n".join(site.errors)


@pytest.fixture
def open_site(
    request: pytest.FixtureRequest,
    browser: Any,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Site]:
    """A loopback server on SQLite with auth off (the embedded default): no sign-in."""
    platform = build_platform(request, "sqlite", tmp_path / "home")
    site = _site(browser, platform, server_for(platform).url, None)
    yield site
    site.close()
    assert not site.errors, "script errors on pages:\n" + "\n".join(site.errors)
