"""A server with auth off grants the local user only to requests that name a
loopback host: a page whose own name resolves to 127.0.0.1 (DNS rebinding) gets
nothing from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shipyard.auth.loopback import host_name
from shipyard.client import Client
from shipyard.config import is_loopback_host
from shipyard.platform import Platform


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("evil.example:8080", "evil.example"),
        # Not a host and port: refused, whatever a lax parser would make of it.
        ("::1", None),
        ("localhost:80@evil.example", None),
        ("[::1]junk", None),
        ("127.0.0.1:80:80", None),
        ("localhost/evil", None),
        ("", None),
    ],
)
def test_host_name_drops_the_port(header: str, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("name", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_loopback_names(name: str, loopback: bool) -> None:
    assert is_loopback_host(name) is loopback


def test_an_open_server_refuses_requests_for_other_hosts(
    platform: Platform, server_for: Callable[[Platform], Any]
) -> None:
    srv = server_for(platform)
    port = srv.port
    with httpx.Client(base_url=srv.url, timeout=30) as http:
        ok = http.get("/api/v1/projects")
        assert ok.status_code == 200
        assert http.get("/api/v1/projects", headers={"host": f"localhost:{port}"}).is_success
        page = http.get("/", headers={"host": f"localhost:{port}", "accept": "text/html"})
        assert page.status_code == 200

        for odd in (f"localhost:{port}@evil.example", f"[::1]x:{port}", ""):
            assert http.get("/api/v1/projects", headers={"host": odd}).status_code in (400, 403)
        rebound = {"host": f"evil.example:{port}"}
        refused = http.get("/api/v1/projects", headers=rebound)
        assert refused.status_code == 403
        assert "loopback host" in refused.json()["error"]["message"]
        # The same origin in Origin and Host passes the cross-site check; the host does not.
        write = http.post(
            "/api/v1/projects",
            json={"name": "planted"},
            headers=rebound | {"origin": f"http://evil.example:{port}"},
        )
        assert write.status_code == 403
        html = http.get("/", headers=rebound | {"accept": "text/html"})
        assert html.status_code == 403
        # Public routes carry nothing of the platform's and still answer.
        assert http.get("/healthz", headers=rebound).status_code == 200
    assert [p.name for p in Client(srv.url).projects.list()] == ["default"]


@pytest.mark.parametrize(
    ("peer", "host", "allowed"),
    [
        (("127.0.0.1", 5000), "localhost:8080", True),
        (("::1", 5000), "[::1]:8080", True),
        (None, "localhost", True),  # a Unix socket: this machine
        (("192.0.2.10", 5000), "localhost:8080", False),  # the network, naming localhost
        (("10.1.2.3", 5000), "127.0.0.1", False),
    ],
)
def test_an_open_server_answers_callers_on_this_machine_only(
    peer: tuple[str, int] | None, host: str, allowed: bool
) -> None:
    """An app served by hand on another interface (or behind a local proxy that
    forwards the caller's address) with auth off: Host alone is the caller's to say."""
    from starlette.requests import Request

    from shipyard.auth.loopback import check_local_caller
    from shipyard.errors import PermissionDenied

    scope = {"type": "http", "headers": [(b"host", host.encode())], "client": peer}
    if allowed:
        check_local_caller(Request(scope))
    else:
        with pytest.raises(PermissionDenied, match="callers on this machine"):
            check_local_caller(Request(scope))
