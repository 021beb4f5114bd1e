"""Dataset pages: the list, a dataset, a version's profile, report and lineage, and diffs.

In a real browser on SQLite (data made through the SDK, as users make it), and over raw
HTTP with a session cookie on SQLite and PostgreSQL for who may read which page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.auth.conftest import Secured, secured_server
from tests.ui.conftest import PASSWORD, Site, screenshot

from shipyard.auth.sessions import SESSION_COOKIE
from shipyard.client import Client
from shipyard.platform import Platform
from shipyard.ui.pages.datasets import PROFILE_COLUMNS

BASE = "/projects/default/datasets"
# Two ingests of the same table: id 2's amount changes, id 4 goes, ids 5 and 6 arrive.
FIRST = pd.DataFrame(
    {"id": [1, 2, 3, 4], "amount": [1.0, 2.5, 3.0, 4.0], "city": ["oslo", "rome", "oslo", "lima"]}
)
SECOND = pd.DataFrame(
    {
        "id": [1, 2, 3, 5, 6],
        "amount": [1.0, 9.5, 3.0, 7.0, 250.0],
        "city": ["oslo", "rome", "oslo", "kyiv", "lima"],
    }
)
SUITE = [
    {"kind": "not_null", "column": "city"},
    {"kind": "range", "column": "amount", "min": 0, "max": 100, "name": "amount in range"},
    {"kind": "unique", "columns": ["id"]},
]


def make_sales(sdk: Client) -> str:
    """The dataset every test reads: two versions, a suite, a tag, a run that read v2.
    Returns that run's id."""
    # "warn" keeps the out-of-range row in v2 and reports it.
    sdk.datasets.create(
        "sales", description="Daily sales by city", expectations=SUITE, policy="warn"
    )
    sdk.datasets.ingest("sales", FIRST, message="first load")
    sdk.datasets.ingest("sales", SECOND, message="second load")
    sdk.datasets.set_tag("sales", "prod", 1)
    run = sdk.runs.create("churn", name="train-sales")
    sdk.datasets.log_input(run.id, "sales", 2, context="training")
    return run.id


def _bar_counts(page: Any, column: str) -> list[int]:
    titles = page.locator(f'.column-profile[data-column="{column}"] svg.hist rect title')
    return [int(t.rsplit(": ", 1)[1].replace(",", "")) for t in titles.all_text_contents()]


# --- in a browser ------------------------------------------------------------------------


