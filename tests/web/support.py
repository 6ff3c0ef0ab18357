"""A hub with a web portal for the web tests, and clients that reach it as a terminal would.

:class:`WebWorld` builds a hub home (audit key, terminal CA, every table, the bundled datasets with snapshots,
one enrolled terminal), the portal (``create_app``) with a :class:`FakeClock` and cheap password hashing, and
people on demand. :func:`terminal_client` is an httpx client that calls the app in-process (no sockets) over
``https://localhost``, presenting a client certificate the way the TLS server does: through the ASGI TLS
extension (:class:`renkei.web.terminal.WithTLSExtension`); the real TLS tests check that the server does so.

starlette's TestClient is not used: with the installed starlette it warns that plain httpx is deprecated
(warnings are errors here); :class:`InProcessTransport` is the small part of it that the tests need.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
import sqlite3
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from renkei.clock import FakeClock
from renkei.hub.access import totp
from renkei.hub.access.cards import CardSettings, create_ticket
from renkei.hub.access.passwords import Passwords, set_password
from renkei.hub.access.people import Role, User
from renkei.hub.access.sessions import SessionStore, write_transaction
from renkei.hub.access.terminals import Terminal, TerminalCA, enroll_terminal
from renkei.hub.access.throttle import ThrottleRecord
from renkei.hub.audit import AuditEntry, create_audit_key
from renkei.hub.catalog import Dataset, Sender, Snapshot, get_or_create_department, register_dataset
from renkei.hub.db import DATABASE_URL_ENV, session_factory
from renkei.hub.keys import create_kek_file
from renkei.spec import bundled_specs, load_spec
from renkei.web.app import create_app
from renkei.web.cookies import SESSION_COOKIE
from renkei.web.settings import WebSettings
from renkei.web.terminal import WithTLSExtension
from tests.support import TEST_HASHING, create_tables
from tests.support.webauthn_authenticator import SoftwareAuthenticator

ORIGIN = "https://localhost"
OWN = "市民課"  # owns juki
OTHER = "国保年金医療課"  # owns kokuho
PERIODS = {"juki": [dt.date(2025, 3, 31), dt.date(2026, 3, 31)], "kokuho": [dt.date(2026, 3, 31)]}
PASSWORD = "correct horse battery staple 連携"


class InProcessTransport(httpx.BaseTransport):
    """Sends each request to the ASGI app on an event loop in a helper thread (as TestClient does)."""

    def __init__(self, app: Any, client: tuple[str, int]) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=client)
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):  # a generator body: read it here
            request.stream = httpx.ByteStream(request.read())
        return self._portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def close(self) -> None:
        self._portal_context.__exit__(None, None, None)


def tls_scope_extension(cert_pem: str | None) -> dict[str, Any]:
    """What ClientCertProtocol puts in the scope for a connection that presented ``cert_pem``."""
    return {"client_cert_chain": [cert_pem] if cert_pem else [], "tls_version": 0x0304}


def terminal_client(app: FastAPI, cert_pem: str | None, address: str = "10.0.0.7") -> httpx.Client:
    """A client on a terminal holding ``cert_pem`` (None: no certificate), coming from ``address``."""
    wrapped = WithTLSExtension(app, tls_scope_extension(cert_pem))
    return httpx.Client(
        transport=InProcessTransport(wrapped, (address, 50000)), base_url=ORIGIN, follow_redirects=False
    )


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    """Commits without waiting for the disk: these tests are about decisions, not durability."""
    cursor = dbapi_connection.cursor()
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor.execute("PRAGMA synchronous=OFF")
    else:
        cursor.execute("SET synchronous_commit = off")
    cursor.close()


@dataclass
class Person:
    user: User
    password: str
    totp_secret: str = ""
    card: SoftwareAuthenticator | None = None

    @property
    def login_id(self) -> str:
        return self.user.login_id


@dataclass
class WebWorld:
    home: Path
    app: FastAPI
    clock: FakeClock
    ca: TerminalCA
    terminal: Terminal
    cert_pem: str
    settings: WebSettings
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def engine(self) -> Engine:
        return self.app.state.portal.hub.engine  # type: ignore[no-any-return]

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def client(self, cert_pem: str | None = "", address: str = "10.0.0.7") -> httpx.Client:
        """A client on the enrolled terminal (``cert_pem=None``: no certificate; a PEM: that certificate)."""
        return terminal_client(self.app, self.cert_pem if cert_pem == "" else cert_pem, address)

    # --- people

    def person(
        self,
        role: Role,
        department: str = OWN,
        *,
        factor: str = "totp",
        must_change: bool = False,
        login_id: str = "",
    ) -> Person:
        number = next(self._numbers)
        with self.session() as session:
            user = User(
                login_id=login_id or f"{role}{number}",
                display_name=f"職員 {number}",
                role=role,
                department=get_or_create_department(session, department),
            )
            session.add(user)
            session.flush()
            set_password(
                session,
                user,
                PASSWORD,
                passwords=Passwords(TEST_HASHING),
                changed_by="test",
                must_change=must_change,
                clock=self.clock,
            )
            secret = ""
            if factor == "totp":
                kek = self.app.state.portal.login.kek
                uri = totp.enroll_totp(session, user, kek=kek, enrolled_by="test", clock=self.clock)
                secret = uri.split("secret=")[1].split("&")[0]
            session.commit()
        return Person(user, PASSWORD, totp_secret=secret)

    def card_ticket(self, person: Person) -> str:
        """What the admin's ``renkei user card-ticket`` hands over."""
        with self.session() as session:
            ticket = create_ticket(
                session, session.get_one(User, person.user.id), created_by="test", clock=self.clock
            )
            session.commit()
        return ticket.code

    def set_disabled(self, person: Person, disabled: bool = True) -> None:
        with self.session() as session:
            session.get_one(User, person.user.id).disabled = disabled
            session.commit()

    def open_session(self, person: Person, terminal: Terminal | None = None) -> tuple[str, str]:
        """A session as a completed login makes one (token, CSRF token), without the ceremony."""
        store = SessionStore(session_factory(self.engine), self.clock)
        with write_transaction(session_factory(self.engine)) as session:
            user = session.get_one(User, person.user.id)
            login = store.create_in(
                session, user=user, terminal=terminal or self.terminal, client_addr="10.0.0.7"
            )
        return login.token, login.csrf_token

    # --- catalog

    def snapshot_id(self, dataset: str, period: dt.date) -> int:
        with self.session() as session:
            found = session.scalar(
                select(Snapshot.id).join(Dataset).where(Dataset.name == dataset, Snapshot.period == period)
            )
        assert found is not None
        return found

    def throttle_rows(self) -> int:
        with self.session() as session:
            return len(session.scalars(select(ThrottleRecord.key_sha256)).all())

    # --- the audit log

    def audit_size(self) -> int:
        return int(self.app.state.portal.hub.audit.size())

    def entries(self, since: int = 0) -> list[AuditEntry]:
        with self.session() as session:
            return list(
                session.scalars(select(AuditEntry).where(AuditEntry.seq >= since).order_by(AuditEntry.seq))
            )


