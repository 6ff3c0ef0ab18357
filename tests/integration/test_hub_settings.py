"""The hub's settings reach what they set: a hub loads hub.toml at start-up (and refuses a bad one), and the
database, the audit log, the quotas, the disclosure policy and the portal take their values from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from renkei.cli.main import app
from renkei.hub.access.authz import Actor
from renkei.hub.access.people import Role
from renkei.hub.analysis.service import table_protector
from renkei.hub.audit import AuditCheckpointRow
from renkei.hub.audit_actions import AuditAction
from renkei.hub.disclosure.policy import POLICY_FILE
from renkei.hub.home import Hub
from renkei.hub.services import admin
from renkei.hub.settings import SETTINGS_FILE, SettingsError
from renkei.web.app import create_app
from renkei.web.settings import WebSettings
from tests.support import make_hub_home

CONSOLE = Actor.cli("cli:operator")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hub_home(tmp_path_factory.mktemp("settings") / "hub")


@pytest.fixture
def home(made: Path) -> Iterator[Path]:
    """The module's hub, with whatever hub.toml a test writes removed afterwards."""
    yield made
    for name in (SETTINGS_FILE, POLICY_FILE):
        (made / name).unlink(missing_ok=True)


def write(home: Path, text: str) -> None:
    (home / SETTINGS_FILE).write_text(text, encoding="utf-8")


def test_a_hub_refuses_to_start_with_a_bad_setting(home: Path) -> None:
    write(home, "[sessions]\nidle_timeout_minutes = -5\n")
    with pytest.raises(SettingsError, match=r"sessions\.idle_timeout_minutes") as caught:
        Hub(home)
    assert caught.value.where is not None and caught.value.where.line == 2
    result = CliRunner().invoke(app, ["catalog", "list", "--home", str(home)])
    assert result.exit_code == 2 and "line 2" in result.output and "Traceback" not in result.output


def test_the_database_url_comes_from_the_file_and_the_variable_wins(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home, f'[database]\nurl = "sqlite:///{tmp_path / "elsewhere.db"}"\n')
    assert Hub(home).engine.url.database == str(tmp_path / "elsewhere.db")
    monkeypatch.setenv("RENKEI_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert Hub(home).engine.url.database == str(tmp_path / "other.db")


def test_checkpoints_follow_the_setting(home: Path) -> None:
    write(home, "[audit]\ncheckpoint_every = 2\n")
    hub = Hub(home)
    with hub.session() as session:
        before = session.scalar(select(func.count()).select_from(AuditCheckpointRow))
    start = hub.audit.size()
    for _ in range(4 - start % 2):
        hub.audit.append(actor="test", action=AuditAction.VAULT_VERIFY)
    with hub.session() as session:
        after = session.scalar(select(func.count()).select_from(AuditCheckpointRow))
    assert after == (before or 0) + 2  # one every two appends (the built-in 1000 would sign none)


def test_audit_verify_takes_its_policy_age_from_the_setting(home: Path) -> None:
    Hub(home).audit.append(actor="test", action=AuditAction.VAULT_VERIFY)  # not covered by a checkpoint
    write(home, "[audit]\nmax_unsigned_hours = 1e-9\n")
    assert CliRunner().invoke(app, ["audit", "verify", "--home", str(home)]).exit_code == 8
    given = CliRunner().invoke(app, ["audit", "verify", "--max-unsigned-hours", "24", "--home", str(home)])
    assert given.exit_code == 0, given.output  # the option wins


def test_quotas_start_from_the_setting(home: Path) -> None:
    write(home, "[quotas]\nfiles_per_day = 2\nrows_per_file = 50\n")
    hub = Hub(home)
    admin.add_department(hub, CONSOLE, "統計課")
    admin.designate(
        hub, CONSOLE, login_id="tanaka", display_name="田中", role=Role.ANALYST, department="統計課",
        password="a quota test passphrase 71",
    )  # fmt: skip
    result = CliRunner().invoke(app, ["quota", "set", "tanaka", "--may-download", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "1日 2 ファイル" in result.output and "1ファイル 50 行" in result.output


def test_the_default_disclosure_policy_comes_from_the_setting_under_disclosure_toml(home: Path) -> None:
    write(home, "[disclosure]\nthreshold = 20\n\n[disclosure.perturbation]\nmax_noise = 6\n")
    (home / POLICY_FILE).write_text("[datasets.kaigo]\nthreshold = 30\n", encoding="utf-8")
    policies = table_protector(Hub(home)).policies  # type: ignore[attr-defined]
    assert (policies.default.threshold, policies.default.perturbation.max_noise) == (20, 6)
    assert policies.for_datasets(["kaigo"]).threshold == 30
    assert policies.for_datasets(["kaigo"]).perturbation.max_noise == 6  # from the hub's default


def test_the_portal_takes_sessions_and_webauthn_from_the_setting(home: Path, tmp_path: Path) -> None:
    write(home, '[sessions]\nidle_timeout_minutes = 7\n\n[webauthn]\nrp_id = "portal.city.example"\n')
    admin.enroll_new_terminal(Hub(home), CONSOLE, f"pc-{tmp_path.name[-8:]}", tmp_path / "pc")  # the CA
    portal = create_app(home, WebSettings(proxy_socket=True)).state.portal
    assert portal.login.sessions.idle_timeout.total_seconds() == 7 * 60
    assert portal.login.card_settings.rp_id == "portal.city.example"
    assert portal.login.card_settings.expected_origins == ("https://portal.city.example",)
