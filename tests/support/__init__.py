"""Helpers shared by the login, terminal and session tests.

:func:`access_world` builds what a login needs on a given database: every hub table, an audit log, a terminal
CA with one enrolled terminal, a fake clock, and a :class:`LoginService` whose password hashing uses the
cheap :data:`TEST_HASHING` parameters (tests only, chosen here explicitly; production code has no way to
lower them).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from renkei.clock import FakeClock
from renkei.hub import models
from renkei.hub.access import totp
from renkei.hub.access.cards import CardSettings, create_ticket
from renkei.hub.access.login import LoginService
from renkei.hub.access.passwords import HashParameters, Passwords, set_password
from renkei.hub.access.people import Role, User
from renkei.hub.access.terminals import Terminal, TerminalCA, enroll_terminal
from renkei.hub.audit import AuditEntry, AuditLog, create_audit_key
from renkei.hub.catalog import get_or_create_department
from renkei.hub.db import Base, database_url, make_engine
from renkei.hub.home import init_hub
from renkei.hub.keys import KEK_BYTES, AesGcmKek
from renkei.hub.migrate import MIGRATIONS
from tests.support.webauthn_authenticator import SoftwareAuthenticator

TEST_HASHING = HashParameters(time_cost=1, memory_kib=64, parallelism=1)  # tests only
ORIGIN = "https://localhost"
ADDR = "10.0.0.7"

assert models  # every hub table is registered on Base.metadata


@dataclass
class AccessWorld:
    engine: Engine
    audit: AuditLog
    clock: FakeClock
    ca: TerminalCA
    terminal: Terminal
    terminal_cert_der: bytes
    login: LoginService
    home: Path

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def add_user(
        self,
        login_id: str,
        password: str,
        *,
        role: Role = Role.ANALYST,
        department: str = "政策調査課",
        display_name: str = "山田 太郎",
        disabled: bool = False,
    ) -> User:
        with self.session() as session:
            dept = get_or_create_department(session, department)
            user = User(
                login_id=login_id, display_name=display_name, role=role, department=dept, disabled=disabled
            )
            session.add(user)
            session.flush()
            set_password(
                session,
                user,
                password,
                passwords=self.login.passwords,
                changed_by="test",
                must_change=False,
                clock=self.clock,
            )
            session.commit()
            return user

    def add_terminal(self, name: str) -> tuple[Terminal, bytes]:
        return _enroll(self.engine, self.ca, self.clock, name, self.home / "out" / secrets.token_hex(4))

    def card_ticket(self, user: User) -> str:
        """What ``renkei user card-ticket`` gives the admin to hand over."""
        with self.session() as session:
            ticket = create_ticket(
                session, session.get(User, user.id) or user, created_by="test", clock=self.clock
            )
            session.commit()
        return ticket.code

    def enroll_card(
        self, user: User, password: str, card: SoftwareAuthenticator | None = None, ticket: str | None = None
    ) -> SoftwareAuthenticator:
        """What an admin and the user do: a ticket, then the registration ceremony at the terminal."""
        card = card or SoftwareAuthenticator(origin=ORIGIN)
        ticket = ticket or self.card_ticket(user)
        start = self.login.begin_card_enrollment(self.terminal, user.login_id, password, ticket, ADDR)
        self.login.finish_card_enrollment(
            start.handle, card.create(start.options_json), terminal=self.terminal, client_addr=ADDR
        )
        return card

    def enroll_totp(self, user: User) -> str:
        """The TOTP secret an admin gave the user (read back from the URI, as the user's app would)."""
        with self.session() as session:
            uri = totp.enroll_totp(
                session,
                session.get(User, user.id) or user,
                kek=self.login.kek,
                enrolled_by="test",
                clock=self.clock,
            )
            session.commit()
        return uri.split("secret=")[1].split("&")[0]

    def audit_entries(self) -> list[AuditEntry]:
        with self.session() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


@contextmanager
def access_world(database_url: str, tmp_path: Path, **login_options: Any) -> Iterator[AccessWorld]:
    engine = make_engine(database_url)
    if engine.dialect.name == "sqlite":
        # After make_engine's own pragmas: these tests check logic, not durability, and fsync dominates them.
        event.listen(engine, "connect", _no_fsync)
    create_tables(engine)
    clock = FakeClock()
    home = tmp_path / "hub"
    home.mkdir(mode=0o700)
    audit = AuditLog(engine, Ed25519PrivateKey.generate())
    ca = TerminalCA.load_or_create(home, clock)
    terminal, cert_der = _enroll(engine, ca, clock, "term-01", home / "out")
    login_options.setdefault("passwords", Passwords(TEST_HASHING))
    login_options.setdefault("kek", AesGcmKek(secrets.token_bytes(KEK_BYTES), "test"))
    login = LoginService(engine, audit, card_settings=CardSettings(), clock=clock, **login_options)
    try:
        yield AccessWorld(engine, audit, clock, ca, terminal, cert_der, login, home)
    finally:
        engine.dispose()


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def create_tables(engine: Engine) -> None:
    """Every hub table, in one transaction (pysqlite would otherwise commit, and fsync, each CREATE)."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        Base.metadata.create_all(connection)


def _enroll(engine: Engine, ca: TerminalCA, clock: FakeClock, name: str, out: Path) -> tuple[Terminal, bytes]:
    """Enroll a terminal; returns it with the DER of the certificate written for it."""
    with Session(engine, expire_on_commit=False) as session:
        enrolled = enroll_terminal(session, ca, name, out, enrolled_by="test", clock=clock)
        session.commit()
    cert = x509.load_pem_x509_certificate(enrolled.cert_file.read_bytes())
    return enrolled.terminal, cert.public_bytes(serialization.Encoding.DER)


def make_hub_home(home: Path) -> Path:
    """A hub home for CLI tests: ``init_hub`` once Alembic revisions exist, else its keys and tables directly."""
    revisions = [p for p in (MIGRATIONS / "versions").glob("*.py") if p.name != "__init__.py"]
    if revisions:
        init_hub(home)
        return home
    home.mkdir(mode=0o700, parents=True)
    create_audit_key(home)
    engine = make_engine(database_url(home))
    create_tables(engine)
    engine.dispose()
    return home