def build_world(home: Path, database_url: str, **settings: Any) -> WebWorld:
    """A hub home and its portal on ``database_url`` (SQLite file or a PostgreSQL schema)."""
    home.mkdir(mode=0o700, parents=True)
    create_audit_key(home)
    create_kek_file(home)
    clock = FakeClock()
    ca = TerminalCA.load_or_create(home, clock)
    defaults: dict[str, Any] = {"passwords": Passwords(TEST_HASHING), "card_settings": CardSettings()}
    web_settings = WebSettings(clock=clock, **{**defaults, **settings})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATABASE_URL_ENV, database_url)
        app = create_app(home, web_settings)
        engine: Engine = app.state.portal.hub.engine  # created now, with the URL above
    event.listen(engine, "connect", _no_fsync)
    create_tables(engine)
    _seed_catalog(engine)
    terminal, cert_pem = enroll(engine, ca, clock, "term-01", home)
    return WebWorld(home, app, clock, ca, terminal, cert_pem, web_settings)


def enroll(engine: Engine, ca: TerminalCA, clock: FakeClock, name: str, home: Path) -> tuple[Terminal, str]:
    with Session(engine, expire_on_commit=False) as session:
        enrolled = enroll_terminal(
            session, ca, name, home / "terminals" / secrets.token_hex(4), enrolled_by="test", clock=clock
        )
        session.commit()
    return enrolled.terminal, enrolled.cert_file.read_text()


