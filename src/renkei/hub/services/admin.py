"""Administration of the hub: departments, designated users, their authenticators, terminals, senders, imports.

Every change is first an access decided by ``authorize()`` (``admin.users``, ``admin.terminals`` or
``admin.catalog`` on the hub itself, with the object's name as the resource, e.g. ``user/kato``): the
decision is on the record before anything changes, and a denied one changes nothing. The change and its own
audit entry then commit in one transaction. The CLI calls these as the console actor (``Actor.cli``, the admin
role); a designated user who is not an admin is refused.

Secrets a change creates (an enrollment ticket, a TOTP URI, a PKCS#12 password) are returned once and never
stored or logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access import cards, totp
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.access.designation import designate_user
from renkei.hub.access.passwords import Passwords, set_password
from renkei.hub.access.people import Role, User
from renkei.hub.access.sessions import SessionStore, write_transaction
from renkei.hub.access.terminals import TerminalCA, enroll_terminal, revoke_terminal
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Department, Sender
from renkei.hub.db import session_factory
from renkei.hub.home import Hub
from renkei.hub.services.decisions import require

if TYPE_CHECKING:  # the importer loads pyarrow: only for an import
    from renkei.hub.importer import ImportOutcome, PackageRejectedError

MAX_NAME = 100  # a department's or a user's display name


@dataclass(frozen=True, slots=True)
class Designated:
    login_id: str
    display_name: str
    role: Role
    department: str


@dataclass(frozen=True, slots=True)
class Ended:
    """A user or a terminal after a change that ended its sessions."""

    name: str
    sessions_ended: int


@dataclass(frozen=True, slots=True)
class Ticket:
    login_id: str
    code: str  # shown once to the admin, who hands it to the user
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TotpEnrolled:
    login_id: str
    uri: str  # shown once


@dataclass(frozen=True, slots=True)
class TerminalEnrolled:
    name: str
    serial: str
    files: tuple[Path, ...]  # key, certificate, PKCS#12 bundle
    bundle_password: str  # shown once


@contextmanager
def _change(hub: Hub, actor: Actor, access: Action, target: str, clock: Clock) -> Iterator[Session]:
    """Decide ``access`` on ``target`` (recorded, raising when denied), then a transaction that holds the
    write lock and commits when the block ends. The decision comes first: it commits on a connection of its
    own, which on SQLite would wait for this transaction's lock."""
    with hub.session() as db:
        require(db, hub, actor, access, Resource(ResourceType.SYSTEM.value, None, target), clock)
    with write_transaction(session_factory(hub.engine)) as session:
        yield session


def _record(
    hub: Hub, session: Session, actor: Actor, action: AuditAction, target: str, **details: object
) -> None:
    hub.audit.append_in(
        session,
        actor=actor.name,
        action=action,
        resource=target,
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details=details,
    )


def _user(session: Session, login_id: str) -> User:
    user = session.scalar(select(User).where(func.lower(User.login_id) == login_id.lower()))
    if user is None:
        raise RenkeiError(f"利用者 {login_id} は指名されていません", f"no designated user {login_id!r}")
    return user


def _active_user(session: Session, login_id: str) -> User:
    user = _user(session, login_id)
    if user.disabled:
        raise RenkeiError(f"利用者 {user.login_id} は無効です", f"user {user.login_id!r} is disabled")
    return user


# --- departments and users ------------------------------------------------------------------------------------


def add_department(hub: Hub, actor: Actor, name: str, *, clock: Clock = SYSTEM_CLOCK) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise RenkeiError("部署名は 1〜100 文字にしてください", "a department name has 1 to 100 characters")
    target = f"department/{name}"
    with _change(hub, actor, Action.ADMIN_USERS, target, clock) as session:
        if session.scalar(select(Department).where(Department.name == name)) is not None:
            raise RenkeiError(f"部署 {name} は登録済みです", f"department {name!r} already exists")
        session.add(Department(name=name))
        session.flush()
        _record(hub, session, actor, AuditAction.ADMIN_DEPT_ADD, target)
    return name