def test_version_page_shows_histograms_the_report_and_the_runs_that_read_it(
    secure_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = secure_site.user("eve", roles={"default": "editor"})
    run_id = make_sales(secure_site.secured.sdk(editor))  # type: ignore[union-attr]
    secure_site.user("vic", roles={"default": "viewer"})
    page = secure_site.sign_in("vic")

    page.goto(BASE)
    row = page.locator("table.datasets tbody tr")
    assert row.count() == 1
    assert row.locator("td").nth(1).inner_text() == "v2"
    assert row.locator("td").nth(2).inner_text() == "5"  # rows of the latest version
    assert row.locator(".tag").inner_text() == "prod → v1"
    screenshot(page, "datasets")

    page.click("text=sales")
    page.wait_for_url(f"**{BASE}/sales")
    versions = page.locator("table.versions tbody tr")
    assert [versions.nth(i).locator("td").first.inner_text() for i in range(2)] == ["v2", "v1"]
    assert "second load" in versions.first.inner_text()
    assert page.locator("table.expectations tbody tr").count() == len(SUITE)
    screenshot(page, "dataset")

    page.click("table.versions >> text=v2")
    page.wait_for_url(f"**{BASE}/sales/versions/2")
    # One histogram per numeric column, none for the string column; the bars hold
    # every value of the column.
    assert page.locator("svg.hist").count() == 2
    assert sum(_bar_counts(page, "id")) == 5
    assert sum(_bar_counts(page, "amount")) == 5
    assert page.locator('.column-profile[data-column="city"] svg.hist').count() == 0
    city_top = page.locator('.column-profile[data-column="city"] .top-values')
    assert "oslo" in city_top.inner_text()

    # The stored report: the range check failed on one row, which is shown as a sample.
    report = page.locator("section.report")
    assert "failed" in report.locator("p").first.inner_text()
    failed = page.locator("table.results tr.result.failed")
    assert failed.count() == 1
    assert failed.locator("td").first.inner_text() == "amount in range"
    assert failed.locator("td").nth(3).inner_text() == "1"
    assert page.locator("table.results tr.result.passed").count() == 2
    page.click("table.results summary")
    assert "250" in page.locator("table.results .samples").inner_text()

    runs = page.locator(".runs-read a")
    assert runs.count() == 1
    assert runs.inner_text() == "train-sales"
    assert runs.get_attribute("href") == f"/runs/{run_id}"
    assert page.locator(".runs-read .status").count() == 0
    screenshot(page, "dataset-version")
    # A deleted run still read it: listed, and marked.
    with secure_site.secured.sdk(editor) as sdk:  # type: ignore[union-attr]
        sdk.runs.delete(run_id)
    page.reload()
    assert page.locator(".runs-read a").inner_text() == "train-sales"
    assert page.locator(".runs-read .status").inner_text() == "deleted"
    assert page.locator(".runs-read .more-readers").count() == 0
    # Read by more runs than the page lists: the newest are shown, and it says so.
    with secure_site.secured.sdk(editor) as sdk:  # type: ignore[union-attr]
        later = sdk.runs.create("sales-training", name="retrain")
        sdk.datasets.log_input(later.id, "sales", 2)
    from shipyard.datasets import versions

    monkeypatch.setattr(versions, "LINEAGE_RUNS", 1)
    page.reload()
    assert page.locator(".runs-read a").inner_text() == "retrain"
    assert "The newest 1 of 2 runs" in page.locator(".runs-read .more-readers").inner_text()

    # Version 1 was read by no run, and says so.
    page.goto(f"{BASE}/sales/versions/prod")
    assert page.locator("h1").inner_text().startswith("sales v1")
    assert "No run has logged" in page.locator(".runs-read").inner_text()


def test_diff_page_counts_rows_by_key(secure_site: Site) -> None:
    make_sales(secure_site.secured.sdk(secure_site.secured.admin_token))  # type: ignore[union-attr]
    page = secure_site.sign_in("root")
    page.goto(f"{BASE}/sales")
    page.select_option("select[name=a]", "1")
    page.select_option("select[name=b]", "2")
    page.fill("input[name=key]", "id")
    page.click("form.diff-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/diff\?a=1&b=2&key=id$"))

    counts = page.locator(".row-diff")
    assert counts.locator("dd.added").inner_text() == "2"
    assert counts.locator("dd.removed").inner_text() == "1"
    assert counts.locator("dd.changed").inner_text() == "1"
    assert counts.locator("dd.unchanged").inner_text() == "2"
    changed = page.locator(".changed-samples tbody tr")
    assert changed.count() == 1
    assert [changed.locator("td").nth(i).inner_text() for i in range(4)] == [
        "id=2",
        "amount",
        "2.5",
        "9.5",
    ]
    assert page.locator(".rows-old").inner_text() == "4"
    assert page.locator(".rows-new").inner_text() == "5"
    # Per-column profile changes carry a PSI for the numeric columns.
    psi = page.locator("table.column-changes tr:has(td:text-is('amount')) td.psi")
    assert float(psi.inner_text()) > 0
    screenshot(page, "dataset-diff")

    # A key that is no column: a readable error, the form kept to fix it.
    response = page.goto(f"{BASE}/sales/diff?a=1&b=2&key=nope")
    assert response is not None and response.status == 400
    assert "nope" in page.locator("[role=alert]").inner_text()
    assert page.locator("input[name=key]").input_value() == "nope"


def test_version_page_fits_a_phone(secure_site: Site) -> None:
    make_sales(secure_site.secured.sdk(secure_site.secured.admin_token))  # type: ignore[union-attr]
    page = secure_site.sign_in("root", width=390)
    page.goto(f"{BASE}/sales/versions/2")
    assert page.locator("svg.hist").count() == 2
    # Wide tables scroll inside their box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "dataset-version-narrow")


def test_empty_project_explains_how_to_ingest(open_site: Site) -> None:
    page = open_site.page()
    page.goto(BASE)
    assert "shipyard data ingest" in page.locator(".empty").inner_text()


