"""Model registry pages: lists, a model's versions and aliases, a version's lineage graph;
moving an alias from the page (audited) and a viewer refused; roles on both databases."""

from __future__ import annotations

import re
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

MODEL = "churn model"  # a space: names must survive quoting in links and API paths
DATASET = "customers"


@dataclass
class Registry:
    """What :func:`populate` made: one run that read a dataset and made two versions."""

    run_id: str
    dataset_version: int


def populate(client: Client, tmp: Path) -> Registry:
    """A dataset version, a run that read it (params, metrics, a saved model), and
    versions 1 and 2 of MODEL from that run, with ``champion`` on v1."""
    data = pd.DataFrame({"age": [31, 45, 27, 52], "churned": [0, 1, 0, 1]})
    dataset = client.datasets.ingest(DATASET, data, message="first cut")
    run = client.runs.create("training", name="fit-logreg", params={"C": 1.0, "penalty": "l2"})
    client.runs.log_batch(run.id, metrics=[("accuracy", 0.93, 0, 1_700_000_000_000)])
    client.datasets.log_input(run.id, DATASET, dataset.version, context="training")
    model, _ = train(0)
    save_model(model, tmp / "saved")
    client.artifacts.upload_dir(run.id, tmp / "saved", "model")
    client.runs.end(run.id)
    client.models.create(
        MODEL, description="Who leaves <b>next</b> month.", tags={"team": "growth"}
    )
    client.models.create_version(MODEL, run.id)
    client.models.create_version(MODEL, run.id, description="same run, registered again")
    client.models.set_alias(MODEL, "champion", 1)
    return Registry(run_id=run.id, dataset_version=dataset.version)


def _model_path(version: int | None = None) -> str:
    path = "/projects/default/models/churn%20model"
    return path if version is None else f"{path}/versions/{version}"


# --- in the browser (SQLite) ------------------------------------------------------------


@pytest.fixture
def site(secure_site: Site, tmp_path: Path) -> Iterator[tuple[Site, Registry]]:
    """A site with an editor ``ed``, a viewer ``vic`` and the registry :func:`populate` made."""
    editor = secure_site.user("ed", roles={"default": "editor"})
    secure_site.user("vic", roles={"default": "viewer"})
    assert secure_site.secured is not None
    yield secure_site, populate(secure_site.secured.sdk(editor), tmp_path)


def _aliases(site: Site) -> dict[str, int]:
    assert site.secured is not None
    return site.secured.sdk(site.secured.admin_token).models.get(MODEL, "default").aliases


def test_editor_moves_an_alias_and_the_move_is_audited(site: tuple[Site, Registry]) -> None:
    s, _ = site
    assert s.secured is not None
    page = s.sign_in("ed")
    page.goto("/projects/default/models")
    row = page.locator("table.models tr[data-model]")
    assert row.count() == 1
    assert row.locator("td").nth(1).inner_text() == "v2"
    assert row.locator(".tag.alias").inner_text() == "champion → v1"
    screenshot(page, "models-list")

    row.locator("a", has_text=MODEL).click()
    page.wait_for_url(re.compile(r".*/models/churn%20model$"))
    v1 = page.locator('td.aliases[data-version="1"]')
    v2 = page.locator('td.aliases[data-version="2"]')
    assert v1.inner_text() == "champion" and v2.inner_text() == ""
    before = s.secured.last_audit_id()

    form = page.locator('form.set-alias[data-version="2"]')
    form.locator("input[name=alias]").fill("champion")
    form.locator("button").click()
    page.locator('td.aliases[data-version="2"] .tag', has_text="champion").wait_for()
    assert v1.inner_text() == ""
    assert page.locator("#alias-list li").inner_text().startswith("champion → v2")
    assert page.locator(".toast.ok").inner_text() == "champion → v2"
    assert _aliases(s) == {"champion": 2}
    moved = [e for e in s.secured.audit_rows(before) if e.action == "models.set_alias"]
    assert [(e.actor, e.details["alias"], e.details["version"]) for e in moved] == [
        ("ed", "champion", 2)
    ]
    assert moved[0].details["previous"] == 1
    # Still there after a reload: the page drew what the server holds.
    page.reload()
    assert page.locator('td.aliases[data-version="2"]').inner_text() == "champion"
    screenshot(page, "model")

    page.locator('button.delete-alias[data-alias="champion"]').click()
    page.locator("#no-aliases").wait_for(state="visible")
    assert page.locator('td.aliases[data-version="2"]').inner_text() == ""
    assert _aliases(s) == {}
    removed = [e for e in s.secured.audit_rows(before) if e.action == "models.delete_alias"]
    assert [(e.actor, e.details["alias"]) for e in removed] == [("ed", "champion")]


