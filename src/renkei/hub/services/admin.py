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
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access import cards, totp
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.access.designation import designate_user
from renkei.hub.access.passwords import Passwords, set_password
from renkei.hub.access.people import Role, User
from renkei.hub.access.sessions import SessionStore, write_transaction
from renkei.hub.access.terminals import (
    Terminal,
    TerminalCA,
    enroll_terminal,
    load_ca_certificate,
    revoke_terminal,
)
from renkei.hub.audit import AuditCheckpointRow, AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Department, Sender, Snapshot
from renkei.hub.db import session_factory
from renkei.hub.home import Hub
from renkei.hub.services.decisions import require

if TYPE_CHECKING:  # the importer loads pyarrow: only for an import
    from renkei.hub.importer import ImportOutcome, PackageRejectedError

MAX_NAME = 100  # a department's or a user's display name
LOGIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def check_login_id(login_id: str) -> str:
    """A login id: 2-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit."""
    if not LOGIN_ID.fullmatch(login_id):
        raise RenkeiError(
            f"利用者IDが不正です: {login_id!r}（英小文字・数字・. _ - で 2〜64 文字）",
            f"Invalid login id {login_id!r}: 2-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        )
    return login_id


def check_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise RenkeiError("氏名は 1〜100 文字にしてください", "A display name has 1 to 100 characters")
    return name


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
    login_id, display_name = check_login_id(login_id), check_display_name(display_name)
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


# --- changes of a user: role, department, enable ----------------------------------------------------------------


def change_user(
    hub: Hub, actor: Actor, login_id: str, *, role: Role, department: str, clock: Clock = SYSTEM_CLOCK
) -> Ended:
    """A new role and department for the user; their sessions end, so every page asks again as the new role."""
    target = f"user/{login_id}"
    with _change(hub, actor, Action.ADMIN_USERS, target, clock) as session:
        user = _user(session, login_id)
        dept = session.scalar(select(Department).where(Department.name == department.strip()))
        if dept is None:
            raise RenkeiError(f"部署 {department} は登録されていません", f"no department {department!r}")
        before = {"role": str(user.role), "department": user.department.name}
        user.role, user.department_id = role, dept.id
        ended = SessionStore(session_factory(hub.engine)).end_all_for_user_in(session, user.id)
        _record(
            hub, session, actor, AuditAction.ADMIN_USER_CHANGE, f"user/{user.login_id}",
            before=before, after={"role": str(role), "department": dept.name}, sessions_ended=ended,
        )  # fmt: skip
        return Ended(user.login_id, ended)


def enable_user(hub: Hub, actor: Actor, login_id: str, *, clock: Clock = SYSTEM_CLOCK) -> Ended:
    """A disabled user may log in again (with their password and factor as they were)."""
    with _change(hub, actor, Action.ADMIN_USERS, f"user/{login_id}", clock) as session:
        user = _user(session, login_id)
        user.disabled = False
        session.flush()
        _record(hub, session, actor, AuditAction.ADMIN_USER_ENABLE, f"user/{user.login_id}")
        return Ended(user.login_id, 0)


# --- what exists: the lists the CLI and the admin pages show -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    name: str
    users: int
    stewards: int  # active stewards: without one, the department's parts of applications wait forever


@dataclass(frozen=True, slots=True)
class UserRow:
    login_id: str
    display_name: str
    role: Role
    department: str
    cards: int  # active staff cards
    totp: bool
    disabled: bool
    created_at: dt.datetime
    designated_by: str

    @property
    def factor(self) -> str:
        """card | totp | none"""
        return "card" if self.cards else "totp" if self.totp else "none"


@dataclass(frozen=True, slots=True)
class TerminalRow:
    name: str
    serial: str
    fingerprint_sha256: str
    enrolled_at: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    enrolled_by: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class CardRow:
    card_id: int
    login_id: str
    aaguid: str
    registered_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_reason: str


@dataclass(frozen=True, slots=True)
class SenderRow:
    name: str
    key_fingerprint: str  # SHA-256 of the Ed25519 public key, first 16 hex digits
    registered_at: dt.datetime
    snapshots: int
    last_import: dt.datetime | None


@dataclass(frozen=True, slots=True)
class KeyStatus:
    kek_id: str  # the vault's key-encryption key in force (its public name, never the key)
    kek_source: str  # file | environment | kms
    rotation_pending: bool  # a rotation is running, or was interrupted (run `renkei vault rotate-key` again)
    last_rotation: dt.datetime | None
    last_rotation_result: str
    audit_key_id: str  # the audit log's checkpoint signing key
    terminal_ca_not_after: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ImportRow:
    dataset: str
    period: dt.date
    version: int
    rows: int
    sender: str
    imported_at: dt.datetime


@dataclass(frozen=True, slots=True)
class HubStatus:
    database: str  # dialect and host, never the URL (it may hold a password)
    database_ok: bool
    snapshots: int
    vault_bytes: int
    audit_ok: bool
    audit_size: int
    audit_covered: int
    audit_message_ja: str
    audit_message_en: str
    last_checkpoint: dt.datetime | None
    last_imports: list[ImportRow]
    # Not None: entries from seq audit_full_size on were verified now, the earlier ones in full at audit_full_at
    audit_full_size: int | None = None
    audit_full_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyRow:
    name: str  # the setting's name, e.g. disclosure.threshold
    value: str
    help_ja: str
    help_en: str
    env: str  # the environment variable that overrides hub.toml


def _read(hub: Hub, actor: Actor, access: Action, what: str, clock: Clock) -> None:
    """Decide ``access`` on the list ``what`` (recorded, raising when denied)."""
    with hub.session() as db:
        require(db, hub, actor, access, Resource(ResourceType.SYSTEM.value, None, what), clock)


def list_departments(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[DepartmentRow]:
    _read(hub, actor, Action.ADMIN_USERS, "departments", clock)
    with hub.session() as session:
        users = dict(
            session.execute(select(User.department_id, func.count()).group_by(User.department_id)).all()
        )
        stewards = dict(
            session.execute(
                select(User.department_id, func.count())
                .where(User.role == Role.STEWARD, User.disabled.is_(False))
                .group_by(User.department_id)
            ).all()
        )
        return [
            DepartmentRow(d.name, users.get(d.id, 0), stewards.get(d.id, 0))
            for d in session.scalars(select(Department).order_by(Department.name))
        ]


def list_users(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[UserRow]:
    _read(hub, actor, Action.ADMIN_USERS, "users", clock)
    with hub.session() as session:
        cards_of = dict(
            session.execute(
                select(cards.CardCredential.user_id, func.count())
                .where(cards.CardCredential.revoked_at.is_(None))
                .group_by(cards.CardCredential.user_id)
            ).all()
        )
        with_totp = set(session.scalars(select(totp.TotpSecret.user_id)))  # one query, not one per user
        users = session.scalars(select(User).options(joinedload(User.department)).order_by(User.login_id))
        return [
            UserRow(
                u.login_id,
                u.display_name,
                u.role,
                u.department.name,
                cards_of.get(u.id, 0),
                u.id in with_totp,
                u.disabled,
                u.created_at,
                u.designated_by,
            )
            for u in users
        ]


def list_terminals(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[TerminalRow]:
    _read(hub, actor, Action.ADMIN_TERMINALS, "terminals", clock)
    with hub.session() as session:
        return [
            TerminalRow(
                t.name,
                t.serial,
                t.fingerprint_sha256,
                t.enrolled_at,
                t.not_after,
                t.revoked_at,
                t.enrolled_by,
            )
            for t in session.scalars(select(Terminal).order_by(Terminal.name, Terminal.id))
        ]


def list_cards(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[CardRow]:
    _read(hub, actor, Action.ADMIN_TERMINALS, "cards", clock)
    with hub.session() as session:
        query = (
            select(cards.CardCredential, User.login_id)
            .join(User, User.id == cards.CardCredential.user_id)
            .order_by(User.login_id, cards.CardCredential.id)
        )
        return [
            CardRow(c.id, login_id, c.aaguid, c.registered_at, c.last_used_at, c.revoked_at, c.revoked_reason)
            for c, login_id in session.execute(query).all()
        ]


def list_senders(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[SenderRow]:
    _read(hub, actor, Action.ADMIN_CATALOG, "senders", clock)
    with hub.session() as session:
        stats = {
            sender_id: (count, last)
            for sender_id, count, last in session.execute(
                select(Snapshot.sender_id, func.count(), func.max(Snapshot.imported_at)).group_by(
                    Snapshot.sender_id
                )
            ).all()
        }
        rows = []
        for s in session.scalars(select(Sender).order_by(Sender.name)):
            count, last = stats.get(s.id, (0, None))
            digest = hashlib.sha256(s.public_key.encode("ascii")).hexdigest()[:16]
            rows.append(SenderRow(s.name, digest, s.registered_at, count, _utc(last)))
        return rows


def key_status(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> KeyStatus:
    """The keys in force and the state of their rotation (names and dates only, never a key)."""
    from renkei.hub.audit import key_id, load_audit_key  # noqa: PLC0415
    from renkei.hub.rotation import rotation_pending  # noqa: PLC0415

    _read(hub, actor, Action.ADMIN_CATALOG, "keys", clock)
    kek = hub.kek
    source = "kms" if hub.settings.keys.kms else "environment" if os.environ.get("RENKEI_KEK") else "file"
    with hub.session() as session:
        last = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == AuditAction.VAULT_ROTATE_KEY)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).first()
    try:
        ca_not_after: dt.datetime | None = load_ca_certificate(hub.home).not_valid_after_utc
    except RenkeiError:
        ca_not_after = None
    return KeyStatus(
        kek_id=kek.key_id,
        kek_source=source,
        rotation_pending=rotation_pending(hub.home),
        last_rotation=last.at if last is not None else None,
        last_rotation_result=last.result if last is not None else "",
        audit_key_id=key_id(load_audit_key(hub.home).public_key()),
        terminal_ca_not_after=ca_not_after,
    )


def hub_status(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> HubStatus:
    """The database, the vault, the audit log's verification and the last imports."""
    _read(hub, actor, Action.ADMIN_CATALOG, "status", clock)
    url = hub.engine.url
    database = f"{url.get_backend_name()}" + (f" ({url.host})" if url.host else "")
    with hub.session() as session:
        session.execute(select(1))
        snapshots, vault_bytes = session.execute(
            select(func.count(), func.coalesce(func.sum(Snapshot.bytes), 0)).select_from(Snapshot)
        ).one()
        last_checkpoint = session.scalar(select(func.max(AuditCheckpointRow.at)))
        imports = [
            ImportRow(name, snap.period, snap.version, snap.rows, sender, snap.imported_at)
            for snap, name, sender in session.execute(
                select(Snapshot, Dataset.name, Sender.name)
                .join(Dataset, Dataset.id == Snapshot.dataset_id)
                .join(Sender, Sender.id == Snapshot.sender_id)
                .order_by(Snapshot.imported_at.desc(), Snapshot.id.desc())
                .limit(10)
            ).all()
        ]
    report = hub.audit.verify_recent()  # the entries since the last full verification (at most 10 min old)
    return HubStatus(
        database=database, database_ok=True, snapshots=int(snapshots), vault_bytes=int(vault_bytes),
        audit_ok=report.ok, audit_size=report.size, audit_covered=report.covered,
        audit_message_ja=report.message_ja, audit_message_en=report.message_en,
        last_checkpoint=_utc(last_checkpoint), last_imports=imports,
        audit_full_size=report.full_size, audit_full_at=report.full_at,
    )  # fmt: skip


def policy_in_force(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[PolicyRow]:
    """The hub-wide disclosure settings in force (``hub.settings.disclosure``), each with its help and the
    variable that overrides it; they are changed in ``<home>/hub.toml`` ([disclosure]) and take effect at the
    next start (per dataset: ``<home>/disclosure.toml``)."""
    from renkei.hub.settings import SETTINGS  # noqa: PLC0415

    _read(hub, actor, Action.ADMIN_CATALOG, "policy", clock)
    rows = []
    for setting in SETTINGS:
        if not setting.name.startswith("disclosure."):
            continue
        value: object = hub.settings
        for part in setting.name.split("."):
            value = getattr(value, part)
        rows.append(PolicyRow(setting.name, str(value), setting.help_ja, setting.help_en, setting.env))
    return rows


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite's aggregates lose the time zone: the hub stores UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