def designate(
    hub: Hub,
    actor: Actor,
    *,
    login_id: str,
    display_name: str,
    role: Role,
    department: str,
    password: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Designated:
    """指名: a new user with an initial password they change at their first login."""
    with _change(hub, actor, Action.ADMIN_USERS, f"user/{login_id}", clock) as session:
        user = designate_user(
            session,
            hub.audit,
            login_id=login_id,
            display_name=display_name,
            role=role,
            department=department,
            password=password,
            actor=actor.name,
        )
        return Designated(user.login_id, user.display_name, user.role, user.department.name)


def disable_user(hub: Hub, actor: Actor, login_id: str, *, clock: Clock = SYSTEM_CLOCK) -> Ended:
    """The user can no longer log in, and their sessions end at once."""
    target = f"user/{login_id}"
    with _change(hub, actor, Action.ADMIN_USERS, target, clock) as session:
        user = _user(session, login_id)
        user.disabled = True
        ended = SessionStore(session_factory(hub.engine)).end_all_for_user_in(session, user.id)
        _record(
            hub, session, actor, AuditAction.ADMIN_USER_DISABLE, f"user/{user.login_id}", sessions_ended=ended
        )
        return Ended(user.login_id, ended)


def reset_password(
    hub: Hub, actor: Actor, login_id: str, password: str, *, clock: Clock = SYSTEM_CLOCK
) -> Ended:
    """A new password the user must change at the next login; their sessions end."""
    with _change(hub, actor, Action.ADMIN_USERS, f"user/{login_id}", clock) as session:
        user = _user(session, login_id)
        set_password(session, user, password, passwords=Passwords(), changed_by=actor.name, must_change=True)
        ended = SessionStore(session_factory(hub.engine)).end_all_for_user_in(session, user.id)
        _record(
            hub,
            session,
            actor,
            AuditAction.ADMIN_USER_SET_PASSWORD,
            f"user/{user.login_id}",
            sessions_ended=ended,
        )
        return Ended(user.login_id, ended)


def enroll_user_totp(hub: Hub, actor: Actor, login_id: str, *, clock: Clock = SYSTEM_CLOCK) -> TotpEnrolled:
    """TOTP for a user at a terminal without a card reader; refused while the user has a staff card."""
    with _change(hub, actor, Action.ADMIN_USERS, f"user/{login_id}", clock) as session:
        user = _active_user(session, login_id)
        if cards.active_cards(session, user.id):
            raise RenkeiError(
                f"{user.login_id} には職員証が登録されています。TOTP にするには先に `renkei user card-revoke` してください",
                f"{user.login_id} has a staff card; revoke it first (`renkei user card-revoke`) to switch to TOTP",
            )
        uri = totp.enroll_totp(session, user, kek=hub.kek, enrolled_by=actor.name)
        _record(hub, session, actor, AuditAction.ADMIN_TOTP_ENROLL, f"user/{user.login_id}")
        return TotpEnrolled(user.login_id, uri)


# --- staff cards and terminals --------------------------------------------------------------------------------


def issue_card_ticket(hub: Hub, actor: Actor, login_id: str, *, clock: Clock = SYSTEM_CLOCK) -> Ticket:
    """A one-time, time-bound ticket with which the user registers a staff card at a terminal."""
    with _change(hub, actor, Action.ADMIN_TERMINALS, f"user/{login_id}", clock) as session:
        user = _active_user(session, login_id)
        ticket = cards.create_ticket(session, user, created_by=actor.name)
        expires = ticket.expires_at.isoformat(timespec="minutes")
        _record(
            hub,
            session,
            actor,
            AuditAction.ADMIN_CARD_TICKET,
            f"user/{user.login_id}",
            ticket_id=ticket.ticket_id,
            expires_at=expires,
        )
        return Ticket(user.login_id, ticket.code, ticket.expires_at)


def revoke_user_cards(hub: Hub, actor: Actor, login_id: str, *, clock: Clock = SYSTEM_CLOCK) -> Ended:
    """Disable every staff card of the user (lost card, leaving staff); ``sessions_ended`` counts the cards."""
    with _change(hub, actor, Action.ADMIN_TERMINALS, f"user/{login_id}", clock) as session:
        user = _user(session, login_id)
        revoked = cards.revoke_cards(session, user.id, reason="revoked_by_admin")
        _record(
            hub, session, actor, AuditAction.ADMIN_CARD_REVOKE, f"user/{user.login_id}", cards_revoked=revoked
        )
        return Ended(user.login_id, revoked)


def enroll_new_terminal(
    hub: Hub, actor: Actor, name: str, out_dir: Path, *, clock: Clock = SYSTEM_CLOCK
) -> TerminalEnrolled:
    """Register a terminal and write its key, certificate and PKCS#12 bundle to ``out_dir``."""
    with _change(hub, actor, Action.ADMIN_TERMINALS, f"terminal/{name}", clock) as session:
        ca = TerminalCA.load_or_create(hub.home)
        enrolled = enroll_terminal(session, ca, name, out_dir, enrolled_by=actor.name)
        terminal = enrolled.terminal
        _record(
            hub,
            session,
            actor,
            AuditAction.ADMIN_TERMINAL_ENROLL,
            f"terminal/{terminal.name}",
            serial=terminal.serial,
            fingerprint=terminal.fingerprint_sha256,
            not_after=terminal.not_after.isoformat(timespec="seconds"),
        )
        files = (enrolled.key_file, enrolled.cert_file, enrolled.bundle_file)
        return TerminalEnrolled(terminal.name, terminal.serial, files, enrolled.bundle_password)


def revoke_named_terminal(hub: Hub, actor: Actor, name: str, *, clock: Clock = SYSTEM_CLOCK) -> Ended:
    """Revoke the terminal's certificate; its sessions end at once."""
    with _change(hub, actor, Action.ADMIN_TERMINALS, f"terminal/{name}", clock) as session:
        terminal = revoke_terminal(session, name, revoked_by=actor.name)
        ended = SessionStore(session_factory(hub.engine)).end_all_for_terminal_in(session, terminal.id)
        _record(
            hub,
            session,
            actor,
            AuditAction.ADMIN_TERMINAL_REVOKE,
            f"terminal/{terminal.name}",
            sessions_ended=ended,
        )
        return Ended(terminal.name, ended)


# --- the catalog: senders and imports -------------------------------------------------------------------------


def add_sender(hub: Hub, actor: Actor, name: str, public_key: str, *, clock: Clock = SYSTEM_CLOCK) -> str:
    """Register a sending system's Ed25519 signing key (checked by the caller: base64 of 32 bytes)."""
    target = f"sender/{name}"
    with _change(hub, actor, Action.ADMIN_CATALOG, target, clock) as session:
        if session.scalar(select(Sender).where(Sender.name == name)) is not None:
            raise RenkeiError(f"送信元 {name} は登録済みです", f"sender {name!r} is already registered")
        session.add(Sender(name=name, public_key=public_key))
        session.flush()
        _record(hub, session, actor, AuditAction.ADMIN_SENDER_ADD, target)
    return name


ImportReport = Callable[[Path, "ImportOutcome | PackageRejectedError"], None]


def import_packages(
    hub: Hub, actor: Actor, paths: list[Path], report: ImportReport, *, clock: Clock = SYSTEM_CLOCK
) -> int:
    """Import ``paths`` one by one once ``admin.catalog`` is decided; ``report`` hears of each. Returns how
    many were rejected. Each import is audited by the importer's own system actor, as any import is."""
    from renkei.hub.importer import PackageRejectedError  # noqa: PLC0415 (pyarrow: only for an import)

    with hub.session() as db:
        require(
            db, hub, actor, Action.ADMIN_CATALOG, Resource(ResourceType.SYSTEM.value, None, "import"), clock
        )
    rejected = 0
    with hub.session() as session:
        importer = hub.importer(session)
        for path in paths:
            try:
                outcome = importer.import_package(path)
            except PackageRejectedError as exc:
                rejected += 1
                report(path, exc)
                continue
            report(path, outcome)
    return rejected
