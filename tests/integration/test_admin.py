"""Admin changes are decided by ``authorize()`` like any access: the console actor's decision is on the record
before each change, and a user who is not an admin is refused with nothing changed (renkei.hub.services.admin).
"""

from __future__ import annotations

import base64
import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from typer.testing import CliRunner

from renkei.cli.main import app
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.access.people import Role, User
from renkei.hub.audit import AuditEntry
from renkei.hub.db import Base
from renkei.hub.home import Hub
from renkei.hub.services import admin
from renkei.package import PACKAGE_SUFFIX
from tests.support import make_hub_home

PASSWORD = "Canary-Admin-Passw0rd 9d2e"
CONSOLE = Actor.cli("cli:operator")
AUDIT_TABLES = {"audit_entries", "audit_head", "audit_checkpoints"}


def sender_key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Change:
    """One admin change: the access it needs, the resource it is decided on, the entry it writes."""

    name: str
    access: str
    resource: str
    written: str
    run: Callable[[Hub, Actor, Path], Any]


CHANGES = [
    Change("dept add", "admin.users", "department/福祉課", "admin.dept_add",
           lambda hub, actor, _: admin.add_department(hub, actor, "福祉課")),
    Change("user add", "admin.users", "user/suzuki", "admin.user_add",
           lambda hub, actor, _: admin.designate(hub, actor, login_id="suzuki", display_name="鈴木",
                                                 role=Role.ANALYST, department="税務課", password=PASSWORD)),
    Change("user set-password", "admin.users", "user/kato", "admin.user_set_password",
           lambda hub, actor, _: admin.reset_password(hub, actor, "kato", PASSWORD + " new")),
    Change("user totp-enroll", "admin.users", "user/kato", "admin.totp_enroll",
           lambda hub, actor, _: admin.enroll_user_totp(hub, actor, "kato")),
    Change("user card-ticket", "admin.terminals", "user/kato", "admin.card_ticket",
           lambda hub, actor, _: admin.issue_card_ticket(hub, actor, "kato")),
    Change("user card-revoke", "admin.terminals", "user/kato", "admin.card_revoke",
           lambda hub, actor, _: admin.revoke_user_cards(hub, actor, "kato")),
    Change("terminal enroll", "admin.terminals", "terminal/pc-2", "admin.terminal_enroll",
           lambda hub, actor, tmp: admin.enroll_new_terminal(hub, actor, "pc-2", tmp / "pc-2")),
    Change("terminal revoke", "admin.terminals", "terminal/pc-1", "admin.terminal_revoke",
           lambda hub, actor, _: admin.revoke_named_terminal(hub, actor, "pc-1")),
    Change("user change", "admin.users", "user/kato", "admin.user_change",
           lambda hub, actor, _: admin.change_user(hub, actor, "kato", role=Role.STEWARD, department="税務課")),
    Change("user disable", "admin.users", "user/kato", "admin.user_disable",
           lambda hub, actor, _: admin.disable_user(hub, actor, "kato")),
    Change("user enable", "admin.users", "user/kato", "admin.user_enable",
           lambda hub, actor, _: admin.enable_user(hub, actor, "kato")),
    Change("hub add-sender", "admin.catalog", "sender/kikan", "admin.sender_add",
           lambda hub, actor, _: admin.add_sender(hub, actor, "kikan", sender_key())),
    Change("import", "admin.catalog", "import", "import.rejected",  # a file that is no package
           lambda hub, actor, tmp: admin.import_packages(hub, actor, [tmp / f"junk{PACKAGE_SUFFIX}"],
                                                         lambda path, outcome: None)),
]  # fmt: skip