def terminal_key_files(home: Path, name: str) -> tuple[Path, Path]:
    found = next((home / "terminals").glob(f"*/{name}.crt"))
    return found, found.with_suffix(".key")


def _seed_catalog(engine: Engine) -> None:
    with Session(engine) as session:
        for path in bundled_specs().values():
            register_dataset(session, load_spec(path))
        sender = Sender(name="kyotsu", public_key="-")
        for name, periods in PERIODS.items():
            dataset = session.scalars(select(Dataset).where(Dataset.name == name)).one()
            for number, period in enumerate(periods):
                session.add(
                    Snapshot(
                        dataset=dataset,
                        period=period,
                        version=1,
                        rows=100,
                        bytes=4096,
                        content_sha256="0" * 64,
                        spec_hash=dataset.spec_hash,
                        sender=sender,
                        package_id=f"{name}{number}",
                    )
                )
        session.commit()


@contextmanager
def world_on(database_url: str, directory: Path, **settings: Any) -> Iterator[WebWorld]:
    world = build_world(directory / "hub", database_url, **settings)
    try:
        yield world
    finally:
        world.engine.dispose()


# --- the login ceremony over HTTP ---------------------------------------------------------------------------


def csrf(client: httpx.Client) -> str:
    response = client.get("/api/v1/session/csrf")
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def login_with_totp(world: WebWorld, client: httpx.Client, person: Person) -> str:
    """Both steps with the person's TOTP app; returns the session's CSRF token. Moves the clock 30 s first."""
    world.clock.advance(seconds=30)  # a code is accepted once: each login needs the next step's code
    step1 = client.post(
        "/api/v1/session/login",
        json={"login_id": person.login_id, "password": person.password},
        headers={"X-CSRF-Token": csrf(client)},
    )
    assert step1.status_code == 200, step1.text
    assert step1.json()["factor"] == "totp"
    code = totp.current_code(person.totp_secret, world.clock.now())
    step2 = client.post("/api/v1/session/totp", json={"code": code}, headers={"X-CSRF-Token": csrf(client)})
    assert step2.status_code == 200, step2.text
    return str(step2.json()["csrf_token"])


def login_with_card(client: httpx.Client, person: Person) -> str:
    assert person.card is not None
    step1 = client.post(
        "/api/v1/session/login",
        json={"login_id": person.login_id, "password": person.password},
        headers={"X-CSRF-Token": csrf(client)},
    )
    assert step1.status_code == 200, step1.text
    assert step1.json()["factor"] == "card"

    assertion = person.card.get(json.dumps(step1.json()["card_options"]))
    step2 = client.post(
        "/api/v1/session/card", json={"assertion": assertion}, headers={"X-CSRF-Token": csrf(client)}
    )
    assert step2.status_code == 200, step2.text
    return str(step2.json()["csrf_token"])


def session_cookie(client: httpx.Client) -> str | None:
    return client.cookies.get(SESSION_COOKIE)


def der_of(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def pem_of(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


# --- step-up (the second factor again, before an approval or an export) --------------------------------------

STEP_UP_STALE = dt.timedelta(minutes=6)  # past web.step_up_minutes (5): the login's proof no longer counts


def step_up_with_totp(world: WebWorld, client: httpx.Client, person: Person, csrf_token: str) -> None:
    """Prove the TOTP again over the API (the next step's code: the login's is used), as approvals need."""
    world.clock.advance(seconds=30)
    code = totp.current_code(person.totp_secret, world.clock.now())
    proved = client.post(
        "/api/v1/session/step-up/totp", json={"code": code}, headers={"X-CSRF-Token": csrf_token}
    )
    assert proved.status_code == 200, proved.text