def test_a_wide_profile_is_capped_and_narrowed_by_column_name(open_site: Site) -> None:
    names = [f"{kind}_{i}" for kind in ("price", "qty") for i in range(55)]
    wide = pd.DataFrame({n: [i, i + 1] for i, n in enumerate(names)})
    with Client(open_site.url, settings=open_site.platform.settings) as sdk:
        sdk.datasets.ingest("wide", wide)
    page = open_site.page()
    page.goto(f"{BASE}/wide/versions/1")
    cards = page.locator(".column-profile")
    assert cards.count() == PROFILE_COLUMNS
    assert "first 100 of 110 columns" in page.locator(".columns-shown").inner_text()
    # Typing narrows the cards shown at once (in the page)...
    page.fill("#column-filter", "QTY_1")
    visible = page.locator(".column-profile:visible .colname").all_inner_texts()
    assert visible == ["qty_1"] + [f"qty_{i}" for i in range(10, 20)]
    # ...and searching asks the server, which finds columns past the first hundred.
    page.fill("#column-filter", "qty_5")
    page.press("#column-filter", "Enter")
    page.wait_for_url(re.compile(r".*col=qty_5.*"))
    shown = page.locator(".column-profile .colname").all_inner_texts()
    assert shown == ["qty_5"] + [f"qty_{i}" for i in range(50, 55)]
    assert page.locator(".columns-shown").count() == 0


def test_a_deleted_parent_is_named_not_linked(open_site: Site) -> None:
    """A version made from a dataset deleted since names it, marked deleted, with no
    link (its page is gone); a live parent stays a link."""
    with Client(open_site.url, settings=open_site.platform.settings) as sdk:
        sdk.datasets.ingest("raw", FIRST)
        sdk.datasets.ingest("keep", FIRST)
        sdk.datasets.ingest("clean", SECOND, parents=["raw@1", "keep@1"])
        sdk.datasets.delete("raw")
    page = open_site.page()
    page.goto(f"{BASE}/clean/versions/1")
    items = page.locator(".cols.lineage ul").first.locator("li")  # "Made from"
    texts = [t.split() for t in items.all_inner_texts()]
    assert texts == [["keep", "v1", "derived"], ["raw", "v1", "(deleted)", "derived"]]
    assert items.nth(0).locator("a").get_attribute("href") == f"{BASE}/keep/versions/1"
    assert items.nth(1).locator("a").count() == 0


# --- who may read what, over HTTP on both backends ------------------------------------------


@pytest.fixture
def secured_pages(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """A server with auth required on each backend; 'sales' made by the admin."""
    gen = secured_server(request, db_backend, tmp_path, server_for)
    secured = next(gen)
    make_sales(secured.sdk(secured.admin_token))
    yield secured
    gen.close()


def _browser(secured: Secured, username: str, roles: dict[str, str]) -> httpx.Client:
    """A new user's HTTP client, signed in through the login form like a browser."""
    secured.user(username, password=PASSWORD, roles=roles)
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


PAGES = [
    BASE,
    f"{BASE}/sales",
    f"{BASE}/sales/versions/2",
    f"{BASE}/sales/versions/prod",
    f"{BASE}/sales/diff?a=1&b=2&key=id",
]


def test_viewers_read_dataset_pages_and_outsiders_are_refused(secured_pages: Secured) -> None:
    viewer = _browser(secured_pages, "vic", {"default": "viewer"})
    outsider = _browser(secured_pages, "olga", {})
    for path in PAGES:
        seen = viewer.get(path)
        assert seen.status_code == 200, (path, seen.text[:300])
        assert seen.headers["content-type"].startswith("text/html")
        assert "sales" in seen.text
        refused = outsider.get(path)
        assert refused.status_code == 403, path
        assert "Daily sales" not in refused.text and "second load" not in refused.text
    # Not signed in: sent to sign in, coming back afterwards.
    anonymous = httpx.get(secured_pages.url + PAGES[2], follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


def test_unknown_datasets_and_versions_are_404_pages(secured_pages: Secured) -> None:
    viewer = _browser(secured_pages, "vic", {"default": "viewer"})
    for path in (
        f"{BASE}/nope",
        f"{BASE}/nope/versions/1",
        f"{BASE}/sales/versions/9",
        f"{BASE}/sales/versions/no-such-tag",
        f"{BASE}/nope/diff?a=1&b=2",
        f"{BASE}/sales/diff?a=1&b=9",
        "/projects/no-such-project/datasets",
    ):
        r = viewer.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
    bad_key = viewer.get(f"{BASE}/sales/diff?a=1&b=2&key=id,nope")
    assert bad_key.status_code == 400
    assert "nope" in bad_key.text
    half = viewer.get(f"{BASE}/sales/diff?a=1")
    assert half.status_code == 400 and "Choose both versions" in half.text
    bad_page = viewer.get(f"{BASE}?page=%25%25")
    assert bad_page.status_code == 400
