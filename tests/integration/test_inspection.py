"""The monthly inspection (点検, renkei.hub.services.inspection) on a small log with known counts, and
``renkei audit inspection --month``, which prints the same report in at most 80 columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from sqlalchemy import update
from typer.testing import CliRunner

from renkei.cli.main import app
from renkei.clock import JST
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.access.people import Role, User
from renkei.hub.audit import AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from renkei.hub.services import admin, inspection
from tests.support import make_hub_home

CONSOLE = Actor.cli("cli:operator")
PASSWORD = "Canary-Inspect-Passw0rd 41c"
APRIL = dt.date(2026, 4, 1)
SNAPSHOT = "snapshot/juki/2026-03-31/v1"


class Times:
    """The audit log's clock, set before each append."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 20, 10, tzinfo=JST)

    def at(self, month: int, day: int, hour: int, minute: int = 0) -> None:
        self.now = dt.datetime(2026, month, day, hour, minute, tzinfo=JST)


@pytest.fixture
def times(monkeypatch: pytest.MonkeyPatch) -> Times:
    times = Times()
    monkeypatch.setattr("renkei.hub.audit._now", lambda: times.now.astimezone(dt.UTC))
    return times


@pytest.fixture
def hub(tmp_path: Path, times: Times) -> Iterator[Hub]:
    """April 2026 of a small hub: its entries and what the report must find in them."""
    hub = Hub(make_hub_home(tmp_path / "hub"))
    times.at(3, 31, 23)  # March (JST): not in the report
    admin.add_department(hub, CONSOLE, "点検課")
    times.at(4, 1, 9)
    for login_id in ("kato", "sato"):
        admin.designate(
            hub, CONSOLE, login_id=login_id, display_name=login_id, role=Role.ANALYST, department="点検課",
            password=PASSWORD,
        )  # fmt: skip
    log = hub.audit
    times.at(4, 1, 10)
    log.append(actor="kato", action=AuditAction.LOGIN_PASSWORD, resource="user/kato", terminal="pc-1")
    log.append(actor="kato", action=AuditAction.LOGIN_TOTP, resource="user/kato", terminal="pc-1")
    log.append(actor="kato", action=AuditAction.LOGIN_PASSWORD, result="denied", reason="wrong_password")
    times.at(4, 1, 11)
    log.append(
        actor="unknown", action=AuditAction.LOGIN_PASSWORD, result="denied", reason="unregistered_terminal",
        client_addr="10.0.0.99",
    )  # fmt: skip
    times.at(4, 1, 12)
    for access in ("snapshot.read", "snapshot.read", "snapshot.read_rows"):
        log.append(
            actor="kato", action=AuditAction.AUTHZ_DECISION, resource=SNAPSHOT, result="allowed",
            details={"access": access, "resource_type": "snapshot"},
        )  # fmt: skip
    times.at(4, 1, 13)
    log.append(
        actor="kato", action=AuditAction.EXPORT_FILE, resource="export/7",
        details={"release": 3, "sha256": "ab" * 32, "bytes": 1200, "reservation": 1},
    )  # fmt: skip
    times.at(4, 1, 14)
    log.append(actor="sato", action=AuditAction.APPLICATION_APPROVE, resource="application/1")
    log.checkpoint()
    times.at(4, 2, 23, 30)  # at night, refused five times
    for _ in range(5):
        log.append(
            actor="kato", action=AuditAction.AUTHZ_DECISION, resource="export", result="denied",
            details={"access": "export", "resource_type": "export"},
        )  # fmt: skip
    times.at(5, 1, 0, 30)  # May: not in the report
    log.append(actor="kato", action=AuditAction.LOGIN_TOTP, resource="user/kato")
    times.at(5, 2, 10)  # when the auditor asks
    yield hub
    hub.engine.dispose()


def test_the_report_counts_what_the_month_holds(hub: Hub) -> None:
    report = inspection.monthly_inspection(hub, CONSOLE, APRIL)
    assert report.label == "2026-04"
    assert report.verification.ok and report.verification.checkpoints_in_month == 1
    assert [(r.actor, r.logins, r.refused) for r in report.logins] == [("kato", 1, 1), ("unknown", 0, 1)]
    assert [(r.client_addr, r.reason) for r in report.terminal_refusals] == [
        ("10.0.0.99", "unregistered_terminal")
    ]
    assert [(r.actor, r.dataset, r.reads, r.row_reads) for r in report.data_access] == [
        ("kato", "juki", 2, 1)
    ]
    assert [(r.actor, r.resource, r.sha256, r.bytes) for r in report.exports] == [
        ("kato", "export/7", "ab" * 32, 1200)
    ]
    assert [(q.actor, q.files, q.bytes) for q in report.quota] == [("kato", 1, 1200)]
    assert [(r.actor, r.action) for r in report.decisions] == [("sato", "application.approve")]
    assert [r.action for r in report.admin_changes] == ["admin.user_add", "admin.user_add"]
    assert ("kato", "export", 5) in [(d.actor, d.access, d.count) for d in report.denials]
    assert [(u.kind, u.actor, u.day, u.count) for u in report.unusual] == [
        ("off_hours", "kato", dt.date(2026, 4, 2), 5),
        ("repeated_denials", "kato", dt.date(2026, 4, 2), 5),
    ]


def test_a_tampered_log_fails_the_reports_verification(hub: Hub) -> None:
    with hub.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.actor == "sato").values(actor="mallory"))
        session.commit()
    verification = inspection.monthly_inspection(hub, CONSOLE, APRIL).verification
    assert not verification.ok and verification.first_bad_seq is not None


def test_only_auditors_and_admins_read_it(hub: Hub) -> None:
    with hub.session() as session:
        kato = Actor.for_user(session.query(User).filter_by(login_id="kato").one())
    with pytest.raises(Forbidden):
        inspection.monthly_inspection(hub, kato, APRIL)
    denied = hub.audit.tail(1)[0]
    assert (denied.actor, denied.result, denied.details["access"]) == ("kato", "denied", "audit.read")


@pytest.mark.parametrize("text", ["2026-4", "2026-13", "april", "1999-01"])
def test_a_month_is_yyyy_mm(text: str) -> None:
    with pytest.raises(RenkeiError, match="YYYY-MM"):
        inspection.parse_month(text)


def test_the_cli_prints_the_report_in_80_columns(hub: Hub) -> None:
    result = CliRunner().invoke(
        app, ["audit", "inspection", "--month", "2026-04", "--home", str(hub.home)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "監査ログの月次点検 (monthly inspection) 2026-04"
    assert "ab" * 32 in result.output and "10.0.0.99" in result.output
    assert max(cell_len(line) for line in lines) <= 80, max(lines, key=cell_len)
