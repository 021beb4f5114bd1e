"""Who may act as the local user of a server that runs with auth off.

Auth may be off only on a server bound to loopback, so every caller is on this
machine; but a web page from anywhere can reach it through the browser, by making
its own name resolve to 127.0.0.1 (DNS rebinding). Such a page's requests name its
host in ``Host``, so the local user is granted only to requests that name a
loopback host, and to the embedded SDK's in-process transport, which no browser
can reach.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from shipyard.errors import PermissionDenied

if TYPE_CHECKING:
    from starlette.requests import Request

IN_PROCESS = "shipyard.in_process"
"""ASGI scope key the embedded transport sets: the caller shares this process."""


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:80`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def is_loopback_name(name: str) -> bool:
    """Whether ``name`` can only mean this machine: localhost, 127.0.0.0/8 or ::1."""
    name = name.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_local_caller(request: Request) -> None:
    """Refuse the local user to a request that names a host other than loopback."""
    if request.scope.get(IN_PROCESS):
        return
    host = request.headers.get("host", "")
    if not is_loopback_name(host_name(host)):
        raise PermissionDenied(
            f"this server runs with auth off and answers only requests to a loopback "
            f"host (localhost, 127.0.0.1, [::1]); got Host {host[:100]!r}"
        )
