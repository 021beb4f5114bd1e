"""Sign-in, the session cookie, CSRF and sign-out, in a real browser and over raw HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from tests.ui.conftest import PASSWORD, Site, screenshot

from shipyard.auth.sessions import CSRF_HEADER, SESSION_COOKIE, csrf_token_for


def test_sign_in_shows_projects_and_sets_a_protected_cookie(secure_site: Site) -> None:
    secure_site.user("ada", roles={"default": "viewer"})
    page = secure_site.page()
    page.goto("/?from=test")
    assert "/login" in page.url  # not signed in: sent to the login page, coming back after
    screenshot(page, "login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/?from=test")
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    # Scripts cannot read it.
    assert SESSION_COOKIE not in page.evaluate("document.cookie")
    page.goto("/")
    assert page.locator("table.grid a", has_text="default").count() == 1
    assert page.locator(".who").inner_text() == "ada"


def test_wrong_password_is_refused_and_changes_nothing(secure_site: Site) -> None:
    secure_site.user("ada")
    before = secure_site.secured.last_audit_id()  # type: ignore[union-attr]
    page = secure_site.page()
    page.goto("/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert secure_site.secured.audit_rows(before) == []  # type: ignore[union-attr]


def test_sign_out_revokes_the_session(secure_site: Site) -> None:
    secure_site.user("ada", roles={"default": "viewer"})
    page = secure_site.sign_in("ada")
    secret = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)["value"]
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    # The old cookie is dead even if someone kept it.
    r = httpx.get(secure_site.url + "/api/v1/users/me", cookies={SESSION_COOKIE: secret})
    assert r.status_code == 401
    actions = [e.action for e in secure_site.secured.audit_rows()]  # type: ignore[union-attr]
    assert actions[-2:] == ["auth.login", "auth.logout"]


def _session(site: Site, username: str) -> str:
    r = httpx.post(
        site.url + "/login",
        data={"username": username, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r.cookies[SESSION_COOKIE]


def test_cookie_mutations_need_the_csrf_token(secure_site: Site) -> None:
    secure_site.user("ada", roles={"default": "editor"})
    secret = _session(secure_site, "ada")
    api = secure_site.url + "/api/v1"
    body: dict[str, Any] = {"name": "exp-a"}
    without = httpx.post(
        f"{api}/projects/default/experiments", json=body, cookies={SESSION_COOKIE: secret}
    )
    assert without.status_code == 403 and "CSRF" in without.json()["error"]["message"]
    wrong = httpx.post(
        f"{api}/projects/default/experiments",
        json=body,
        cookies={SESSION_COOKIE: secret},
        headers={CSRF_HEADER: "0" * 64},
    )
    assert wrong.status_code == 403
    # Reads need no token; nothing was created by the refused calls.
    listed = httpx.get(f"{api}/projects/default/experiments", cookies={SESSION_COOKIE: secret})
    assert [e["name"] for e in listed.json() if e["name"] == "exp-a"] == []
    ok = httpx.post(
        f"{api}/projects/default/experiments",
        json=body,
        cookies={SESSION_COOKIE: secret},
        headers={CSRF_HEADER: csrf_token_for(secret)},
    )
    assert ok.status_code == 201, ok.text


def test_requests_from_another_site_are_refused(secure_site: Site) -> None:
    secure_site.user("ada", roles={"default": "editor"})
    secret = _session(secure_site, "ada")
    r = httpx.post(
        secure_site.url + "/api/v1/projects/default/experiments",
        json={"name": "evil"},
        cookies={SESSION_COOKIE: secret},
        headers={CSRF_HEADER: csrf_token_for(secret), "Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    login = httpx.post(
        secure_site.url + "/login",
        data={"username": "ada", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert login.status_code == 403


def test_login_never_redirects_off_site(secure_site: Site) -> None:
    secure_site.user("ada")
    for target in ("https://evil.example/", "//evil.example/x"):
        r = httpx.post(
            secure_site.url + "/login",
            data={"username": "ada", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/"


def test_loopback_server_with_auth_off_asks_no_login(open_site: Site) -> None:
    page = open_site.page()
    page.goto("/")
    assert "/login" not in page.url
    assert page.locator("table.grid a", has_text="default").count() == 1
    assert page.locator("text=Sign out").count() == 0
    screenshot(page, "projects")


def test_unknown_page_is_a_readable_404(open_site: Site) -> None:
    page = open_site.page()
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"


def test_sign_in_form_slows_guessing(secure_site: Site) -> None:
    secure_site.user("ada")
    for attempt in range(10):
        r = httpx.post(
            secure_site.url + "/login", data={"username": "ada", "password": f"x{attempt}"}
        )
        assert r.status_code == 401
    page = secure_site.page()
    page.goto("/login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("Too many failed sign-ins")
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]


def _login_cookie_header(site: Site, headers: dict[str, str] | None = None) -> str:
    r = httpx.post(
        site.url + "/login",
        data={"username": "ada", "password": PASSWORD, "next": "/"},
        headers=headers or {},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return next(v for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE))


def test_session_cookie_is_secure_behind_a_tls_proxy(secure_site: Site) -> None:
    """Plain HTTP to the server itself: no Secure (the browser would drop the cookie);
    a TLS proxy saying so in X-Forwarded-Proto, or the setting: Secure."""
    secure_site.user("ada")
    assert "secure" not in _login_cookie_header(secure_site).lower()
    proxied = _login_cookie_header(secure_site, {"X-Forwarded-Proto": "https"})
    assert "; secure" in proxied.lower()
    assert "; secure" not in _login_cookie_header(secure_site, {"X-Forwarded-Proto": "http"})
    secure_site.platform.settings.secure_cookies = "always"
    try:
        assert "; secure" in _login_cookie_header(secure_site).lower()
    finally:
        secure_site.platform.settings.secure_cookies = "auto"
