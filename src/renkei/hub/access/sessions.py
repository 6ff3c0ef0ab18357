"""Login sessions: server-side, bound to one terminal, with idle and absolute timeouts.

- The token is ``secrets.token_urlsafe(32)`` (256 bits from the OS CSPRNG; ASVS v5.0.0-7.2.3 asks for 128,
  NIST for 64). The table stores only its SHA-256, so a copy of the database opens no session.
- A new token is issued at every login, and the token the browser held before (if any) is deleted: rotation
  (ASVS 7.2.4), so a token planted before login is worth nothing after it.
- :data:`IDLE_TIMEOUT` 30 min and :data:`ABSOLUTE_TIMEOUT` 12 h by default (the settings ``sessions.*``;
  ASVS 7.3.1, 7.3.2; the justification is in docs/login.md): NIST SP 800-63B asks for ≤ 1 h idle / ≤ 24 h overall at AAL2 and ≤ 15 min / ≤ 12 h at AAL3.
  We take AAL3's overall limit (one working day, then the card again) and halve AAL2's idle limit, because
  terminals stand in open offices and are shared, while analysts read results for long stretches.
- Every request is checked here (:meth:`SessionStore.validate`), not by cookie expiry: an expired, logged-out
  session, a disabled user or a revoked terminal is refused on the very next request (ASVS 7.4.1, 7.4.2,
  8.3.2), and a token presented from another terminal is refused and destroyed.
- Each session has a CSRF token (random, compared in constant time) for the web layer's forms (ASVS 3.5.1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.people import Role, User
from renkei.hub.access.terminals import Terminal
from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base, begin_write, write_turn
from renkei.hub.settings import DEFAULTS, SessionSettings

IDLE_TIMEOUT = DEFAULTS.sessions.idle
# A request restarts the session's idle clock (a write) only when the last restart is older than this; the
# requests in between only read. So a session may end up to this much before ``idle_timeout`` after its last
# request, never later. Every page view (and its favicon) wrote before, and SQLite has one writer at a time.
TOUCH_INTERVAL = dt.timedelta(seconds=30)
ABSOLUTE_TIMEOUT = DEFAULTS.sessions.absolute
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128  # anything longer is not one of ours; refused without a database lookup


class SessionRecord(Base):
    """One logged-in session. The token itself is never stored."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"), index=True)
    client_addr: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the absolute limit
    password_change_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last time the second factor was proved in this session: its login, then each step-up
    # (renkei.hub.access.step_up), and the WebAuthn challenge of a step-up with the card in progress.
    stepped_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)
    step_up_challenge: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A valid session as the web layer sees it: who, where, until when, and the CSRF token for its forms."""

    token: str = field(repr=False)
    id: int
    user_id: int
    login_id: str
    display_name: str
    role: Role
    department_id: int
    terminal_id: int
    terminal_name: str
    csrf_token: str = field(repr=False)
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    password_change_required: bool
    stepped_up_at: dt.datetime | None = None  # the last proof of the second factor (login or step-up)

    def csrf_ok(self, candidate: str | None) -> bool:
        """Whether a submitted CSRF token is this session's (constant time)."""
        if not candidate:
            return False
        return hmac.compare_digest(self.csrf_token.encode("utf-8"), candidate.encode("utf-8", "replace"))


class SessionRejectedError(RenkeiError):
    """The presented token does not open a session; ``reason`` says why (for the audit log, not the user).

    When the token named a real session (every reason but ``unknown``), ``login_id``, ``session_id`` and
    ``session_terminal`` say whose it was and where it was opened, for the audit entry.
    """

    def __init__(
        self, reason: str, *, login_id: str = "", session_id: int | None = None, session_terminal: str = ""
    ) -> None:
        self.reason = reason
        self.login_id = login_id
        self.session_id = session_id
        self.session_terminal = session_terminal
        super().__init__(
            "ログインが必要です（セッションが無効か期限切れです）",
            "please log in (the session is invalid or has expired)",
        )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


_SESSION_ROW = (
    select(SessionRecord, User, Terminal)
    .join(User, User.id == SessionRecord.user_id)
    .join(Terminal, Terminal.id == SessionRecord.terminal_id)
)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session's row with its user and the terminal it is bound to, as read at the start of one request."""

    record: SessionRecord
    user: User
    terminal: Terminal


class _NotRead:
    """:meth:`SessionStore.validate` was not handed a row: it reads its own."""


NOT_READ = _NotRead()


