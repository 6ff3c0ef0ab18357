"""Login (ログイン): registered terminal + login id and password + staff card (or TOTP) → a session.

Step 1, :meth:`LoginService.begin_login`: the request must come from a registered terminal (its client
certificate, see :mod:`renkei.hub.access.terminals`); the password is checked under the throttle. Unknown
login ids, disabled users and wrong passwords get the same answer after the same work (a verification against
a dummy hash), so the answer reveals nothing about which ids exist (ASVS v5.0.0-6.3.8). On success the user
gets a *pending login*: a short-lived, single-use token that allows exactly one second step, of the kind the
user has (card if a card is registered, else TOTP).

Step 2, :meth:`LoginService.finish_login_with_card` or :meth:`LoginService.finish_login_with_totp`: the
pending login is consumed whatever the outcome; on success a session is created (rotating away the token the
browser held before) and the throttle is reset.

Every attempt, each step, success or not, is appended to the audit log in the same transaction as its effect
(actor: the login id, or ``unknown`` when no such user exists, so that a password typed into the id field
never reaches the log; terminal; client address; result; reason). Passwords, codes, tickets and tokens are
never logged.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access import cards, totp
from renkei.hub.access.cards import CardCredential, CardError, CardSettings, RegistrationStart
from renkei.hub.access.passwords import (
    PasswordRecord,
    Passwords,
    WeakPasswordError,
    check_new_password,
    check_not_reused,
    recent_hashes,
    store_hash,
)
from renkei.hub.access.people import User
from renkei.hub.access.sessions import LoginSession, SessionRecord, SessionStore, write_transaction
from renkei.hub.access.terminals import Terminal
from renkei.hub.access.throttle import Throttle
from renkei.hub.audit import AuditLog, UTCDateTime
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import Base, session_factory
from renkei.hub.keys import KeyEncryptionKey, bound_kek
from renkei.hub.settings import DEFAULTS, SessionSettings

PENDING_LIFETIME = dt.timedelta(minutes=5)  # between the password and the card/code
UNKNOWN_ACTOR = "unknown"


class Factor(enum.StrEnum):
    """The possession factor a user has: a staff card, or TOTP where the terminal has no card reader."""

    CARD = "card"
    TOTP = "totp"


# --- errors the web layer shows -----------------------------------------------------------------------------


class LoginError(RenkeiError):
    """A refused login step. The message is for the user; the reason is only in the audit log."""


class LoginFailedError(LoginError):
    def __init__(
        self, ja: str = "利用者IDまたはパスワードが正しくありません", en: str = "wrong login id or password"
    ) -> None:
        super().__init__(ja, en)


class SecondFactorError(LoginError):
    def __init__(
        self,
        ja: str = "職員証（または確認コード）を確認できませんでした。最初からやり直してください",
        en: str = "the staff card (or code) could not be verified; please start again",
    ) -> None:
        super().__init__(ja, en)


class TotpCodeUsedError(SecondFactorError):
    """The code was right but already used (RFC 6238 §5.2: each code once): the next one will do."""

    def __init__(self) -> None:
        super().__init__(
            "この確認コードは使用済みです。認証アプリに次のコードが表示されるまで待ってから、もう一度ログインしてください",
            "This code has already been used. Wait for your authenticator app to show the next code, then log in again",
        )


class LoginThrottledError(LoginError):
    def __init__(self, retry_after: dt.timedelta) -> None:
        self.retry_after = retry_after
        seconds = max(1, int(retry_after.total_seconds() + 0.999))
        super().__init__(
            f"ログインの失敗が続いたため、{seconds} 秒後まで受け付けません",
            f"too many failed logins; try again in {seconds} s",
        )


class TerminalNotRegisteredError(LoginError):
    def __init__(self) -> None:
        super().__init__(
            "この端末は登録されていません。登録された専用端末からログインしてください",
            "this terminal is not registered; log in from a registered terminal",
        )


class NoSecondFactorError(LoginError):
    def __init__(self) -> None:
        super().__init__(
            "職員証も確認コード（TOTP）も登録されていません。基盤管理者（政策調査課）に連絡してください",
            "no staff card or TOTP is registered for you; contact the platform admin",
        )


class EnrollmentError(LoginError):
    def __init__(self, ja: str, en: str) -> None:
        super().__init__(ja, en)


# --- pending logins -----------------------------------------------------------------------------------------


class PendingLoginRecord(Base):
    """A login whose password step succeeded, waiting for its second step (single use, short-lived)."""

    __tablename__ = "pending_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"))
    throttle_id: Mapped[str] = mapped_column(String(256))  # the login id as typed (canonical): throttle key
    client_addr: Mapped[str] = mapped_column(String(64))
    factor: Mapped[str] = mapped_column(String(8))
    challenge: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # WebAuthn, for a card
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What step 1 gives the web layer: the token (keep it server-side or in a cookie) and what to ask for."""

    token: str = field(repr=False)
    login_id: str
    factor: Factor
    card_options_json: str | None  # PublicKeyCredentialRequestOptions for navigator.credentials.get()
    expires_at: dt.datetime