@pytest.fixture(scope="module")
def staffed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub with a department, an analyst ``kato`` to administer, an analyst ``sato`` and a terminal."""
    home = make_hub_home(tmp_path_factory.mktemp("admin") / "hub")
    hub = Hub(home)
    admin.add_department(hub, CONSOLE, "税務課")
    for login_id in ("kato", "sato"):
        admin.designate(
            hub, CONSOLE, login_id=login_id, display_name=login_id, role=Role.ANALYST, department="税務課",
            password=PASSWORD,
        )  # fmt: skip
    admin.enroll_new_terminal(hub, CONSOLE, "pc-1", tmp_path_factory.mktemp("pc-1"))
    hub.engine.dispose()
    return home


@pytest.fixture
def hub(staffed: Path, tmp_path: Path) -> Iterator[Hub]:
    """A fresh copy of the staffed hub for each test."""
    home = tmp_path / "hub"
    _copy_tree(staffed, home)
    (tmp_path / f"junk{PACKAGE_SUFFIX}").write_bytes(b"not a package")
    hub = Hub(home)
    yield hub
    hub.engine.dispose()


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(mode=0o700)
    for path in source.iterdir():
        if path.is_dir():
            _copy_tree(path, target / path.name)
        else:
            (target / path.name).write_bytes(path.read_bytes())
            (target / path.name).chmod(path.stat().st_mode)


def entries(hub: Hub, since: int = 0) -> list[AuditEntry]:
    with hub.session() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.seq >= since).order_by(AuditEntry.seq))
        )


def state(hub: Hub) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log's."""
    with hub.session() as session:
        return {
            table.name: sorted(tuple(map(repr, row)) for row in session.execute(select(table)).all())
            for table in Base.metadata.sorted_tables
            if table.name not in AUDIT_TABLES
        }


def analyst(hub: Hub, login_id: str) -> Actor:
    with hub.session() as session:
        user = session.scalars(select(User).where(User.login_id == login_id)).one()
        return Actor.for_user(user, terminal="pc-1")


def test_each_admin_change_is_decided_first_as_the_console_actor(hub: Hub, tmp_path: Path) -> None:
    for change in CHANGES:
        start = hub.audit.size()
        change.run(hub, CONSOLE, tmp_path)
        decision, *written = entries(hub, start)
        assert (decision.action, decision.result, decision.resource) == (
            "authz.decision",
            "allowed",
            change.resource,
        ), change.name
        assert (decision.actor, decision.terminal) == ("cli:operator", "console")
        assert (decision.details["access"], decision.details["policy"]) == (change.access, "role:admin")
        assert [e.action for e in written] == [change.written], change.name
    assert hub.audit.verify().ok


@pytest.mark.parametrize("change", CHANGES, ids=[c.name for c in CHANGES])
def test_a_denied_admin_change_changes_nothing(hub: Hub, tmp_path: Path, change: Change) -> None:
    sato = analyst(hub, "sato")
    before, start = state(hub), hub.audit.size()
    with pytest.raises(Forbidden, match="is for admins"):
        change.run(hub, sato, tmp_path)
    assert state(hub) == before
    [decision] = entries(hub, start)  # the refusal, and nothing else
    assert (decision.action, decision.result, decision.actor) == ("authz.decision", "denied", "sato")
    assert (decision.resource, decision.details["access"]) == (change.resource, change.access)
    assert not (tmp_path / "pc-2").exists()  # no terminal's files written either


def test_a_disabled_admin_account_is_refused_too(hub: Hub, tmp_path: Path) -> None:
    """Only the console actor holds the admin role without a user row; a designated admin who was disabled
    holds nothing."""
    with hub.session() as session:
        kato = session.scalars(select(User).where(User.login_id == "kato")).one()
        kato.role, kato.disabled = Role.ADMIN, True
        session.commit()
    with pytest.raises(Forbidden):
        admin.add_department(hub, Actor.for_user(kato), "福祉課")
    assert entries(hub)[-1].details["policy"] == "deny:not-designated"


