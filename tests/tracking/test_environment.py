"""Code version (git) and environment capture."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import home_client

from shipyard.tracking.environment import (
    capture_code_version,
    capture_environment,
    installed_packages,
    strip_credentials,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    (repo / "train.py").write_text("print('hi')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    return repo


@needs_git
def test_clean_then_dirty_repo(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    clean = capture_code_version(repo)
    assert clean["git_commit"] == head
    assert clean["git_dirty"] is False
    assert clean["git_branch"] == "trunk"
    assert clean["git_remote"] is None

    (repo / "notes.md").write_text("untracked files do not make it dirty")
    assert capture_code_version(repo)["git_dirty"] is False

    (repo / "train.py").write_text("print('changed')\n")
    dirty = capture_code_version(repo)
    assert dirty["git_dirty"] is True
    assert dirty["git_commit"] == head


@needs_git
def test_remote_url_loses_its_credentials(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://alice:s3cret@git.example.com/ml/churn.git")
    remote = capture_code_version(repo)["git_remote"]
    assert remote == "https://git.example.com/ml/churn.git"


@needs_git
def test_detached_head_and_subfolder(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    (repo / "src").mkdir()
    version = capture_code_version(repo / "src")
    assert version["git_commit"] == head
    assert version["git_branch"] is None


def test_not_a_repository(tmp_path: Path) -> None:
    version = capture_code_version(tmp_path)
    assert version["git_commit"] is None
    assert version["git_dirty"] is None
    assert version["git_branch"] is None


def test_missing_git_never_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert capture_code_version(tmp_path)["git_commit"] is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:token@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://token@github.com:8443/a/b", "https://github.com:8443/a/b"),
        ("https://github.com/a/b.git", "https://github.com/a/b.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("ssh://git:pw@host/a/b", "ssh://host/a/b"),
        ("/srv/git/b.git", "/srv/git/b.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_environment_names_python_platform_and_packages() -> None:
    env = capture_environment()
    assert env["python_version"] == platform.python_version()
    assert env["python_implementation"] == platform.python_implementation()
    assert env["platform"].startswith(platform.system())
    packages = env["packages"]
    for name in ("pydantic", "httpx", "sqlalchemy"):
        assert packages[name] == importlib.metadata.version(name)
    assert packages.get("pydantic-settings") == importlib.metadata.version("pydantic-settings")
    assert dict(installed_packages()) == packages


@needs_git
def test_a_run_records_its_scripts_repository(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text(
        "import shipyard\nwith shipyard.start_run() as run:\n    print(run.id)\n"
    )
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_SYSTEM_METRICS_INTERVAL": "0",
    }
    for key in ("SHIPYARD_URL", "SHIPYARD_DATABASE_URL", "SHIPYARD_BLOB_URL"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, str(repo / "train.py")],
        cwd=tmp_path,  # the script's folder counts, not the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()

    with home_client(tmp_path / "home") as client:
        stored = client.runs.get(run_id)
    assert stored.code_version["git_commit"] == git(repo, "rev-parse", "HEAD")
    assert stored.code_version["git_dirty"] is True
    assert stored.code_version["entry_point"] == "train.py"
    assert stored.environment["python_version"] == platform.python_version()