def canonical_login_id(typed: str) -> str:
    """Login ids compare after NFKC and case folding, so ``ＹＡＭＡＤＡ`` and ``yamada`` are the same id."""
    return unicodedata.normalize("NFKC", typed).strip().casefold()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass
class _Attempt:
    """One login step in progress, and what the audit log will say about it."""

    action: AuditAction
    throttle_id: str  # the canonical login id as typed: the throttle's account key
    terminal: Terminal | None
    client_addr: str
    user: User | None = None
    failure: str = ""

    @property
    def actor(self) -> str:
        return self.user.login_id if self.user is not None else UNKNOWN_ACTOR

    @property
    def resource(self) -> str:
        return f"user/{self.user.login_id}" if self.user is not None else ""

    @property
    def terminal_name(self) -> str:
        return self.terminal.name if self.terminal is not None else ""


# A second-step check: returns the failure reason ("" on success) and details for the audit entry.
SecondStepCheck = Callable[[Session, PendingLoginRecord], tuple[str, dict[str, Any]]]


class LoginService:
    """The login steps, card enrollment, logout and password change, each audited."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        *,
        passwords: Passwords | None = None,
        card_settings: CardSettings | None = None,
        throttle: Throttle | None = None,
        kek: KeyEncryptionKey | None = None,
        clock: Clock = SYSTEM_CLOCK,
        timeouts: SessionSettings = DEFAULTS.sessions,
    ) -> None:
        """``kek`` opens the TOTP secrets; without it, the KEK of the hub whose engine this is (``bind_kek``).
        ``timeouts``: the hub's settings ``sessions.*``."""
        self._engine = engine
        self._kek = kek
        self._factory = session_factory(engine)
        self.audit = audit
        self.passwords = passwords or Passwords()
        self.card_settings = card_settings or CardSettings.from_settings()
        self.clock = clock
        self.throttle = throttle or Throttle(clock)
        self.sessions = SessionStore(self._factory, clock, timeouts)

    @property
    def transactions(self) -> sessionmaker[Session]:
        """The session factory of the login's tables (for the step-up of :mod:`renkei.hub.access.step_up`)."""
        return self._factory

    @property
    def kek(self) -> KeyEncryptionKey:
        if self._kek is None:
            self._kek = bound_kek(self._engine)
        return self._kek

    # -- step 1

    def begin_login(
        self, terminal: Terminal | None, login_id: str, password: str, client_addr: str
    ) -> PendingLogin:
        """Check terminal and password; on success return the pending login for the second step."""
        attempt = self._check_password(AuditAction.LOGIN_PASSWORD, terminal, login_id, password, client_addr)
        with write_transaction(self._factory) as session:
            user = self._user_after_password(session, attempt, password)
            factor = self._factor(session, user.id) if user is not None else None
            if user is not None and factor is not None:
                pending = self._create_pending(session, attempt, user, factor)
                self._audit_in(session, attempt, "ok", details={"factor": str(factor)})
                return pending
            if user is not None:
                self._audit_in(session, attempt, "denied", "no_second_factor")
        raise LoginFailedError() if user is None else NoSecondFactorError()

    # -- step 2

    def finish_login_with_card(
        self,
        pending: PendingLogin | str,
        assertion: str | dict[str, Any],
        *,
        terminal: Terminal | None,
        replaces: str | None = None,
    ) -> LoginSession:
        """Verify the staff card's assertion and open a session (``replaces``: the token held before login)."""

        def check(session: Session, record: PendingLoginRecord) -> tuple[str, dict[str, Any]]:
            if record.challenge is None:
                return "no_challenge", {}
            try:
                card = cards.verify_assertion(
                    session,
                    record.user_id,
                    record.challenge,
                    assertion,
                    settings=self.card_settings,
                    clock=self.clock,
                )
            except CardError as exc:
                return exc.reason, {}
            return "", {"credential_id": card.credential_id}

        return self._second_step(AuditAction.LOGIN_CARD, Factor.CARD, pending, terminal, replaces, check)

    def finish_login_with_totp(
        self,
        pending: PendingLogin | str,
        code: str,
        *,
        terminal: Terminal | None,
        replaces: str | None = None,
    ) -> LoginSession:
        """Verify the TOTP code (each code once) and open a session."""

        def check(session: Session, record: PendingLoginRecord) -> tuple[str, dict[str, Any]]:
            try:
                accepted = totp.verify_totp(session, record.user_id, code, kek=self.kek, clock=self.clock)
            except totp.TotpSecretError:
                return "totp_secret_unreadable", {}  # refused and audited, like any failed second step
            if accepted:
                return "", {}
            used = totp.was_used(session, record.user_id, code, kek=self.kek, clock=self.clock)
            return ("totp_reused" if used else "totp_invalid"), {}

        return self._second_step(AuditAction.LOGIN_TOTP, Factor.TOTP, pending, terminal, replaces, check)

    # -- card enrollment

    def begin_card_enrollment(
        self, terminal: Terminal | None, login_id: str, password: str, ticket: str, client_addr: str
    ) -> RegistrationStart:
        """Password and the admin's ticket → the options for registering a staff card at this terminal."""
        attempt = self._check_password(
            AuditAction.CARD_REGISTER_BEGIN, terminal, login_id, password, client_addr
        )
        assert terminal is not None  # _check_password refuses a missing terminal
        with write_transaction(self._factory) as session:
            user = self._user_after_password(session, attempt, password)
            found = (
                cards.find_ticket(session, user.id, ticket, clock=self.clock) if user is not None else None
            )
            if user is not None and found is not None:
                start = cards.start_registration(
                    session,
                    user,
                    found,
                    terminal_id=terminal.id,
                    settings=self.card_settings,
                    clock=self.clock,
                )
                # Password and a valid ticket prove as much as a login does: the attempt is taken back.
                self.throttle.succeeded(session, attempt.throttle_id, client_addr)
                self._audit_in(session, attempt, "ok", details={"ticket_id": found.id})
                return start
            if user is not None:
                self._audit_in(session, attempt, "denied", "ticket_invalid")
        raise LoginFailedError() if user is None else _ticket_refused()

    def finish_card_enrollment(
        self, handle: str, response: str | dict[str, Any], *, terminal: Terminal | None, client_addr: str
    ) -> CardCredential:
        """Verify the new card's registration, consume the ticket, store the card (and drop any TOTP secret)."""
        refusal: LoginError
        with write_transaction(self._factory) as session:
            enrollment = cards.take_enrollment(session, handle, clock=self.clock)
            user = session.get(User, enrollment.user_id) if enrollment is not None else None
            attempt = _Attempt(AuditAction.CARD_REGISTER, "", terminal, client_addr, user=user)
            reason = _enrollment_problem(enrollment, user, terminal)
            if not reason and enrollment is not None:
                try:
                    card = cards.finish_registration(
                        session, enrollment, response, settings=self.card_settings, clock=self.clock
                    )
                except CardError as exc:
                    reason, refusal = exc.reason, EnrollmentError(exc.ja, exc.en)
                else:
                    totp_removed = totp.remove_totp(session, enrollment.user_id)
                    details = {"credential_id": card.credential_id, "ticket_id": enrollment.ticket_id}
                    self._audit_in(session, attempt, "ok", details={**details, "totp_removed": totp_removed})
                    return card
            else:
                refusal = TerminalNotRegisteredError() if reason == "terminal_mismatch" else _ticket_refused()
            self._audit_in(session, attempt, "denied", reason)
        raise refusal

    # -- after login

    def logout(self, token: str, *, terminal: Terminal | None = None, client_addr: str = "") -> bool:
        """End the session server-side (ASVS 7.4.1); True if there was one."""
        with write_transaction(self._factory) as session:
            record = self.sessions.logout_in(session, token)
            if record is None:
                return False
            attempt = _Attempt(
                AuditAction.LOGOUT, "", terminal, client_addr, user=session.get(User, record.user_id)
            )
            self._audit_in(session, attempt, "ok", details={"session_id": record.id})
        return True

    def change_password(
        self,
        token: str,
        current_password: str,
        new_password: str,
        *,
        terminal: Terminal | None,
        client_addr: str,
    ) -> LoginSession:
        """The user replaces their password (required after an admin set it); their other sessions end.

        The new password must not be the current one or one of the last few: otherwise a forced change could
        keep the admin's one-time password.
        """
        current = self.sessions.validate(token, terminal=terminal)
        attempt = self._check_password(
            AuditAction.PASSWORD_CHANGE, terminal, current.login_id, current_password, client_addr
        )
        reuse = self._reuse_problem(attempt, new_password)
        refusal: RenkeiError | None = None
        with write_transaction(self._factory) as session:
            user = self._user_after_password(session, attempt, current_password)
            if user is None:
                refusal = LoginFailedError(
                    "現在のパスワードが正しくありません", "the current password is wrong"
                )
            else:
                self.throttle.succeeded(session, attempt.throttle_id, client_addr)
                refusal = self._store_new_password(session, attempt, user, new_password, current.id, reuse)
        if refusal is not None:
            raise refusal
        return self.sessions.validate(token, terminal=terminal)

    # -- the password step

    def _check_password(
        self,
        action: AuditAction,
        terminal: Terminal | None,
        typed_login_id: str,
        password: str,
        client_addr: str,
    ) -> _Attempt:
        """Terminal, throttle, then the password: the attempt, with ``failure`` set unless all passed."""
        attempt = _Attempt(action, canonical_login_id(typed_login_id), terminal, client_addr)
        if terminal is None or not terminal.active:
            # A revoked terminal is named: whoever investigates wants to know which one was still in use.
            self.audit.append(
                actor=UNKNOWN_ACTOR,
                action=action,
                result="denied",
                reason="unregistered_terminal" if terminal is None else "terminal_revoked",
                terminal=attempt.terminal_name,
                client_addr=client_addr,
            )
            raise TerminalNotRegisteredError()
        with write_transaction(self._factory) as session:
            attempt.user, encoded = self._stored_password(session, attempt.throttle_id)
            wait = self.throttle.wait(session, attempt.throttle_id, client_addr)
            if wait > dt.timedelta(0):
                details = {"retry_after_seconds": int(wait.total_seconds())}
                self._audit_in(session, attempt, "denied", "throttled", details)
            else:
                self.throttle.count_attempt(session, attempt.throttle_id, client_addr)
        if wait > dt.timedelta(0):
            raise LoginThrottledError(wait)
        attempt.failure = self._verify(attempt.user, encoded, password)
        return attempt

    def _stored_password(self, session: Session, login_id: str) -> tuple[User | None, str]:
        row = session.execute(
            select(User, PasswordRecord.encoded_hash)
            .outerjoin(PasswordRecord, PasswordRecord.user_id == User.id)
            .where(func.lower(User.login_id) == login_id)
        ).one_or_none()
        if row is None:
            return None, ""
        return row[0], row[1] or ""

    def _verify(self, user: User | None, encoded: str, password: str) -> str:
        """The slow part, outside any transaction, with exactly one argon2 verification on every path."""
        if user is None or not encoded:
            self.passwords.dummy_verify(password)
            return "unknown_user" if user is None else "no_password"
        if not self.passwords.verify(encoded, password):
            return "bad_password"
        return "user_disabled" if user.disabled else ""

    def _user_after_password(self, session: Session, attempt: _Attempt, password: str) -> User | None:
        """The user if the password step passed (upgrading an old-parameter hash); else audit the failure."""
        user = session.get(User, attempt.user.id) if attempt.user is not None else None
        if user is not None and user.disabled:  # disabled while the password was being checked
            attempt.failure = attempt.failure or "user_disabled"
        if attempt.failure or user is None:
            self._audit_in(session, attempt, "denied", attempt.failure or "unknown_user")
            return None
        record = session.get(PasswordRecord, user.id)
        if record is not None and self.passwords.needs_rehash(record.encoded_hash):
            record.encoded_hash = self.passwords.hash(password)
        return user

    def _reuse_problem(self, attempt: _Attempt, new_password: str) -> WeakPasswordError | None:
        """Whether the new password is the current or a recent one (the slow part, outside a transaction)."""
        if attempt.failure or attempt.user is None:
            return None
        with self._factory() as session:
            hashes = recent_hashes(session, attempt.user.id)
        try:
            check_not_reused(self.passwords, new_password, hashes)
        except WeakPasswordError as exc:
            return exc
        return None

    def _store_new_password(
        self,
        session: Session,
        attempt: _Attempt,
        user: User,
        new_password: str,
        keep_session_id: int,
        reuse: WeakPasswordError | None,
    ) -> RenkeiError | None:
        try:
            check_new_password(new_password, login_id=user.login_id, display_name=user.display_name)
            if reuse is not None:
                raise reuse
        except WeakPasswordError as exc:
            self._audit_in(session, attempt, "denied", f"weak_password:{exc.reason}")
            return exc
        encoded = self.passwords.hash(new_password)
        store_hash(session, user, encoded, changed_by=user.login_id, must_change=False, clock=self.clock)
        ended = self.sessions.end_all_for_user_in(session, user.id, keep_session_id=keep_session_id)
        current = session.get(SessionRecord, keep_session_id)
        if current is not None:
            current.password_change_required = False
        self._audit_in(session, attempt, "ok", details={"other_sessions_ended": ended})
        return None

    # -- pending logins and the second step

    def _factor(self, session: Session, user_id: int) -> Factor | None:
        """The card if the user has one, else TOTP if enrolled (a user has one kind; see totp.py)."""
        if cards.active_cards(session, user_id):
            return Factor.CARD
        if totp.has_totp(session, user_id):
            return Factor.TOTP
        return None

    def _create_pending(
        self, session: Session, attempt: _Attempt, user: User, factor: Factor
    ) -> PendingLogin:
        assert attempt.terminal is not None
        challenge, options_json = None, None
        if factor is Factor.CARD:
            challenge, options_json = cards.authentication_options(
                cards.active_cards(session, user.id), self.card_settings
            )
        token = secrets.token_urlsafe(32)
        expires_at = self.clock.now() + PENDING_LIFETIME
        session.add(
            PendingLoginRecord(
                token_sha256=_digest(token),
                user_id=user.id,
                terminal_id=attempt.terminal.id,
                throttle_id=attempt.throttle_id,
                client_addr=attempt.client_addr,
                factor=str(factor),
                challenge=challenge,
                created_at=self.clock.now(),
                expires_at=expires_at,
            )
        )
        session.flush()
        return PendingLogin(token, user.login_id, factor, options_json, expires_at)

    def _second_step(
        self,
        action: AuditAction,
        factor: Factor,
        pending: PendingLogin | str,
        terminal: Terminal | None,
        replaces: str | None,
        check: SecondStepCheck,
    ) -> LoginSession:
        token = pending.token if isinstance(pending, PendingLogin) else pending
        with write_transaction(self._factory) as session:
            record = self._take_pending(session, token)
            user = session.get(User, record.user_id) if record is not None else None
            attempt = _Attempt(action, "", terminal, "", user=user)
            if record is not None:
                attempt.throttle_id, attempt.client_addr = record.throttle_id, record.client_addr
            reason = _pending_problem(record, user, terminal, factor, self.clock.now())
            details: dict[str, Any] = {}
            if not reason and record is not None:
                reason, details = check(session, record)
            if not reason and user is not None and terminal is not None:
                return self._open_session(session, attempt, user, terminal, replaces, details)
            self._audit_in(session, attempt, "denied", reason or "pending_unknown", details)
        raise TotpCodeUsedError() if reason == "totp_reused" else SecondFactorError()

    def _take_pending(self, session: Session, token: str) -> PendingLoginRecord | None:
        record = session.scalar(
            select(PendingLoginRecord).where(PendingLoginRecord.token_sha256 == _digest(token))
        )
        if record is not None:
            session.delete(record)  # single use, whatever happens next
            session.flush()
        return record

    def _open_session(
        self,
        session: Session,
        attempt: _Attempt,
        user: User,
        terminal: Terminal,
        replaces: str | None,
        details: dict[str, Any],
    ) -> LoginSession:
        self.throttle.succeeded(session, attempt.throttle_id, attempt.client_addr)
        password = session.get(PasswordRecord, user.id)
        login_session = self.sessions.create_in(
            session,
            user=user,
            terminal=terminal,
            client_addr=attempt.client_addr,
            replaces=replaces,
            password_change_required=bool(password and password.must_change),
        )
        self._audit_in(session, attempt, "ok", details={**details, "session_id": login_session.id})
        return login_session

    # -- audit

    def _audit_in(
        self,
        session: Session,
        attempt: _Attempt,
        result: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.audit.append_in(
            session,
            actor=attempt.actor,
            action=attempt.action,
            resource=attempt.resource,
            result=result,
            reason=reason,
            terminal=attempt.terminal_name,
            client_addr=attempt.client_addr,
            details=details,
        )


def _ticket_refused() -> EnrollmentError:
    return EnrollmentError(
        "登録チケットが無効です（誤り・使用済み・期限切れ）。基盤管理者に再発行を依頼してください",
        "the enrollment ticket is wrong, used or expired; ask the platform admin for a new one",
    )


def _enrollment_problem(
    enrollment: cards.CardEnrollment | None, user: User | None, terminal: Terminal | None
) -> str:
    if enrollment is None or user is None:
        return "enrollment_expired"
    if terminal is None or terminal.id != enrollment.terminal_id or not terminal.active:
        return "terminal_mismatch"
    if user.disabled:
        return "user_disabled"
    return ""


def _pending_problem(
    record: PendingLoginRecord | None,
    user: User | None,
    terminal: Terminal | None,
    factor: Factor,
    now: dt.datetime,
) -> str:
    if record is None or user is None:
        return "pending_unknown"
    if record.expires_at <= now:
        return "pending_expired"
    if terminal is None or terminal.id != record.terminal_id or not terminal.active:
        return "terminal_mismatch"
    if record.factor != factor:
        return "wrong_factor"
    if user.disabled:
        return "user_disabled"
    return ""
