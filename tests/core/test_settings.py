from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import Settings


def test_defaults_live_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "h"))
    s = Settings()
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'h' / 'shipyard.db').resolve()}"
    assert s.resolved_blob_url == str((tmp_path / "h" / "blobs").resolve())
    assert s.url is None and s.project == "default"


def test_environment_switches_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SHIPYARD_BLOB_URL", "s3://bucket/prefix")
    monkeypatch.setenv("SHIPYARD_URL", "http://server:8080")
    s = Settings()
    assert s.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert s.resolved_blob_url == "s3://bucket/prefix"
    assert s.url == "http://server:8080"


@pytest.mark.parametrize(
    ("auth", "host", "required"),
    [
        ("auto", "127.0.0.1", False),
        ("auto", "localhost", False),
        ("auto", "0.0.0.0", True),
        ("auto", "10.1.2.3", True),
        ("on", "127.0.0.1", True),
        ("off", "127.0.0.1", False),
    ],
)
def test_auth_required_off_loopback(auth: str, host: str, required: bool) -> None:
    assert Settings(auth=auth).auth_required(host) is required  # type: ignore[arg-type]


def test_auth_off_refused_on_network_host() -> None:
    with pytest.raises(ValueError, match="cannot be off"):
        Settings(auth="off").auth_required("0.0.0.0")


def test_bad_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_AUTH", "maybe")
    with pytest.raises(ValueError, match="auth"):
        Settings()
