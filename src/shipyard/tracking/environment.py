"""What a run ran: its code version (git) and its environment (Python, packages).

Both are captured when a run starts and sent in the create request. Capture
must be fast (a few tens of milliseconds) and must never fail the run: every
problem yields ``None`` fields, never an exception.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

GIT_TIMEOUT_S = 2.0


def source_directory() -> Path:
    """The folder of the main script, or the working directory (notebooks, ``python -c``)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if file:
        try:
            return Path(file).resolve().parent
        except OSError:
            pass
    return Path.cwd()


def capture_code_version(directory: Path | None = None) -> dict[str, Any]:
    """The git state of ``directory`` (default: the main script's folder).

    Keys: ``entry_point`` (the main script, when there is one), ``git_commit``,
    ``git_dirty`` (tracked files changed; untracked files do not count),
    ``git_branch`` (None when detached) and ``git_remote`` (origin's URL with
    credentials removed). The git fields are None outside a git repository or
    when git is missing.
    """
    directory = directory or source_directory()
    main = sys.modules.get("__main__")
    entry = getattr(main, "__file__", None)
    result: dict[str, Any] = {
        "entry_point": os.path.basename(entry) if entry else None,
        "git_commit": None,
        "git_dirty": None,
        "git_branch": None,
        "git_remote": None,
    }
    # One `git status` gives commit, branch and dirtiness together.
    status = _git(directory, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return result
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            result["git_commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            result["git_branch"] = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    result["git_dirty"] = dirty
    remote = _git(directory, "config", "--get", "remote.origin.url")
    if remote:
        result["git_remote"] = strip_credentials(remote.strip())
    return result


def strip_credentials(url: str) -> str:
    """``url`` without user and password (``https://tok@host/x`` -> ``https://host/x``).

    scp-style addresses (``git@host:org/repo``) carry a login name, not a
    secret, and are kept.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _git(directory: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def capture_environment() -> dict[str, Any]:
    """Python version and implementation, the OS and the installed distributions."""
    uname = os.uname() if hasattr(os, "uname") else None
    system = uname.sysname if uname else platform.system()
    release = uname.release if uname else platform.release()
    machine = uname.machine if uname else platform.machine()
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": f"{system}-{release}-{machine}",
        "executable": sys.executable,
        "packages": dict(installed_packages()),
    }


@functools.cache
def installed_packages() -> tuple[tuple[str, str], ...]:
    """``(name, version)`` of every distribution on ``sys.path``, sorted by name.

    Parsing each METADATA file costs ~1 ms per package, so modern ``.dist-info``
    folders are read from their names (``name-version.dist-info``, which the
    wheel spec fixes); only legacy ``.egg-info`` entries go through
    ``importlib.metadata``. Cached: it is the same for the whole process.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                stem = name[: -len(".dist-info")]
                dist_name, _, version = stem.partition("-")
                if dist_name and version:
                    found.setdefault(_normalize(dist_name), version)
            elif name.endswith(".egg-info"):
                try:
                    dist = metadata.PathDistribution(Path(entry or ".") / name)
                    dist_name, version = dist.metadata["Name"], dist.version
                except Exception:  # a broken legacy install must not fail a run
                    continue
                if dist_name and version:
                    found.setdefault(_normalize(dist_name), version)
    return tuple(sorted(found.items()))


def _normalize(name: str) -> str:
    # PEP 503 normalization, so `Foo_Bar` and `foo-bar` are one package.
    return re.sub(r"[-_.]+", "-", name).lower()
