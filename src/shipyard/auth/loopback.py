"""Who may act as the local user of a server that runs with auth off.

Auth may be off only on a server bound to loopback, so every caller is on this
machine; but a web page from anywhere can reach it through the browser, by making
its own name resolve to 127.0.0.1 (DNS rebinding). Such a page's requests name its
host in ``Host``, so the local user is granted only to requests that name a
loopback host, and to the embedded SDK's in-process transport, which no browser
can reach.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from shipyard.config import is_loopback_host
from shipyard.errors import PermissionDenied

if TYPE_CHECKING:
    from starlette.requests import Request

IN_PROCESS = "shipyard.in_process"
"""ASGI scope key the embedded transport sets: the caller shares this process."""


# A Host header as browsers send it: a name or IPv4 address, or an IPv6 address in
# brackets, then an optional port. Anything else is refused outright.
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::\d{1,5})?")


def host_name(host_header: str) -> str | None:
    """The name in a ``Host`` header, without its port (``[::1]:80`` -> ``::1``);
    None when the header is not a plain host and port."""
    match = _HOST.fullmatch(host_header)
    if match is None:
        return None
    return match["v6"] or match["name"]


def check_local_caller(request: Request) -> None:
    """Refuse the local user to a request from another machine, or that names a host
    other than loopback.

    The peer's address is checked as well as ``Host``: the settings refuse auth off for
    a server bound to another interface, but an app served by hand (``uvicorn
    shipyard.server.asgi:app --host 0.0.0.0``) or behind a proxy on this machine can
    still be reached from the network, where anyone can send ``Host: localhost``."""
    if request.scope.get(IN_PROCESS):
        return
    client = request.scope.get("client")
    peer = client[0] if client else None  # none on a Unix socket: this machine
    if peer is not None and not is_loopback_host(str(peer)):
        raise PermissionDenied(
            f"this server runs with auth off and answers only callers on this machine; "
            f"got a request from {str(peer)[:100]}"
        )
    host = request.headers.get("host", "")
    name = host_name(host)
    if name is None or not is_loopback_host(name):
        raise PermissionDenied(
            f"this server runs with auth off and answers only requests to a loopback "
            f"host (localhost, 127.0.0.1, [::1]); got Host {host[:100]!r}"
        )
