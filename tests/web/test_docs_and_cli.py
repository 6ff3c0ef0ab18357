"""docs/web.md lists every route and setting; ``renkei serve`` refuses to start without a way to see terminals."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from renkei.cli.web import register
from renkei.errors import RenkeiError
from renkei.hub.settings import SETTINGS, WebSection
from renkei.web.app import route_table
from renkei.web.settings import WebSettings
from tests.web.support import WebWorld

DOCS = (Path(__file__).parents[2] / "docs" / "web.md").read_text(encoding="utf-8")


def test_every_route_is_documented(shared_world: WebWorld) -> None:
    missing = [f"{m} {p}" for m, p, _ in route_table(shared_world.app) if f"`{m} {p}`" not in DOCS]
    assert missing == []


def test_every_web_setting_of_the_table_is_a_field_with_its_default() -> None:
    """The portal's settings are the table's ``web.*`` rows (docs/settings.md, tests/unit/test_settings.py)."""
    rows = [s for s in SETTINGS if s.name.startswith("web.")]
    assert {s.name.removeprefix("web.") for s in rows} == {"trusted_proxies", "client_cert_header",
                                                           "max_body_bytes", "hsts_max_age", "max_workspaces",
                                                           "workspace_idle_seconds", "step_up_minutes"}  # fmt: skip
    for setting in rows:
        assert getattr(WebSettings(), setting.name.removeprefix("web.")) == setting.default
    assert "docs/settings.md" in DOCS or "settings.md" in DOCS


def test_serve_takes_the_hubs_web_settings_under_its_options(tmp_path: Path) -> None:
    (tmp_path / "hub.toml").write_text('[web]\ntrusted_proxies = ["10.0.0.5"]\nmax_body_bytes = 10\n')
    result = CliRunner().invoke(cli(), ["serve", "--home", str(tmp_path)])
    assert result.exit_code == 2 and "web.max_body_bytes" in result.output and "line 3" in result.output


def test_the_hubs_workspace_bounds_reach_the_portal() -> None:
    settings = WebSettings.from_section(WebSection(max_workspaces=2, workspace_idle_seconds=60))
    assert (settings.max_workspaces, settings.workspace_idle_seconds) == (2, 60)


@pytest.mark.parametrize("field", ["max_workspaces", "workspace_idle_seconds"])
def test_the_kept_workspaces_bounds_refuse_zero(field: str) -> None:
    with pytest.raises(RenkeiError, match=f"web.{field}"):
        WebSettings(**{field: 0})


@pytest.mark.parametrize("value", ["10.0.0.300", "example.org", "10.0.0.1/8"])
def test_a_bad_proxy_address_stops_the_start(value: str) -> None:
    with pytest.raises(RenkeiError, match="trusted proxy"):
        WebSettings(trusted_proxies=(value,))


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """renkei"""

    register(app)
    return app


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "--trusted-proxy"),
        (
            ["--trusted-proxy", "127.0.0.1"],
            "--proxy-secret-file",
        ),  # issue 9 item 4: an address proves nothing
        (["--uds", "renkei.sock", "--port", "8000"], "--uds goes with none"),
        (["--tls-cert", "server.crt"], "--tls-key"),
        (["--tls-cert", "server.crt", "--tls-key", "server.key"], "server.crt"),
    ],
)
def test_serve_refuses_to_start_without_a_way_to_identify_terminals(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli(), ["serve", "--home", str(tmp_path), *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_serve_needs_the_terminal_ca_for_tls(tmp_path: Path) -> None:
    for name in ("server.crt", "server.key"):
        (tmp_path / name).write_text("-")
    arguments = ["--tls-cert", str(tmp_path / "server.crt"), "--tls-key", str(tmp_path / "server.key")]
    result = CliRunner().invoke(cli(), ["serve", "--home", str(tmp_path), *arguments])
    assert result.exit_code == 2 and "renkei terminal enroll" in result.output


def test_serve_refuses_a_proxy_secret_others_can_read(tmp_path: Path) -> None:
    secret = tmp_path / "proxy.secret"
    secret.write_text("s" * 64 + "\n")
    arguments = ["--trusted-proxy", "127.0.0.1", "--proxy-secret-file", str(secret)]
    secret.chmod(0o644)
    result = CliRunner().invoke(cli(), ["serve", "--home", str(tmp_path), *arguments])
    assert result.exit_code == 2 and "readable by others" in result.output, result.output
    secret.chmod(0o600)
    secret.write_text("too short\n")
    result = CliRunner().invoke(cli(), ["serve", "--home", str(tmp_path), *arguments])
    assert result.exit_code == 2 and "at least 32" in result.output, result.output


@pytest.mark.parametrize("secret", ["", "s" * 31, "s" * 31 + " ", "秘密" * 20])
def test_a_weak_or_missing_proxy_secret_stops_the_start(secret: str) -> None:
    with pytest.raises(RenkeiError, match="secret"):
        WebSettings(trusted_proxies=("127.0.0.1",), proxy_secret=secret)
