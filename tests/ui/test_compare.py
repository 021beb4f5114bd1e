"""The compare page: overlaid curves, the differences table, params against a metric.

Browser tests run on SQLite; the page-level HTTP tests (errors and roles) run on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.auth.conftest import Secured, secured_server
from tests.ui.conftest import PASSWORD, Site, screenshot
from tests.ui.test_session import _session

from shipyard.auth.sessions import SESSION_COOKIE
from shipyard.client import Client
from shipyard.platform import Platform


def _run(name: str, params: dict[str, Any], curves: dict[str, list[float]]) -> dict[str, Any]:
    points = [
        (key, v, step, 1000 + step) for key, ys in curves.items() for step, v in enumerate(ys)
    ]
    run: dict[str, Any] = {"name": name, "params": params, "status": "finished"}
    if points:
        run["metrics"] = points
    return run


def _make(client: Client, runs: list[dict[str, Any]], experiment: str = "cmp") -> list[str]:
    return client.runs.create_many(experiment, runs)


def _url(ids: list[str], project: str = "default") -> str:
    return f"/projects/{project}/compare?" + "&".join(f"run={i}" for i in ids)


def _traces(page: Any, selector: str) -> list[dict[str, Any]]:
    """The Plotly traces drawn in ``selector`` (type, name, and dimension labels)."""
    return page.eval_on_selector(
        selector,
        """el => (el.querySelector('.js-plotly-plot') || el).data.map(t => ({
            type: t.type, name: t.name,
            dims: (t.dimensions || []).map(d => d.label)}))""",
    )


# --- In a browser -------------------------------------------------------------------------


def test_compare_two_runs(open_site: Site) -> None:
    with Client(open_site.url, settings=open_site.platform.settings) as client:
        ids = _make(
            client,
            [
                _run("a", {"lr": "0.1", "opt": "adam"}, {"loss": [1, 0.6, 0.4], "acc": [0.5, 0.8]}),
                _run("b", {"lr": "0.3", "opt": "adam"}, {"loss": [1, 0.7, 0.5, 0.45]}),
            ],
        )
    page = open_site.page()
    page.goto(_url(ids))
    # One chart per metric, one trace per run that logged it ("acc" is only in a).
    assert page.locator("#charts .chart").evaluate_all("els => els.map(e => e.dataset.metric)") == [
        "acc",
        "loss",
    ]
    page.wait_for_selector("#charts .chart[data-metric=loss][data-drawn='1']")
    assert page.locator("#charts .chart[data-metric=loss]").get_attribute("data-series") == "2"
    assert [t["name"] for t in _traces(page, "#charts .chart[data-metric=loss]")] == ["a", "b"]
    page.wait_for_selector("#charts .chart[data-metric=acc][data-drawn='1']")
    assert [t["name"] for t in _traces(page, "#charts .chart[data-metric=acc]")] == ["a"]
    acc_title = page.evaluate(
        "document.querySelector('#charts .chart[data-metric=acc] .js-plotly-plot')"
        ".layout.title.text"
    )
    assert acc_title == "acc (1 of 2 runs)"
    assert page.evaluate(
        "document.querySelector('#charts .chart[data-metric=acc] .js-plotly-plot')"
        "._fullLayout.showlegend"
    )
    # Params against a metric: only metrics two runs or more logged can be plotted.
    options = page.locator("#parallel-metric option").all_inner_texts()
    assert options == ["loss"]
    # The differing rows are marked; the same ones are not.
    rows = page.locator("#compare-table tbody tr[data-key]")
    marked = {
        r.get_attribute("data-key"): "differs" in r.get_attribute("class") for r in rows.all()
    }
    assert marked == {"lr": True, "opt": False, "acc": True, "loss": True}
    lr = page.locator("#compare-table tr.param[data-key=lr] td").all_inner_texts()
    assert lr == ["0.1", "0.3"]
    assert page.locator("#compare-table tr.metric[data-key=acc] td").all_inner_texts() == [
        "0.8",
        "—",
    ]
    page.check("#only-differences")
    assert not page.locator("#compare-table tr[data-key=opt]").is_visible()
    assert page.locator("#compare-table tr[data-key=lr]").is_visible()
    page.uncheck("#only-differences")
    assert page.locator("#compare-table tr[data-key=opt]").is_visible()
    # One varying numeric param + the metric: two numeric axes, so a scatter.
    page.wait_for_selector("#parallel[data-drawn=scatter]")
    assert [t["type"] for t in _traces(page, "#parallel")] == ["scatter"]
    assert page.locator("#scatter-param").input_value() == "lr"
    page.wait_for_timeout(300)  # let Plotly finish its transitions before the picture
    screenshot(page, "compare")
    narrow = open_site.page(width=390)
    narrow.goto(_url(ids))
    narrow.wait_for_selector("#charts .chart[data-drawn='1']")
    screenshot(narrow, "compare-narrow")


def test_parallel_coordinates_with_three_numeric_axes(open_site: Site) -> None:
    with Client(open_site.url, settings=open_site.platform.settings) as client:
        ids = _make(
            client,
            [
                _run(f"r{i}", {"lr": f"0.{i}", "batch": str(8 * i), "opt": o, "seed": "1"}, c)
                for i, o, c in (
                    (1, "adam", {"loss": [0.9], "acc": [0.5]}),
                    (2, "sgd", {"loss": [0.5], "acc": [0.7]}),
                    (3, "adam", {"loss": [0.4], "acc": [0.9]}),
                )
            ],
        )
    page = open_site.page()
    page.goto(_url(ids))
    page.wait_for_selector("#parallel[data-drawn=parcoords]")
    (trace,) = _traces(page, "#parallel")
    # Varying params (numeric and text) then the metric; the constant seed is left out.
    assert trace["type"] == "parcoords"
    assert trace["dims"] == ["batch", "lr", "opt", "acc"]
    assert not page.locator("#scatter-param-label").is_visible()
    page.select_option("#parallel-metric", "loss")
    page.wait_for_function(
        "() => { const el = document.getElementById('parallel');"
        " const t = el.data && el.data[0]; return t && t.dimensions.at(-1).label === 'loss'; }"
    )
    assert page.locator("#charts .chart").count() == 2


def test_names_and_keys_show_as_written_in_the_charts(open_site: Site) -> None:
    link = '<a href="https://evil.example/">x</a>'
    with Client(open_site.url, settings=open_site.platform.settings) as client:
        ids = _make(
            client,
            [
                _run(link, {"<b>k</b>": "1"}, {"m&n": [1.0]}),
                _run("plain", {"<b>k</b>": "2"}, {"m&n": [2.0]}),
            ],
        )
    page = open_site.page()
    page.goto(_url(ids))
    page.wait_for_selector("#parallel[data-drawn=scatter]")
    texts = page.locator("#parallel text").all_text_contents()
    assert "<b>k</b>" in texts and "m&n" in texts  # axis titles, as written
    assert page.locator("#parallel a").count() == 0  # no link made from a name
    assert page.locator("#compare-table thead a", has_text=link).count() == 1
    # The overlaid curves: the legend names the run as written, and the chart title the key.
    page.wait_for_selector("#charts .chart[data-drawn='1']")
    legend = page.locator("#charts .legendtext").all_text_contents()
    assert link in legend and "plain" in legend
    assert page.locator("#charts .chart a").count() == 0
    assert "m&n" in page.locator("#charts .gtitle").all_text_contents()


def test_only_differences_says_when_there_are_none(open_site: Site) -> None:
    with Client(open_site.url, settings=open_site.platform.settings) as client:
        ids = _make(client, [_run("a", {"lr": "1"}, {}), _run("b", {"lr": "1"}, {})])
    page = open_site.page()
    page.goto(_url(ids))
    assert page.locator(".empty").first.inner_text().startswith("These runs logged no metrics.")
    page.check("#only-differences")
    assert page.locator("#no-differences").is_visible()
    assert page.locator("#compare-table tr.differs").count() == 0


# --- Over HTTP, on both backends ----------------------------------------------------------


@pytest.fixture
def site(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    """A server requiring auth, with projects ``default`` and ``secret`` of two runs each."""
    gen = secured_server(request, db_backend, tmp_path, server_for)
    secured = next(gen)
    secured.project("secret")
    with secured.sdk(secured.admin_token) as client:
        runs = [_run("a", {"lr": "1"}, {"m": [1.0]}), _run("b", {"lr": "2"}, {"m": [2.0]})]
        secured.ids = {  # type: ignore[attr-defined]
            "default": _make(client, runs),
            "secret": client.runs.create_many("cmp", runs, project="secret"),
        }
    yield secured
    gen.close()


def _get(secured: Secured, username: str, path: str) -> httpx.Response:
    fake = Site(platform=secured.platform, url=secured.url, secured=secured)
    return httpx.get(
        secured.url + path, cookies={SESSION_COOKIE: _session(fake, username)}, timeout=30
    )


def test_a_viewer_compares_and_an_outsider_is_refused(site: Secured) -> None:
    ids = site.ids["default"]  # type: ignore[attr-defined]
    site.user("vic", password=PASSWORD, roles={"default": "viewer"})
    site.user("out", password=PASSWORD, roles={"secret": "viewer"})
    seen = _get(site, "vic", _url(ids))
    assert seen.status_code == 200
    assert 'class="param differs" data-key="lr"' in seen.text
    refused = _get(site, "out", _url(ids))
    assert refused.status_code == 403 and "lr" not in refused.text


def test_bad_run_lists_get_clear_error_pages(site: Secured) -> None:
    mine = site.ids["default"]  # type: ignore[attr-defined]
    theirs = site.ids["secret"]  # type: ignore[attr-defined]
    site.user("vic", password=PASSWORD, roles={"default": "viewer"})
    site.user("both", password=PASSWORD, roles={"default": "viewer", "secret": "viewer"})
    cases = [
        ("vic", [mine[0]], 400, "pick at least two runs"),
        ("vic", [mine[0], mine[0]], 400, "pick at least two runs"),
        ("vic", [mine[0], "f" * 32], 404, f"run {'f' * 32!r} not found"),
        ("vic", [mine[0], "x" * 500], 404, "not found"),
        # A run of a project the caller cannot read: refused, as on the run's own page.
        ("vic", [mine[0], theirs[0]], 403, "no access to project"),
        # One the caller can read, but of another project: said so.
        ("both", [mine[0], theirs[0]], 404, "belongs to 'secret'"),
        ("vic", [f"{i:032x}" for i in range(51)], 400, "at most 50 runs"),
    ]
    for user, ids, status, message in cases:
        r = _get(site, user, _url(ids))
        assert r.status_code == status, (user, ids, r.text[-1500:])
        assert message in html.unescape(r.text), (user, message, r.text[-1500:])
        assert 'role="alert"' in r.text
    assert _get(site, "vic", "/projects/nope/compare?run=a&run=b").status_code == 404
