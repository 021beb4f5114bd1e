"""The run page: overview, metric charts, artifacts previews, inputs and outputs.

In a real browser on SQLite (data made through the SDK, as users make it), and over
raw HTTP with a session cookie on SQLite and PostgreSQL for status codes and roles.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.auth.conftest import Secured, secured_server
from tests.registry.conftest import train
from tests.ui.conftest import PASSWORD, Site, screenshot

from shipyard.auth.sessions import SESSION_COOKIE
from shipyard.client import Client
from shipyard.platform import Platform
from shipyard.registry.flavors import save_model
from shipyard.tracking.liveness import LOST_TAG

T0 = (int(time.time()) - 7200) * 1000  # two hours ago: the run took 50 s
CONFIG = {"optimizer": {"name": "adam", "lr": 0.001}, "layers": [64, 32]}


def _png(width: int, height: int) -> bytes:
    """A small valid PNG (a red-to-blue gradient), made without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\0" + b"".join(bytes((255 - x * 4 % 256, 0, x * 4 % 256)) for x in range(width))
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class Made:
    """What :func:`populate` made."""

    run_id: str
    child_id: str


def populate(client: Client, tmp: Path, *, with_model: bool = False) -> Made:
    """A run with params, tags, two metrics, a system metric, a child run, artifacts
    (an image, JSON, CSV, Parquet, a nested text file), a dataset input and, when asked,
    a model version made from it."""
    run = client.runs.create(
        "training",
        name="fit-<b>net</b>",
        params={"lr": 0.01, "batch": 32},
        tags={"team": "vision"},
        code_version={"git_commit": "a" * 40, "git_dirty": True, "git_branch": "main"},
        environment={"python_version": "3.11.9", "packages": {"numpy": "2.1.0", "torch": "2.5"}},
        start_time=T0,
    )
    points = [("loss", 1.0 / (s + 1), s, T0 + s * 1000) for s in range(50)]
    points += [("accuracy", s / 50, s, T0 + s * 1000) for s in range(50)]
    points += [("system/cpu_percent", 20.0 + s % 5, s, T0 + s * 1000) for s in range(10)]
    client.runs.log_batch(run.id, metrics=points)
    child = client.runs.create("training", name="fold-1", parent_run_id=run.id)
    files = tmp / "files"
    (files / "logs").mkdir(parents=True)
    (files / "plot.png").write_bytes(_png(64, 32))
    (files / "config.json").write_text(json.dumps(CONFIG))
    frame = pd.DataFrame({"id": range(120), "city": ["oslo", "rome", "lima"] * 40})
    frame.to_csv(files / "sample.csv", index=False)
    frame.to_parquet(files / "sample.parquet")
    (files / "logs" / "train.log").write_text("epoch 1 <script>alert(1)</script>\n")
    (files / "other" / "weights.bin").parent.mkdir()
    (files / "other" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (files / "other" / "big.txt").write_text("line of text\n" * 30_000)  # 390 KB
    (files / "other" / "broken.json").write_text('{"a": ')
    client.artifacts.upload_dir(run.id, files)
    dataset = client.datasets.ingest("customers", pd.DataFrame({"age": [31, 45]}), message="v1")
    client.datasets.log_input(run.id, "customers", dataset.version, context="training")
    if with_model:
        model, _ = train(0)
        save_model(model, tmp / "saved")
        client.artifacts.upload_dir(run.id, tmp / "saved", "model")
        client.models.create("churn")
        client.models.create_version("churn", run.id)
    client.runs.update(run.id, status="finished", end_time=T0 + 50_000)
    return Made(run_id=run.id, child_id=child.id)


def _wait_drawn(page: Any, selector: str, draws: int = 1) -> None:
    page.wait_for_function(
        "([s, n]) => { const e = document.querySelector(s);"
        " return e && e.dataset.drawn === '1' && Number(e.dataset.draws) >= n; }",
        arg=[selector, draws],
    )


def _traces(page: Any, selector: str) -> int:
    return int(
        page.evaluate("(s) => document.querySelector(s + ' .js-plotly-plot').data.length", selector)
    )


def test_run_page_in_a_browser(secure_site: Site, tmp_path: Path) -> None:
    token = secure_site.user("ada", roles={"default": "editor"})
    made = populate(secure_site.secured.sdk(token), tmp_path)  # type: ignore[union-attr]
    page = secure_site.sign_in("ada")

    page.goto(f"/runs/{made.run_id}")
    assert page.locator("h1").inner_text() == "fit-<b>net</b>"  # escaped, not markup
    assert "took 50.0 s" in page.locator(".run-facts").inner_text()
    assert page.locator("#params").inner_text().count("\n") >= 2
    assert "0.01" in page.locator("#params").inner_text()
    assert page.locator("#child-runs a", has_text="fold-1").count() == 1
    assert "a" * 40 in page.locator("#code-version").inner_text()
    assert "dirty" in page.locator("#code-version").inner_text()
    page.click("details.packages summary")
    assert "torch" in page.locator("details.packages").inner_text()
    assert "cpu_percent" in page.locator("#latest-metrics").inner_text()
    assert "lost contact" not in page.locator("#run-status").inner_text()
    screenshot(page, "run-overview")

    # A run the server marked failed when its heartbeats stopped says so.
    sdk = secure_site.secured.sdk(token)  # type: ignore[union-attr]
    sdk.runs.end(made.child_id, status="failed")
    sdk.runs.set_tag(made.child_id, LOST_TAG, "2026-12-07T05:00:00+00:00")
    page.goto(f"/runs/{made.child_id}")
    shown = page.locator("#run-status").inner_text()
    assert "failed" in shown and "lost contact" in shown
    assert "last heard of 2026-12-07T05:00:00+00:00" in shown
    page.goto(f"/runs/{made.run_id}")

    # Metrics: one chart per key (system metrics apart), one series each.
    page.click(".tabs a:has-text('Metrics')")
    page.wait_for_url("**tab=metrics")
    charts = page.locator("#charts .chart")
    assert charts.count() == 2
    for key in ("accuracy", "loss"):
        selector = f'.chart[data-key="{key}"]'
        page.locator(selector).scroll_into_view_if_needed()
        _wait_drawn(page, selector)
        assert page.get_attribute(selector, "data-series") == "1"
        assert _traces(page, selector) == 1
    loss = '.chart[data-key="loss"]'
    x_of = f"document.querySelector('{loss} .js-plotly-plot').data[0].x"
    assert page.evaluate(f"{x_of}.length") == 50 and page.evaluate(f"{x_of}[0]") == 0
    # Every point of the history is one click away, with the page's own session.
    history = page.get_attribute(f'{loss} a[data-control="history"]', "href")
    assert history == f"/api/v1/runs/{made.run_id}/metrics/loss/history"
    answer = page.request.get(history)
    assert answer.ok and len(answer.json()["values"]) == 50
    screenshot(page, "run-metrics")

    # Time on the x axis: the same points, placed at their timestamps.
    page.select_option(f'{loss} select[data-control="x"]', "time")
    _wait_drawn(page, loss, 2)
    assert page.evaluate(f"{x_of}[0]") == T0
    layout = f"document.querySelector('{loss} .js-plotly-plot').layout"
    assert page.evaluate(f"{layout}.xaxis.type") == "date"
    # Smoothing redraws from the same data; the raw value stays in the hover data.
    y_of = f"document.querySelector('{loss} .js-plotly-plot').data[0]"
    page.evaluate(
        f"() => {{ const s = document.querySelector('{loss} input[data-control=\"smoothing\"]');"
        " s.value = '0.9'; s.dispatchEvent(new Event('input')); }"
    )
    _wait_drawn(page, loss, 3)
    assert page.evaluate(f"{y_of}.y[10]") > page.evaluate(f"{y_of}.customdata[10]")
    page.check(f'{loss} input[data-control="raw"]')
    _wait_drawn(page, loss, 4)
    assert "50 points" in page.locator(f'{loss} [data-control="note"]').inner_text()

    # The filter box hides the charts of other keys.
    page.fill("#chart-filter", "acc")
    assert page.locator(".chart-card:visible").count() == 1
    assert page.locator("#chart-count").inner_text() == "1 of 2 metrics"
    page.fill("#chart-filter", "")

    # A series that cannot load (no such metric) is named; the others still draw.
    page.evaluate(
        """(run) => { const el = document.createElement('div'); el.id = 'extra';
        document.getElementById('charts').append(el);
        ShipyardCharts.metricChart(el, {series: [{run, key: 'loss', label: 'loss'},
                                                 {run, key: 'nope', label: 'missing'}]}); }""",
        made.run_id,
    )
    _wait_drawn(page, "#extra")
    assert page.get_attribute("#extra", "data-series") == "1"
    assert "Not shown: missing" in (page.get_attribute("#extra", "data-error") or "")

    # System metrics: their own tab.
    page.goto(f"/runs/{made.run_id}?tab=system")
    _wait_drawn(page, '.chart[data-key="system/cpu_percent"]')
    assert page.locator("#charts .chart").count() == 1

    # Artifacts: a folder listing, then previews.
    page.click(".tabs a:has-text('Artifacts')")
    listing = page.locator("#artifact-list").inner_text()
    for name in ("logs/", "other/", "config.json", "plot.png", "sample.csv", "sample.parquet"):
        assert name in listing
    screenshot(page, "run-artifacts")
    page.click("#artifact-list a:has-text('plot.png')")
    page.wait_for_function(
        "() => { const i = document.getElementById('preview-image'); return i && i.complete; }"
    )
    assert page.evaluate("document.getElementById('preview-image').naturalWidth") == 64
    page.go_back()
    page.click("#artifact-list a:has-text('config.json')")
    pretty = page.locator("#preview-text").inner_text()
    assert json.loads(pretty) == CONFIG and '\n  "layers"' in pretty
    page.go_back()
    page.click("#artifact-list a:has-text('sample.csv')")
    assert page.locator("#preview-table tbody tr").count() == 50
    assert page.locator("#preview-table thead").inner_text().split() == ["id", "city"]
    assert "First 50 of 120 rows" in page.locator("#preview-note").inner_text()
    screenshot(page, "run-artifact-csv")
    page.goto(f"/runs/{made.run_id}/artifacts?path=sample.parquet")
    assert page.locator("#preview-table tbody tr").count() == 50
    page.goto(f"/runs/{made.run_id}/artifacts?path=logs")
    page.click("#artifact-list a:has-text('train.log')")
    assert "<script>alert(1)</script>" in page.locator("#preview-text").inner_text()


def test_a_viewer_of_another_project_gets_the_403_page(secure_site: Site, tmp_path: Path) -> None:
    token = secure_site.user("ada", roles={"default": "editor"})
    run = secure_site.secured.sdk(token).runs.create("training")  # type: ignore[union-attr]
    secure_site.secured.project("other")  # type: ignore[union-attr]
    secure_site.user("bea", roles={"other": "viewer"})
    page = secure_site.sign_in("bea")
    response = page.goto(f"/runs/{run.id}?tab=metrics")
    assert response is not None and response.status == 403
    assert "You may not see or do this" in page.locator("h1").inner_text()
    assert page.locator("#charts").count() == 0


def test_empty_run_at_phone_width(open_site: Site) -> None:
    client = Client(open_site.url, settings=open_site.platform.settings)
    run = client.runs.create("training", name="empty")
    page = open_site.page(width=390)
    for tab, text in (
        ("metrics", "no metrics yet"),
        ("system", "No system metrics"),
        ("inputs", "read no dataset versions"),
    ):
        page.goto(f"/runs/{run.id}?tab={tab}")
        assert text in page.locator(".empty").first.inner_text()
    page.goto(f"/runs/{run.id}/artifacts")
    assert "no artifacts" in page.locator(".empty").inner_text()
    page.goto(f"/runs/{run.id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "run-overview-phone")
    charted = client.runs.create("training", name="charted")
    client.runs.log_batch(charted.id, metrics=[("loss", 1 / (s + 1), s, T0 + s) for s in range(20)])
    page.goto(f"/runs/{charted.id}?tab=metrics")
    _wait_drawn(page, '.chart[data-key="loss"]')
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "run-metrics-phone")
    client.close()


def test_zooming_fetches_the_window_down_to_every_point(open_site: Site) -> None:
    client = Client(open_site.url, settings=open_site.platform.settings)
    run = client.runs.create("training", name="long")
    spike = 3_217
    points = [("loss", 100.0 if s == spike else 1 / (s + 1), s, T0 + s) for s in range(6_000)]
    client.runs.log_batch(run.id, metrics=points)
    page = open_site.page()
    page.goto(f"/runs/{run.id}?tab=metrics")
    loss = '.chart[data-key="loss"]'
    plot = f"document.querySelector('{loss} .js-plotly-plot')"
    note = page.locator(f'{loss} [data-control="note"]')
    _wait_drawn(page, loss)
    assert "of 6,000 points (min/max per bucket" in note.inner_text()
    assert page.evaluate(f"{plot}.data[0].x.length") <= 1000
    assert page.evaluate(f"{plot}.data[0].x.includes({spike})")

    # A zoom on steps 3,200-3,300 asks the server for that window: every point in it.
    page.evaluate(f"Plotly.relayout({plot}, {{'xaxis.range': [3199.6, 3300.2]}})")
    _wait_drawn(page, loss, 2)
    assert page.evaluate(f"Array.from({plot}.data[0].x)") == list(range(3199, 3302))
    assert "103 points in steps 3,199–3,301, every one" in note.inner_text()
    assert page.evaluate(f"{plot}.layout.xaxis.range") == [3199, 3301]
    screenshot(page, "run-metrics-zoomed")
    # A box zoom sets y too: it stays through a redraw (smoothing) until a double click.
    page.evaluate(
        f"Plotly.relayout({plot}, {{'xaxis.range': [3199.6, 3300.2], 'yaxis.range': [0, 50]}})"
    )
    _wait_drawn(page, loss, 3)
    page.evaluate(
        f"() => {{ const s = document.querySelector('{loss} input[data-control=\"smoothing\"]');"
        " s.value = '0.5'; s.dispatchEvent(new Event('input')); }"
    )
    _wait_drawn(page, loss, 4)
    assert page.evaluate(f"{plot}.layout.yaxis.range") == [0, 50]
    page.evaluate(
        f"() => {{ const s = document.querySelector('{loss} input[data-control=\"smoothing\"]');"
        " s.value = '0'; s.dispatchEvent(new Event('input')); }"
    )
    _wait_drawn(page, loss, 5)

    # A double click (autorange) goes back to the whole history, downsampled.
    page.evaluate(f"Plotly.relayout({plot}, {{'xaxis.autorange': true, 'yaxis.autorange': true}})")
    _wait_drawn(page, loss, 6)
    assert "of 6,000 points" in note.inner_text()
    assert page.evaluate(f"{plot}.layout.yaxis.autorange") is True
    # Raw values: all 6,000, drawn as SVG (the run page's plotly.js build has no WebGL).
    page.check(f'{loss} input[data-control="raw"]')
    _wait_drawn(page, loss, 7)
    assert page.evaluate(f"{plot}.data[0].x.length") == 6_000
    assert page.evaluate(f"{plot}.data[0].type") == "scatter"
    assert "6,000 points, every one" in note.inner_text()
    client.close()


# --- status codes and roles over HTTP, on both databases ------------------------------


@pytest.fixture
def secured(
    request: pytest.FixtureRequest,
    db_backend: str,
    tmp_path: Path,
    server_for: Callable[[Platform], Any],
) -> Iterator[Secured]:
    yield from secured_server(request, db_backend, tmp_path, server_for)


@contextmanager
def _browser(secured: Secured, username: str) -> Iterator[httpx.Client]:
    """An HTTP client holding ``username``'s session cookie, asking for HTML."""
    with httpx.Client(base_url=secured.url, headers={"accept": "text/html"}, timeout=30) as c:
        r = c.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        assert SESSION_COOKIE in c.cookies
        yield c


def test_pages_obey_roles_on_each_database(secured: Secured, tmp_path: Path) -> None:
    editor = secured.user("ed", password=PASSWORD, roles={"default": "editor"})
    secured.user("vic", password=PASSWORD, roles={"default": "viewer"})
    secured.project("other")
    secured.user("out", password=PASSWORD, roles={"other": "viewer"})
    made = populate(secured.sdk(editor), tmp_path, with_model=True)
    run = f"/runs/{made.run_id}"
    before = secured.last_audit_id()

    with _browser(secured, "vic") as vic:
        for tab in ("", "?tab=overview", "?tab=metrics", "?tab=system", "?tab=inputs"):
            assert vic.get(run + tab).status_code == 200, tab
        inputs = vic.get(run + "?tab=inputs").text
        assert 'href="/projects/default/datasets/customers/versions/1"' in inputs
        assert 'href="/projects/default/models/churn/versions/1"' in inputs
        overview = vic.get(run).text
        assert "fit-&lt;b&gt;net&lt;/b&gt;" in overview
        assert f'href="/runs/{made.child_id}"' in overview
        assert f'href="{run}"' in vic.get(f"/runs/{made.child_id}").text  # its parent
        listing = vic.get(run + "/artifacts")
        assert listing.status_code == 200 and "model/" in listing.text
        assert vic.get(run + "/artifacts", params={"path": "model"}).status_code == 200
        text = vic.get(run + "/artifacts", params={"path": "logs/train.log"}).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
        other = run + "/artifacts?path=other%2F"
        assert "No preview for binary files" in vic.get(other + "weights.bin").text
        big = vic.get(other + "big.txt").text
        assert "Showing the first 262,144 of 390,000 bytes" in big
        assert "Not valid JSON" in vic.get(other + "broken.json").text
        # Bad input: a clear error page, nothing changed.
        assert vic.get(run + "?tab=nope").status_code == 400
        for bad in ("../secret", "/etc/passwd", "logs/../config.json"):
            refused = vic.get(run + "/artifacts", params={"path": bad})
            assert refused.status_code == 400, bad
            assert "artifact path" in refused.text
        assert vic.get(run + "/artifacts", params={"path": "nope.txt"}).status_code == 404
        assert vic.get("/runs/" + "0" * 32).status_code == 404
    with _browser(secured, "out") as out:
        for path in (run, run + "?tab=metrics", run + "/artifacts"):
            refused = out.get(path)
            assert refused.status_code == 403, path
            assert "fit-" not in refused.text
    # Reading pages wrote nothing but the sign-ins.
    assert {r.action for r in secured.audit_rows(before)} == {"auth.login"}
    anonymous = httpx.get(secured.url + run, headers={"accept": "text/html"})
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    # A dataset deleted since: the run still shows what it read, without a dead link.
    boss = secured.user("boss", password=PASSWORD, roles={"default": "admin"})
    secured.sdk(boss).datasets.delete("customers")
    with _browser(secured, "vic") as vic:
        inputs = vic.get(run + "?tab=inputs").text
        assert 'customers <span class="muted">(deleted)</span>' in inputs
        assert "/datasets/customers" not in inputs
