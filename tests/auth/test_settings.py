"""Secure by default: a server reachable from the network must authenticate."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import app
from shipyard.config import Settings
from shipyard.platform import Platform


@pytest.mark.parametrize("host", [None, "127.0.0.1", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_auth_by_default(host: str | None) -> None:
    assert Settings(auth="auto").auth_required(host) is False
    assert Settings(auth="off").auth_required(host) is False
    assert Settings(auth="on").auth_required(host) is True


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "shipyard.example.com"])
def test_network_host_requires_auth(host: str) -> None:
    assert Settings(auth="auto").auth_required(host) is True
    assert Settings(auth="on").auth_required(host) is True


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5"])
def test_auth_off_on_a_network_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="cannot be off"):
        Settings(auth="off").auth_required(host)


def test_auth_setting_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_AUTH", "off")
    with pytest.raises(ValueError):
        Settings().auth_required("0.0.0.0")


def test_platform_refuses_auth_off_on_network_host(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", auth="off")
    with pytest.raises(ValueError, match="cannot be off"):
        Platform.from_settings(settings, host="0.0.0.0")
    platform = Platform.from_settings(settings, host="127.0.0.1")
    assert platform.auth_required is False
    platform.close()


def test_server_command_refuses_auth_off_on_network_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_AUTH", "off")
    result = CliRunner().invoke(app, ["server", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "cannot be off" in result.output