def test_every_admin_cli_command_writes_its_decision(hub: Hub, tmp_path: Path) -> None:
    """The commands themselves, as an operator runs them: each change follows its own allowed decision."""
    home = ["--home", str(hub.home)]
    commands = [
        ["dept", "add", "福祉課"],
        [
            "user",
            "add",
            "suzuki",
            "--name",
            "鈴木",
            "--role",
            "analyst",
            "--dept",
            "福祉課",
            "--password-stdin",
        ],
        ["user", "set-password", "suzuki", "--password-stdin"],
        ["user", "totp-enroll", "suzuki"],
        ["user", "card-ticket", "kato"],
        ["user", "card-revoke", "kato"],
        ["user", "disable", "kato"],
        ["terminal", "enroll", "pc-3", "--out", str(tmp_path / "pc-3")],
        ["terminal", "revoke", "pc-3"],
        ["hub", "add-sender", "--name", "kikan", "--public-key", sender_key()],
        ["import", str(tmp_path / f"junk{PACKAGE_SUFFIX}")],
    ]
    start = hub.audit.size()
    for command in commands:
        result = CliRunner().invoke(app, [*command, *home], input=PASSWORD + "\n")
        assert "Traceback" not in result.output and result.exit_code in (0, 4), (command, result.output)
    logged = entries(hub, start)
    decisions = [e for e in logged if e.action == "authz.decision"]
    assert len(decisions) == len(commands)
    assert all(e.result == "allowed" and e.actor == f"cli:{getpass.getuser()}" for e in decisions)
    changes = [i for i, e in enumerate(logged) if e.action != "authz.decision"]
    assert len(changes) == len(commands)
    assert all(logged[i - 1].action == "authz.decision" for i in changes)  # each right after its decision
    assert [e.details["access"] for e in decisions] == [
        *["admin.users"] * 4, "admin.terminals", "admin.terminals", "admin.users",
        "admin.terminals", "admin.terminals", "admin.catalog", "admin.catalog",
    ]  # fmt: skip


LISTS = [
    ("list_users", "admin.users"), ("list_departments", "admin.users"), ("list_terminals", "admin.terminals"),
    ("list_cards", "admin.terminals"), ("list_senders", "admin.catalog"), ("key_status", "admin.catalog"),
    ("hub_status", "admin.catalog"), ("policy_in_force", "admin.catalog"),
]  # fmt: skip


def test_what_exists_is_listed_for_admins_only(hub: Hub) -> None:
    """The lists the CLI and the admin pages show: decided like a change, refused to anyone but an admin."""
    for name, access in LISTS:
        start = hub.audit.size()
        getattr(admin, name)(hub, CONSOLE)
        decision = entries(hub, start)[0]
        assert (decision.details["access"], decision.result) == (access, "allowed"), name
        with pytest.raises(Forbidden):
            getattr(admin, name)(hub, analyst(hub, "sato"))
    assert [u.login_id for u in admin.list_users(hub, CONSOLE)] == ["kato", "sato"]
    assert ("税務課", 2, 0) in [(d.name, d.users, d.stewards) for d in admin.list_departments(hub, CONSOLE)]
    assert [(t.name, t.active) for t in admin.list_terminals(hub, CONSOLE)] == [("pc-1", True)]
    status = admin.hub_status(hub, CONSOLE)
    assert status.audit_ok and status.snapshots == 0 and status.database.startswith("sqlite")
    policy = {row.name: row for row in admin.policy_in_force(hub, CONSOLE)}
    assert policy["disclosure.threshold"].value == str(hub.settings.disclosure.threshold)
    assert policy["disclosure.threshold"].env == "RENKEI_DISCLOSURE_THRESHOLD"
    assert admin.key_status(hub, CONSOLE).kek_id == hub.kek.key_id


def test_the_cli_changes_and_enables_a_user_through_the_service(hub: Hub) -> None:
    home = ["--home", str(hub.home)]
    runner = CliRunner()
    changed = runner.invoke(app, ["user", "change", "kato", "--role", "steward", "--dept", "税務課", *home])
    assert changed.exit_code == 0, changed.output
    assert runner.invoke(app, ["user", "disable", "kato", *home]).exit_code == 0
    assert runner.invoke(app, ["user", "enable", "kato", *home]).exit_code == 0
    listed = runner.invoke(app, ["user", "list", *home], env={"COLUMNS": "120"})
    assert "kato" in listed.output and "steward" in listed.output and "無効" not in listed.output
    unknown = runner.invoke(app, ["user", "change", "kato", "--role", "analyst", "--dept", "無い課", *home])
    assert unknown.exit_code == 2 and "部署 無い課 は登録されていません" in unknown.output
    actions = [e.action for e in entries(hub) if e.action.startswith("admin.user_")]
    assert actions[-3:] == ["admin.user_change", "admin.user_disable", "admin.user_enable"]