def test_a_model_page_shows_its_versions_a_page_at_a_time(
    site: tuple[Site, Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newest first; older ones behind a link, and back."""
    from shipyard.ui.pages import models as model_pages

    monkeypatch.setattr(model_pages, "VERSIONS_PAGE_SIZE", 1)
    s, _ = site
    page = s.sign_in("vic")
    page.goto(_model_path())
    rows = page.locator("table.versions tr[data-version]")
    assert [rows.nth(i).get_attribute("data-version") for i in range(rows.count())] == ["2"]
    page.locator("nav.pager a[rel=next]", has_text="Older versions").click()
    page.wait_for_url(re.compile(r".*/models/churn%20model\?page=.+"))
    assert rows.count() == 1 and rows.first.get_attribute("data-version") == "1"
    assert page.locator("nav.pager a[rel=next]").count() == 0  # the oldest page
    page.locator("nav.pager a", has_text="Newest versions").click()
    page.wait_for_url(re.compile(r".*/models/churn%20model$"))
    assert rows.first.get_attribute("data-version") == "2"


def test_bad_alias_from_the_page_shows_the_error_and_changes_nothing(
    site: tuple[Site, Registry],
) -> None:
    s, _ = site
    assert s.secured is not None
    page = s.sign_in("ed")
    page.goto(_model_path())
    before = s.secured.last_audit_id()
    # "latest" passes the form's pattern but the server reserves it.
    form = page.locator('form.set-alias[data-version="2"]')
    form.locator("input[name=alias]").fill("latest")
    form.locator("button").click()
    assert "reserved" in page.locator(".toast.error").inner_text()
    assert _aliases(s) == {"champion": 1}
    assert page.locator('td.aliases[data-version="1"]').inner_text() == "champion"
    assert s.secured.audit_rows(before) == []


def test_viewer_sees_no_controls_and_the_server_refuses_the_move(
    site: tuple[Site, Registry],
) -> None:
    s, _ = site
    assert s.secured is not None
    page = s.sign_in("vic")
    page.goto(_model_path())
    assert page.locator('td.aliases[data-version="1"]').inner_text() == "champion"
    assert page.locator("form.set-alias").count() == 0
    assert page.locator("button.delete-alias").count() == 0
    before = s.secured.last_audit_id()
    # The controls are hidden; force the calls through the page's own script.
    status = page.evaluate(
        "Shipyard.api('PUT', '/api/v1" + _model_path() + "/aliases/champion', {version: 2})"
        ".then(() => 200, (e) => e.status)"
    )
    assert status == 403
    assert page.evaluate("ShipyardModels.setAlias('champion', 2)") is False
    assert "may not write" in page.locator(".toast.error").inner_text()
    assert page.evaluate("ShipyardModels.deleteAlias('champion')") is False
    assert _aliases(s) == {"champion": 1}
    assert page.locator('td.aliases[data-version="1"]').inner_text() == "champion"
    assert [e.action for e in s.secured.audit_rows(before)] == []


def test_version_page_draws_the_lineage_graph(site: tuple[Site, Registry]) -> None:
    s, reg = site
    page = s.sign_in("vic")
    page.goto(_model_path(2))
    graph = page.locator("svg.graph")
    dataset_id = f"dataset:{DATASET}@{reg.dataset_version}"
    nodes = graph.locator("g.node")
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.node)")) == sorted(
        [dataset_id, "run", f"model:{MODEL}/2", f"model:{MODEL}/1"]
    )
    assert graph.locator(f'g.node.current[data-node="model:{MODEL}/2"]').count() == 1
    edges = graph.locator("path.edge").evaluate_all(
        "els => els.map(e => e.dataset.from + ' > ' + e.dataset.to)"
    )
    assert sorted(edges) == sorted(
        [f"{dataset_id} > run", f"run > model:{MODEL}/1", f"run > model:{MODEL}/2"]
    )
    # Nodes are links to the pages of what they stand for.
    links = {
        n.get_attribute("data-node"): n.locator("a").get_attribute("href") for n in nodes.all()
    }
    assert links[dataset_id] == f"/projects/default/datasets/{DATASET}/versions/1"
    assert links["run"] == f"/runs/{reg.run_id}"
    assert links[f"model:{MODEL}/1"] == _model_path(1)
    # Data left of the run, versions right of it.
    x = {
        k: float(graph.locator(f'g.node[data-node="{k}"] rect').get_attribute("x") or "")
        for k in links
    }
    assert x[dataset_id] < x["run"] < x[f"model:{MODEL}/2"] == x[f"model:{MODEL}/1"]

    descriptor = page.locator("table.files tbody tr", has_text="shipyard-model.json")
    assert descriptor.locator("a").get_attribute("href") == (
        "/api/v1" + _model_path(2) + "/files/shipyard-model.json"
    )
    assert re.fullmatch(r"\d+ B", descriptor.locator("td").nth(1).inner_text())
    assert re.fullmatch(r"[0-9a-f]{16}…", descriptor.locator("td.hash").inner_text())
    assert page.locator("dl.kv dd").first.inner_text() == "sklearn"
    assert page.locator("table.summary th", has_text="penalty").count() == 1
    inputs = page.locator("ul.inputs a")
    assert inputs.inner_text() == f"{DATASET} v1"
    screenshot(page, "model-version")


def test_pages_fit_a_phone_screen(site: tuple[Site, Registry]) -> None:
    s, _ = site
    page = s.sign_in("ed", width=390)
    for path, name in ((_model_path(), "model-narrow"), (_model_path(2), "model-version-narrow")):
        page.goto(path)
        # Wide tables and the graph scroll inside their boxes; the page itself does not.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, name)


# --- over HTTP, on SQLite and PostgreSQL --------------------------------------------------


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
    secured.user("out", password=PASSWORD)
    secured.project("empty")
    secured.grant("empty", "vic", "viewer")
    reg = populate(secured.sdk(editor), tmp_path)

    with _browser(secured, "vic") as vic:
        listed = vic.get("/projects/default/models")
        assert listed.status_code == 200
        assert 'data-model="churn model"' in listed.text
        assert "champion → v1" in listed.text
        model = vic.get(_model_path())
        assert model.status_code == 200
        assert "Who leaves &lt;b&gt;next&lt;/b&gt; month." in model.text  # escaped, not markup
        assert "team=growth" in model.text
        assert 'class="set-alias"' not in model.text  # no controls for a viewer
        version = vic.get(_model_path(1))
        assert version.status_code == 200
        assert '<svg class="graph"' in version.text and f"/runs/{reg.run_id}" in version.text
        # A version by alias is the same page.
        assert "v1" in vic.get(_model_path() + "/versions/champion").text

        found = vic.get("/projects/default/models", params={"q": "CHURN"})
        assert 'data-model="churn model"' in found.text
        none = vic.get("/projects/default/models", params={"q": "50%_off"})
        assert none.status_code == 200 and "No model name contains" in none.text
        empty = vic.get("/projects/empty/models")
        assert "No models are registered in this project yet." in empty.text

        for path, status in (
            ("/projects/default/models/nope", 404),
            (_model_path(99), 404),
            (_model_path() + "/versions/no-such-alias", 404),
            (_model_path() + "/versions/bad%20alias", 400),
            ("/projects/default/models?page=not-a-token", 400),
        ):
            r = vic.get(path)
            assert r.status_code == status, path
            assert r.headers["content-type"].startswith("text/html")
            assert '<p class="error" role="alert">' in r.text

    with _browser(secured, "ed") as ed:
        assert 'class="set-alias"' in ed.get(_model_path()).text

    with _browser(secured, "out") as out:
        for path in ("/projects/default/models", _model_path(), _model_path(1)):
            r = out.get(path)
            assert r.status_code == 403, path
            assert "You may not see or do this" in r.text

    anonymous = httpx.get(secured.url + _model_path(), headers={"accept": "text/html"})
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_version_without_dataset_inputs_or_run(secured: Secured, tmp_path: Path) -> None:
    editor = secured.sdk(secured.user("ed", password=PASSWORD, roles={"default": "editor"}))
    run = editor.runs.create("training")
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00" * 2048)
    editor.artifacts.upload_dir(run.id, folder, "model")
    editor.models.create("plain")
    editor.models.create_version("plain", run.id)
    with _browser(secured, "ed") as ed:
        page = ed.get("/projects/default/models/plain/versions/1")
        assert page.status_code == 200
        assert "The run logged no dataset inputs" in page.text
        assert "none (files only)" in page.text  # no descriptor: no flavor
        assert "weights.bin" in page.text and "2.0 KiB" in page.text
        assert page.text.count('class="node') == 2  # run -> version
        empty = ed.get("/projects/default/models/plain")
        assert "No aliases." in empty.text
