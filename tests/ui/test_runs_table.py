"""The experiments list and the runs table: columns, sort, filter, paging, selection.

Browser tests run on SQLite; the page-level HTTP tests (status codes and roles)
run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from tests.auth.conftest import Secured, secured_server
from tests.ui.conftest import PASSWORD, Site, screenshot
from tests.ui.test_session import _session

from shipyard.auth.sessions import SESSION_COOKIE
from shipyard.client import Client
from shipyard.platform import Platform


def _sdk(site: Site) -> Client:
    return Client(site.url, settings=site.platform.settings)


def _sweep(client: Client, n: int, experiment: str = "sweep") -> int:
    """``n`` finished runs r000.. with params lr/opt, metrics acc/loss, a tag; r000 oldest."""
    runs = [
        {
            "name": f"r{i:03d}",
            "params": {"lr": f"0.{i % 7 + 1}", "opt": "adam" if i % 2 else "sgd"},
            "tags": {"team": "vision"},
            "metrics": [("acc", (i * 37 % 100) / 100, 0, 1000 + i), ("loss", 1 - i / n, 0, 1000)],
            "status": "finished",
            "start_time": 1_700_000_000_000 + i * 1000,
            "end_time": 1_700_000_000_000 + i * 1000 + 65_000,
        }
        for i in range(n)
    ]
    client.runs.create_many(experiment, runs)
    return client.experiments.get_by_name(experiment).id


def _column(page: Any, index: int) -> list[str]:
    """The texts of column ``index`` (0 = the checkbox) of the runs table."""
    return page.locator(f"#runs tbody tr td:nth-child({index + 1})").all_inner_texts()


def _names(page: Any) -> list[str]:
    return _column(page, 1)


def _headers(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#runs thead th").all_inner_texts()][1:]


# --- In a browser -------------------------------------------------------------------------


def test_experiments_list_links_to_runs_and_hides_deleted(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 3)
        client.experiments.create("retired", tags={"stage": "old"})
        client.experiments.delete(client.experiments.get_by_name("retired").id)
    page = open_site.page()
    page.goto("/projects/default")
    rows = page.locator("#experiments tbody tr")
    assert not [t for t in rows.all_inner_texts() if "retired" in t]
    sweep = rows.filter(has_text="sweep")
    assert sweep.locator("td").nth(1).inner_text() == "3"
    page.click("text=Show deleted experiments")
    assert page.locator("#experiments tbody tr.deleted", has_text="retired").count() == 1
    assert "stage=old" in page.locator("#experiments").inner_text()
    screenshot(page, "experiments")
    page.click("#experiments a:text-is('sweep')")
    page.wait_for_url(f"**/experiments/{exp}")
    assert _names(page) == ["r002", "r001", "r000"]  # newest first, as search orders


def test_runs_table_shows_the_chosen_columns(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 4)
    page = open_site.page()
    page.goto(f"/experiments/{exp}?cols=metrics.acc,params.lr")
    assert _headers(page) == ["Run", "Status", "Start", "Duration", "User", "acc", "lr"]
    assert _column(page, 6) == ["0.11", "0.74", "0.37", "0"]  # acc of r003..r000
    assert _column(page, 4)[0] == "1 min 05 s"
    # The chooser lists every key of the experiment; its choice lands in the URL.
    page.click("#column-chooser summary")
    chooser = page.locator("#column-chooser")
    page.wait_for_selector("#column-chooser #keys-note[data-keys=all]")
    assert chooser.locator("input[name=col]").evaluate_all("els => els.map(e => e.value)") == [
        "metrics.acc",
        "metrics.loss",
        "params.lr",
        "params.opt",
        "tags.team",
    ]
    chooser.locator("input[value='metrics.acc']").uncheck()
    chooser.locator("input[value='tags.team']").check()
    chooser.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*cols=params\.lr%2Ctags\.team.*"))
    assert _headers(page)[5:] == ["lr", "team"]
    assert set(_column(page, 7)) == {"vision"}
    screenshot(page, "runs-table")
    narrow = open_site.page(width=390)
    narrow.goto(page.url)
    assert narrow.locator("#runs tbody tr").count() == 4
    screenshot(narrow, "runs-table-narrow")


def test_the_chooser_lists_keys_beyond_the_page(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 50)
        client.runs.create("sweep", name="old", params={"rare": "1"}, start_time=1)
    page = open_site.page()
    page.goto(f"/experiments/{exp}")
    # With no cols in the URL: the first metrics and params of the page's runs.
    assert _headers(page)[5:] == ["acc", "loss", "lr", "opt"]
    chooser = page.locator("#column-chooser")
    assert chooser.locator("input[value='params.rare']").count() == 0  # not on page 1
    page.click("#column-chooser summary")
    page.wait_for_selector("#column-chooser #keys-note[data-keys=all]")
    chooser.locator("input[value='params.rare']").check()
    chooser.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*cols=metrics\.acc%2Cmetrics\.loss%2Cparams\.lr%2C.*"))
    assert _headers(page)[5:] == ["acc", "loss", "lr", "opt", "rare"]
    assert set(_column(page, 10)) == {""}  # no run of page 1 has it
    page.click("#next-page")
    assert _names(page) == ["old"] and _column(page, 10) == ["1"]


def test_clicking_a_header_sorts_and_clicking_again_flips(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 6)
    page = open_site.page()
    page.goto(f"/experiments/{exp}?cols=metrics.acc")
    page.click("#runs thead a.sort:text-is('acc')")
    page.wait_for_url(re.compile(r".*order=metrics\.acc\+DESC.*"))
    desc = [float(v) for v in _column(page, 6)]
    assert desc == sorted(desc, reverse=True) and len(desc) == 6
    assert page.locator("#runs thead th[aria-sort=descending]").inner_text() == "acc"
    page.click("#runs thead a.sort:text-is('acc')")
    page.wait_for_url(re.compile(r".*order=metrics\.acc\+ASC.*"))
    assert [float(v) for v in _column(page, 6)] == sorted(desc)
    page.click("#runs thead a.sort:text-is('Run')")
    assert _names(page) == [f"r{i:03d}" for i in range(6)]


def test_filter_narrows_and_a_bad_filter_is_explained(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 10)
    page = open_site.page()
    page.goto(f"/experiments/{exp}?cols=metrics.acc,params.opt")
    page.fill("#filter", "metrics.acc > 0.5 and params.opt = 'adam'")
    page.click("#search-form button[type=submit]")
    page.wait_for_url(re.compile(r".*filter=.*"))
    assert _names(page) == ["r007", "r005"]  # acc of r001..r009: .37 .11 .85 .59 .33
    assert set(_column(page, 7)) == {"adam"}
    assert page.locator("#filter").input_value() == "metrics.acc > 0.5 and params.opt = 'adam'"
    page.fill("#filter", "metrics.acc >> 0.5")
    with page.expect_navigation() as nav:
        page.click("#search-form button[type=submit]")
    assert nav.value.status == 400
    alert = page.locator("#filter-error")
    assert "filter:" in alert.inner_text() and "position" in alert.inner_text()
    assert page.locator("#runs").count() == 0
    assert page.locator("#filter").input_value() == "metrics.acc >> 0.5"  # kept, to fix
    # Opened with a bad filter and no columns named, the chooser still holds the
    # experiment's keys (it went empty).
    page.goto(f"/experiments/{exp}?filter=metrics.acc+%3E%3E+0.5")
    assert page.locator("#filter-error").count() == 1
    assert page.locator("summary", has_text="Columns (0 chosen)").count() == 0
    page.fill("#filter", "metrics.acc > 2")
    page.click("#search-form button[type=submit]")
    assert page.locator(".empty").inner_text().startswith("No runs match this filter.")


def test_paging_moves_through_the_runs(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 120)
    page = open_site.page()
    page.goto(f"/experiments/{exp}")
    first = _names(page)
    assert len(first) == 50 and first[0] == "r119"
    assert page.locator("#rows-shown").inner_text() == "Rows 1–50 of 120"
    assert page.locator("#prev-page").count() == 0
    page.click("#next-page")
    second = _names(page)
    assert second == [f"r{i:03d}" for i in range(69, 19, -1)]
    assert page.locator("#rows-shown").inner_text() == "Rows 51–100 of 120"
    page.click("#next-page")
    assert _names(page) == [f"r{i:03d}" for i in range(19, -1, -1)]
    assert page.locator("#next-page").count() == 0
    page.click("#prev-page")
    assert _names(page) == second
    page.click("#prev-page")
    assert _names(page) == first
    page.select_option("select[name=size]", "100")
    page.click("#search-form button[type=submit]")
    assert len(_names(page)) == 100
    # Filtered: the count and the pager say how many match, over every page.
    page.fill("#filter", "params.opt = 'adam'")
    page.click("#search-form button[type=submit]")
    assert page.locator("#run-count").inner_text() == "60 of 120 runs match the filter"
    assert page.locator("#rows-shown").inner_text() == "Rows 1–60 of 60"


def test_compare_selected_needs_two_runs(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 3)
        ids = {r.name: r.id for r in client.runs.search().runs}
    page = open_site.page()
    page.goto(f"/experiments/{exp}")
    button = page.locator("#compare-button")
    assert button.is_disabled()
    page.check(f"input[name=run][value='{ids['r000']}']")
    assert button.is_disabled()
    page.check(f"input[name=run][value='{ids['r002']}']")
    assert button.is_enabled()
    button.click()
    page.wait_for_url(re.compile(r".*/projects/default/compare\?.*"))
    assert parse_qs(urlparse(page.url).query)["run"] == [ids["r002"], ids["r000"]]
    page.go_back()
    page.check("#pick-all")
    assert page.locator("#selected-count").inner_text() == "3 runs selected."


def test_runs_picked_on_several_pages_are_compared_together(open_site: Site) -> None:
    with _sdk(open_site) as client:
        exp = _sweep(client, 60)
        ids = {r.name: r.id for r in client.runs.search(max_results=100).runs}
    page = open_site.page()
    page.goto(f"/experiments/{exp}")
    count = page.locator("#selected-count")
    page.check(f"input[name=run][value='{ids['r059']}']")
    assert count.inner_text() == "1 run selected: pick at least one more."
    page.click("#next-page")
    assert _names(page)[0] == "r009"
    page.check(f"input[name=run][value='{ids['r003']}']")
    assert count.inner_text() == "2 runs selected. (1 on other pages)"
    # Back on the first page, its pick is still ticked.
    page.click("#prev-page")
    assert page.is_checked(f"input[name=run][value='{ids['r059']}']")
    page.click("#compare-button")
    page.wait_for_url(re.compile(r".*/projects/default/compare\?.*"))
    assert sorted(parse_qs(urlparse(page.url).query)["run"]) == sorted([ids["r059"], ids["r003"]])
    assert page.locator("#compare-table thead th").count() == 3
    # Clear empties the selection on every page.
    page.goto(f"/experiments/{exp}")
    page.click("#clear-selection")
    assert count.inner_text() == "Pick at least two runs."
    assert page.locator("#compare-button").is_disabled()
    page.click("#next-page")
    assert not page.is_checked(f"input[name=run][value='{ids['r003']}']")


# --- Over HTTP, on both backends ----------------------------------------------------------


@pytest.fixture
def site(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """A server requiring auth; ``default`` holds experiment "sweep" of 3 runs."""
    gen = secured_server(request, db_backend, tmp_path, server_for)
    secured = next(gen)
    with secured.sdk(secured.admin_token) as client:
        _sweep(client, 3)
    yield secured
    gen.close()


def _get(secured: Secured, username: str, path: str) -> httpx.Response:
    fake = Site(platform=secured.platform, url=secured.url, secured=secured)
    cookie = _session(fake, username)
    return httpx.get(secured.url + path, cookies={SESSION_COOKIE: cookie})


def _experiment(secured: Secured) -> int:
    with secured.sdk(secured.admin_token) as client:
        return client.experiments.get_by_name("sweep").id


def test_a_viewer_reads_the_pages(site: Secured) -> None:
    site.user("vic", password=PASSWORD, roles={"default": "viewer"})
    exp = _experiment(site)
    listing = _get(site, "vic", "/projects/default")
    assert listing.status_code == 200 and f'href="/experiments/{exp}"' in listing.text
    table = _get(site, "vic", f"/experiments/{exp}?cols=metrics.acc&order=metrics.acc%20DESC")
    assert table.status_code == 200
    assert table.text.count('name="run"') == 3
    assert table.headers["content-security-policy"].startswith("default-src 'self'")
    chooser = _get(site, "vic", f"/experiments/{exp}/columns?cols=metrics.acc")
    assert chooser.status_code == 200
    assert 'value="params.opt"' in chooser.text and 'value="metrics.acc" checked' in chooser.text


def test_a_deleted_experiment_still_shows_its_runs(site: Secured) -> None:
    site.user("vic", password=PASSWORD, roles={"default": "viewer"})
    with site.sdk(site.admin_token) as client:
        run = client.runs.create("old", name="kept-run", params={"lr": "1"})
        client.runs.delete(client.runs.create("old", name="gone-run").id)
        exp = client.experiments.get_by_name("old").id
        client.experiments.delete(exp)
    listing = _get(site, "vic", "/projects/default")
    assert "/experiments/" + str(exp) not in listing.text  # hidden unless asked
    assert f'href="/experiments/{exp}"' in _get(site, "vic", "/projects/default?deleted=true").text
    page = _get(site, "vic", f"/experiments/{exp}")
    assert page.status_code == 200
    assert 'status-deleted">deleted' in page.text  # the experiment, and its deleted run
    assert f'value="{run.id}"' in page.text and "gone-run" in page.text


def test_an_outsider_is_refused_and_unknown_ids_are_404(site: Secured) -> None:
    site.project("elsewhere")
    site.user("out", password=PASSWORD, roles={"elsewhere": "viewer"})
    exp = _experiment(site)
    for path in ("/projects/default", f"/experiments/{exp}", f"/experiments/{exp}/columns"):
        refused = _get(site, "out", path)
        assert refused.status_code == 403, path
        assert "You may not see or do this" in refused.text
        assert "sweep" not in refused.text
    for path in ("/experiments/999999", "/experiments/abc", "/projects/nope"):
        missing = _get(site, "out", path)
        assert missing.status_code == 404, path
        assert "<h1>Not found</h1>" in missing.text


def test_bad_table_requests_answer_400_with_the_reason(site: Secured) -> None:
    site.user("vic", password=PASSWORD, roles={"default": "viewer"})
    exp = _experiment(site)
    cases = {
        "filter=metrics.acc%20%3E": "filter: expected a value",
        "order=metrics.acc%20SIDEWAYS": "order_by[0]",
        "cols=status": "is always shown",
        "size=7": "size: choose one of 50, 100, 200",
        "page=%25%25": "invalid page_token",
    }
    for query, reason in cases.items():
        r = _get(site, "vic", f"/experiments/{exp}?{query}")
        assert r.status_code == 400, query
        assert reason in r.text, (query, r.text[-2000:])
        assert 'id="filter-error"' in r.text


def test_no_login_no_page(site: Secured) -> None:
    exp = _experiment(site)
    r = httpx.get(site.url + f"/experiments/{exp}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