@contextmanager
def write_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its start (SQLite: BEGIN IMMEDIATE).

    Login steps read, then write; on SQLite a deferred transaction that does so can fail with "database is
    locked" when another process wrote in between. Taking the lock first makes them wait their turn instead.
    Commits when the block ends normally, rolls back on an exception.
    """
    with write_turn(factory.kw["bind"]), factory() as session:
        begin_write(session)
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


class SessionStore:
    """Create, check and end login sessions."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock = SYSTEM_CLOCK,
        timeouts: SessionSettings = DEFAULTS.sessions,
    ) -> None:
        self._factory = factory
        self.clock = clock
        self.idle_timeout, self.absolute_timeout = timeouts.idle, timeouts.absolute

    def create_in(
        self,
        session: Session,
        *,
        user: User,
        terminal: Terminal,
        client_addr: str,
        replaces: str | None = None,
        password_change_required: bool = False,
    ) -> LoginSession:
        """A new session in ``session``'s transaction; the token in ``replaces`` (if any) stops working."""
        if replaces:
            session.execute(delete(SessionRecord).where(SessionRecord.token_sha256 == token_digest(replaces)))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock.now()
        record = SessionRecord(
            token_sha256=token_digest(token),
            user_id=user.id,
            terminal_id=terminal.id,
            client_addr=client_addr,
            csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.absolute_timeout,
            password_change_required=password_change_required,
            stepped_up_at=now,  # a login proves the second factor: it counts as the first step-up
        )
        session.add(record)
        session.flush()
        return _view(token, record, user, terminal)

    def read_in(self, session: Session, token: str) -> SessionRow | None:
        """The row of the session ``token`` opens, its user and its terminal, read in ``session`` (one statement);
        None when there is none. Nothing is decided here: hand the row to :meth:`validate` in the same request.

        The portal reads it in the same transaction as the terminal the request's certificate names
        (:func:`renkei.hub.access.terminals.registered_terminal` with ``candidate``): on nearly every request
        that is the session's own terminal, so one statement serves both checks.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        found = session.execute(
            _SESSION_ROW.where(SessionRecord.token_sha256 == token_digest(token))
        ).one_or_none()
        return SessionRow(*found) if found is not None else None

    def validate(
        self, token: str, *, terminal: Terminal | None, read: SessionRow | _NotRead | None = NOT_READ
    ) -> LoginSession:
        """The session for ``token`` used from ``terminal``, its idle clock restarted; else :class:`SessionRejectedError`.

        ``read`` is the row :meth:`read_in` read for ``token`` in this very request (by default it is read here).
        It is only trusted to let the request through without a write; anything else (an idle clock to restart,
        a rejection, no row) is decided afresh in a write transaction. A rejected session is deleted, so it
        cannot come back (e.g. when a user is enabled again).
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise SessionRejectedError("unknown")
        digest = token_digest(token)
        now = self.clock.now()
        if isinstance(read, _NotRead):
            with self._factory() as session:  # a read: most requests need no write (see TOUCH_INTERVAL)
                read = self.read_in(session, token)
        if read is not None:
            record, user, bound = read.record, read.user, read.terminal
            recent = record.last_seen_at > now - min(TOUCH_INTERVAL, self.idle_timeout)
            if recent and not _rejection(record, user, bound, terminal, touched=True, now=now):
                return _view(token, record, user, bound)
        with write_transaction(self._factory) as session:
            # The write comes first: it restarts the idle clock only of a session that has not timed out.
            touched = session.execute(
                update(SessionRecord)
                .where(
                    SessionRecord.token_sha256 == digest,
                    SessionRecord.last_seen_at > now - self.idle_timeout,
                    SessionRecord.expires_at > now,
                )
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )
            found = session.execute(_SESSION_ROW.where(SessionRecord.token_sha256 == digest)).one_or_none()
            if found is None:
                raise SessionRejectedError("unknown")
            record, user, bound = found
            reason = _rejection(record, user, bound, terminal, touched=_rowcount(touched) == 1, now=now)
            if reason:
                rejected = SessionRejectedError(
                    reason, login_id=user.login_id, session_id=record.id, session_terminal=bound.name
                )
                session.delete(record)  # committed below: a rejected session never comes back
        if reason:
            raise rejected
        return _view(token, record, user, bound)

    def logout_in(self, session: Session, token: str) -> SessionRecord | None:
        """Delete the session for ``token``; returns what was deleted (None: no such session)."""
        record = session.scalar(
            select(SessionRecord).where(SessionRecord.token_sha256 == token_digest(token))
        )
        if record is not None:
            session.delete(record)
            session.flush()
        return record

    def logout(self, token: str) -> bool:
        with write_transaction(self._factory) as session:
            return self.logout_in(session, token) is not None

    def end_all_for_user_in(
        self, session: Session, user_id: int, *, keep_session_id: int | None = None
    ) -> int:
        """End every session of the user (disabled user, new password), optionally keeping the current one."""
        statement = delete(SessionRecord).where(SessionRecord.user_id == user_id)
        if keep_session_id is not None:
            statement = statement.where(SessionRecord.id != keep_session_id)
        return _rowcount(session.execute(statement))

    def end_all_for_user(self, user: User | int) -> int:
        user_id = user if isinstance(user, int) else user.id
        with write_transaction(self._factory) as session:
            return self.end_all_for_user_in(session, user_id)

    def end_all_for_terminal_in(self, session: Session, terminal_id: int) -> int:
        return _rowcount(
            session.execute(delete(SessionRecord).where(SessionRecord.terminal_id == terminal_id))
        )

    def count_for_user(self, user_id: int) -> int:
        with self._factory() as session:
            return len(
                session.scalars(select(SessionRecord.id).where(SessionRecord.user_id == user_id)).all()
            )


def _rejection(
    record: SessionRecord,
    user: User,
    bound: Terminal,
    terminal: Terminal | None,
    *,
    touched: bool,
    now: dt.datetime,
) -> str:
    """Why this session may not be used now ("" when it may)."""
    if record.expires_at <= now:
        return "absolute_timeout"
    if not touched:
        return "idle_timeout"
    if user.disabled:
        return "user_disabled"
    if bound.revoked_at is not None:
        return "terminal_revoked"
    if terminal is None or terminal.id != bound.id:
        return "terminal_mismatch"
    return ""


def _view(token: str, record: SessionRecord, user: User, terminal: Terminal) -> LoginSession:
    return LoginSession(
        token=token,
        id=record.id,
        user_id=user.id,
        login_id=user.login_id,
        display_name=user.display_name,
        role=user.role,
        department_id=user.department_id,
        terminal_id=terminal.id,
        terminal_name=terminal.name,
        csrf_token=record.csrf_token,
        created_at=record.created_at,
        last_seen_at=record.last_seen_at,
        expires_at=record.expires_at,
        password_change_required=record.password_change_required,
        stepped_up_at=record.stepped_up_at,
    )


def _rowcount(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
