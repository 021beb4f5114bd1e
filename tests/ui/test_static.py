"""Static assets: fingerprinted, cacheable, gzipped for browsers, and confined to their folder."""

from __future__ import annotations

import httpx
import pytest

from shipyard.client.inprocess import InProcessTransport
from shipyard.platform import Platform
from shipyard.server.app import create_app
from shipyard.ui import static_files
from shipyard.ui.static_files import PLOTLY, PLOTLY_BASIC, assets, static_url


@pytest.fixture
def http(tmp_path: object) -> httpx.Client:
    from pathlib import Path

    from shipyard.config import Settings

    platform = Platform.from_settings(Settings(home=Path(str(tmp_path)) / "home"))
    transport = InProcessTransport(create_app(platform, mlflow=False))
    return httpx.Client(transport=transport, base_url="http://test")


def test_assets_are_fingerprinted_and_cached_for_good(http: httpx.Client) -> None:
    url = static_url("app.css")
    r = http.get(url, headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")
    assert "immutable" in r.headers["cache-control"]
    assert r.content == assets()["app.css"].read_bytes()
    # An old fingerprint still answers, but must be revalidated.
    stale = http.get(url.replace(url.split("/")[3], "000000000000"))
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


def test_plotly_comes_from_the_plotly_package_gzipped(http: httpx.Client) -> None:
    r = http.get(static_url("plotly.min.js"), headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    # httpx decoded the body: it is the package's file, byte for byte.
    assert r.content == assets()["plotly.min.js"].read_bytes()
    assert int(r.headers["content-length"]) < len(r.content) / 2


def test_run_pages_get_the_basic_plotly_build_from_npm(http: httpx.Client) -> None:
    built = static_files.VENDOR / PLOTLY_BASIC
    assert built.is_file(), "run `make ui-assets` (npm ci of frontend/package-lock.json)"
    r = http.get(static_url(PLOTLY_BASIC), headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == built.read_bytes()
    # The basic build is the smaller one: that is the point of it.
    assert len(r.content) * 3 < assets()[PLOTLY].stat().st_size
    assert b"plotly.js" in r.content[:400]


def test_without_the_npm_build_the_full_plotly_answers(
    monkeypatch: pytest.MonkeyPatch, http: httpx.Client
) -> None:
    monkeypatch.setattr(static_files, "VENDOR", static_files.STATIC / "no-such-folder")
    static_files.assets.cache_clear()
    static_files._fingerprint.cache_clear()
    try:
        assert assets()[PLOTLY_BASIC] == assets()[PLOTLY]
        r = http.get(static_url(PLOTLY_BASIC), headers={"accept-encoding": "identity"})
        assert r.status_code == 200 and r.content == assets()[PLOTLY].read_bytes()
    finally:
        monkeypatch.undo()
        static_files.assets.cache_clear()
        static_files._fingerprint.cache_clear()
        static_files._gzipped.cache_clear()


@pytest.mark.parametrize(
    "name", ["../render.py", "..%2Frender.py", "render.py", "nope.js", "%2E%2E%2Fapp.css"]
)
def test_names_outside_the_asset_list_are_404(http: httpx.Client, name: str) -> None:
    r = http.get(f"/ui/static/x/{name}")
    assert r.status_code == 404


def test_big_pages_are_gzipped_for_browsers_that_take_it(http: httpx.Client) -> None:
    small = http.get("/", headers={"accept-encoding": "gzip"})
    assert small.status_code == 200 and "content-encoding" not in small.headers
    for i in range(150):  # a home page listing many projects is well over the threshold
        r = http.post(
            "/api/v1/projects", json={"name": f"project-{i:03d}", "description": "x" * 40}
        )
        assert r.status_code == 201, r.text
    zipped = http.get("/", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) * 4 < len(zipped.content)
    plain = http.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == zipped.text and "project-149" in plain.text
