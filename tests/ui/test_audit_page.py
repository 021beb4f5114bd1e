"""The audit log page: admins read and filter it, project admins read their project's
events, everyone else is refused. In a real browser on SQLite, and over raw HTTP with a
session cookie on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.auth.conftest import Secured, secured_server
from tests.ui.conftest import PASSWORD, Site, screenshot

from shipyard.auth.sessions import SESSION_COOKIE
from shipyard.client import Client
from shipyard.platform import Platform


def _actors(page: Any) -> list[str]:
    return page.locator("table.audit td.actor").all_inner_texts()


def test_admin_reads_the_log_and_filters_by_user(secure_site: Site) -> None:
    secured = secure_site.secured
    assert secured is not None
    ada = secured.sdk(secure_site.user("ada", roles={"default": "editor"}))
    bob = secured.sdk(secure_site.user("bob", roles={"default": "editor"}))
    ada.experiments.create("ada-exp")
    bob.experiments.create("bob-exp")
    bob.runs.create("bob-exp", name="bob-run")

    page = secure_site.sign_in("root")
    page.click("text=Audit log")
    page.wait_for_url("**/audit")
    everyone = _actors(page)
    assert {"ada", "bob", "root"} <= set(everyone)
    actions = page.locator("table.audit td.action").all_inner_texts()
    # Newest first: bob's run came last, root's sign-in just before this page.
    assert actions[0] == "auth.login"
    assert "runs.create" in actions and "experiments.create" in actions
    screenshot(page, "audit")

    page.fill("input[name=user]", "ada")
    page.click("form.audit-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/audit\?.*user=ada"))
    only_ada = _actors(page)
    assert only_ada and set(only_ada) == {"ada"}
    assert len(only_ada) < len(everyone)
    assert page.locator("input[name=user]").input_value() == "ada"

    # An action cell narrows to that action, keeping the user filter.
    page.click("table.audit td.action >> text=experiments.create")
    page.wait_for_url(re.compile(r".*action=experiments.create.*"))
    rows = page.locator("table.audit tbody tr")
    assert rows.count() == 1
    assert "ada-exp" in rows.locator("td.details").inner_text()


def test_someone_who_is_not_an_admin_gets_the_403_page(secure_site: Site) -> None:
    secure_site.user("vic", roles={"default": "viewer"})
    page = secure_site.sign_in("vic")
    assert page.locator("text=Audit log").count() == 0  # not offered either
    response = page.goto("/audit")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "You may not see or do this"
    assert page.locator("table.audit").count() == 0


def test_the_local_user_of_an_open_server_reads_the_log(open_site: Site) -> None:
    with Client(open_site.url, settings=open_site.platform.settings) as sdk:
        sdk.experiments.create("local-exp")
    page = open_site.page()
    page.goto("/")
    # The page names its icon, so a browser asks for no /favicon.ico (a 404 each page).
    assert page.locator("link[rel=icon]").count() == 1
    page.click("text=Audit log")  # offered to the local user, an admin
    page.wait_for_url("**/audit")
    response = page.goto("/audit?action=experiments.create")
    assert response is not None and response.status == 200
    assert "local-exp" in page.locator("table.audit td.details").inner_text()
    # A bad filter is shown by the form, which stays, with what was typed.
    for query, message, status in (
        ("from=abc&action=x", "from must be a date", 400),
        ("limit=0&action=x", "show must be a number from 1 to", 400),
        ("project=nowhere&action=x", "nowhere", 404),
    ):
        response = page.goto(f"/audit?{query}")
        assert response is not None and response.status == status
        assert message in page.locator("#filter-error").inner_text()
        assert page.locator("input[name=action]").input_value() == "x"
        assert page.locator("table.audit").count() == 0


# --- over HTTP on both backends ----------------------------------------------------------


@pytest.fixture
def secured_log(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """A server with auth required on each backend; events in 'default' and 'other'."""
    gen = secured_server(request, db_backend, tmp_path, server_for)
    secured = next(gen)
    secured.project("other")
    admin = secured.sdk(secured.admin_token)
    admin.experiments.create("in-other", project="other")
    # Seven events written in one statement, so they share one millisecond.
    admin.runs.create_many("sweep", [{"name": f"r{i}"} for i in range(7)])
    yield secured
    gen.close()


def _signed_in(secured: Secured, username: str, **user: Any) -> httpx.Client:
    """A new user's HTTP client, signed in through the login form like a browser."""
    secured.user(username, password=PASSWORD, **user)
    r = httpx.post(
        secured.url + "/login",
        data={"username": username, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    c = httpx.Client(
        base_url=secured.url,
        cookies={SESSION_COOKIE: r.cookies[SESSION_COOKIE]},
        headers={"accept": "text/html"},
        follow_redirects=False,
    )
    secured._clients.append(c)
    return c


def _event_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-event="(\d+)"', html)]


def test_who_may_read_which_events(secured_log: Secured) -> None:
    admin = _signed_in(secured_log, "ann", is_admin=True)
    everything = admin.get("/audit", params={"limit": 1000})
    assert everything.status_code == 200
    assert "in-other" in everything.text and "sweep" in everything.text

    # A project admin reads that project's events only, by naming it.
    padmin = _signed_in(secured_log, "pat", roles={"default": "admin"})
    assert padmin.get("/audit").status_code == 403
    own = padmin.get("/audit", params={"project": "default", "limit": 1000})
    assert own.status_code == 200
    assert "sweep" in own.text and "in-other" not in own.text
    assert padmin.get("/audit", params={"project": "other"}).status_code == 403

    viewer = _signed_in(secured_log, "vic", roles={"default": "viewer"})
    for params in ({}, {"project": "default"}):
        refused = viewer.get("/audit", params=params)
        assert refused.status_code == 403
        assert "sweep" not in refused.text
    assert httpx.get(secured_log.url + "/audit").status_code == 303  # not signed in


def test_older_pages_continue_without_gaps_or_repeats(secured_log: Secured) -> None:
    admin = _signed_in(secured_log, "ann", is_admin=True)
    expected = _event_ids(admin.get("/audit", params={"limit": 1000}).text)
    assert len(expected) >= 9
    seen: list[int] = []
    url: str | None = "/audit?limit=3"
    while url:
        r = admin.get(url)
        assert r.status_code == 200
        ids = _event_ids(r.text)
        assert len(ids) <= 3
        seen += ids
        older = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = older.group(1).replace("&amp;", "&") if older else None
        if url:
            cursor = parse_qs(urlsplit(url).query)
            assert cursor["limit"] == ["3"] and "until" in cursor and "before" in cursor
    assert seen == expected  # newest first, every event once, across the shared millisecond


def test_filters_narrow_and_bad_filters_are_refused(secured_log: Secured) -> None:
    admin = _signed_in(secured_log, "ann", is_admin=True)
    runs = admin.get("/audit", params={"object_type": "run", "limit": 1000})
    assert runs.text.count('class="wrap object"') == 7
    run_ids = set(re.findall(r"object_id=([^&\"]+)", runs.text))
    assert len(run_ids) == 7
    run_id = sorted(run_ids)[0]
    single = admin.get("/audit", params={"object_type": "run", "object_id": run_id})
    assert len(_event_ids(single.text)) == 1
    today = dt.date.today()
    in_range = admin.get(
        "/audit",
        params={
            "action": "runs.create",
            "from": str(today - dt.timedelta(days=1)),
            "to": str(today + dt.timedelta(days=1)),
        },
    )
    assert len(_event_ids(in_range.text)) == 7
    before_then = admin.get("/audit", params={"to": "2001-01-01"})
    assert before_then.status_code == 200 and _event_ids(before_then.text) == []
    assert "No events match" in before_then.text

    for params in ({"from": "yesterday"}, {"to": "2024-13-01"}, {"limit": "0"}, {"limit": "5000"}):
        bad = admin.get("/audit", params=params)
        assert bad.status_code in (400, 422), params
        assert bad.headers["content-type"].startswith("text/html")
    assert admin.get("/audit", params={"project": "no-such"}).status_code == 404
