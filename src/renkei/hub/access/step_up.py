"""Step-up (本人確認の再実施): the second factor proved again before an approval or an export.

The rule, in one place: a session may take a protected action (:data:`PROTECTED`: a steward's approval of an
application part or of a table in review, an analyst's export) only while its last proof of the second factor
is younger than the setting ``web.step_up_minutes`` (5 minutes by default). The login itself is such a proof
(``SessionRecord.stepped_up_at`` starts at the login); afterwards the user proves the factor they have again,
the staff card (WebAuthn, a fresh challenge kept on the session row) or the TOTP code (each code once), and
the session's ``stepped_up_at`` moves to now.

- :func:`require_step_up` is what the portal's guard calls for every protected route (its one choke point):
  it raises :class:`StepUpRequired` (403 ``step_up_required``) and records the refusal
  (``session.step_up_required``) when the proof is too old.
- :class:`StepUpService` verifies the factor: :meth:`~StepUpService.begin` (the card's options),
  :meth:`~StepUpService.with_card`, :meth:`~StepUpService.with_totp`. Each attempt is audited
  (``session.step_up``, ok or denied with the reason) and counts in the login throttle of the account and the
  address, so a stolen session cannot be used to guess codes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from renkei.errors import RenkeiError
from renkei.hub.access import cards, totp
from renkei.hub.access.authz import Action
from renkei.hub.access.cards import CardError
from renkei.hub.access.login import (
    Factor,
    LoginService,
    LoginThrottledError,
    NoSecondFactorError,
    SecondFactorError,
    canonical_login_id,
)
from renkei.hub.access.sessions import LoginSession, SessionRecord, write_transaction
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction

# The actions that need a fresh proof of the second factor (issue 10: "before an approval or an export").
PROTECTED = frozenset(
    {Action.APPLICATION_APPROVE, Action.RELEASE_REVIEW, Action.EXPORT, Action.OPENDATA_PUBLISH}
)  # publishing open data is an export to everyone


class StepUpRequired(RenkeiError):  # noqa: N818
    """The session's last proof of the second factor is too old for this action: prove it again first."""

    def __init__(self, next_path: str = "") -> None:
        self.next_path = next_path  # where the portal returns after the step-up (a local path)
        super().__init__(
            "この操作の前に、職員証または確認コードでもう一度本人確認をしてください",
            "Prove your staff card or code again before this action",
        )


class StepUpFailedError(SecondFactorError):
    """The card or the code of a step-up could not be verified (the session stays as it was)."""

    def __init__(
        self,
        ja: str = "職員証（または確認コード）を確認できませんでした。もう一度お試しください",
        en: str = "The staff card (or code) could not be verified; please try again",
    ) -> None:
        super().__init__(ja, en)


class StepUpCodeUsedError(StepUpFailedError):
    """The code was right but already used (at the login or an earlier step-up): the next one will do."""

    def __init__(self) -> None:
        super().__init__(
            "この確認コードは使用済みです。認証アプリに次のコードが表示されるまで待ってから入力してください",
            "This code has already been used. Wait for your authenticator app to show the next code, then enter it",
        )


def is_fresh(login: LoginSession, now: dt.datetime, window: dt.timedelta) -> bool:
    """Whether the session proved its second factor within ``window`` before ``now``."""
    proved = login.stepped_up_at
    return proved is not None and proved <= now < proved + window


def fresh_until(login: LoginSession, window: dt.timedelta) -> dt.datetime | None:
    return login.stepped_up_at + window if login.stepped_up_at is not None else None


def require_step_up(
    audit: AuditLog,
    login: LoginSession,
    *,
    now: dt.datetime,
    window: dt.timedelta,
    resource: str,
    client_addr: str,
    next_path: str = "",
) -> None:
    """Refuse (and record) a protected action of a session whose proof is older than ``window``."""
    if is_fresh(login, now, window):
        return
    audit.append(
        actor=login.login_id,
        action=AuditAction.SESSION_STEP_UP_REQUIRED,
        resource=resource,
        result="denied",
        reason="step_up_stale" if login.stepped_up_at is not None else "step_up_missing",
        terminal=login.terminal_name,
        client_addr=client_addr,
        details={"session_id": login.id},
    )
    raise StepUpRequired(next_path)


@dataclass(frozen=True, slots=True)
class StepUpStart:
    factor: Factor
    card_options_json: str | None  # PublicKeyCredentialRequestOptions for navigator.credentials.get()


# A factor check: the failure reason ("" on success) and details for the audit entry.
FactorCheck = Callable[[Session, SessionRecord], tuple[str, dict[str, Any]]]


class StepUpService:
    """Prove the second factor again within a session (uses the login service's keys, cards and throttle)."""

    def __init__(self, login: LoginService) -> None:
        self.login = login

    def factor_of(self, login: LoginSession) -> Factor | None:
        with self.login.transactions() as session:
            if cards.active_cards(session, login.user_id):
                return Factor.CARD
            return Factor.TOTP if totp.has_totp(session, login.user_id) else None

    def begin(self, login: LoginSession) -> StepUpStart:
        """The factor to prove; for the card a fresh challenge, kept on the session row until it is used."""
        factor = self.factor_of(login)
        if factor is None:
            raise NoSecondFactorError()
        if factor is Factor.TOTP:
            return StepUpStart(factor, None)
        with write_transaction(self.login.transactions) as session:
            record = session.get_one(SessionRecord, login.id)
            challenge, options = cards.authentication_options(
                cards.active_cards(session, login.user_id), self.login.card_settings
            )
            record.step_up_challenge = challenge
        return StepUpStart(factor, options)

    def with_card(
        self, login: LoginSession, assertion: str | dict[str, Any], *, client_addr: str
    ) -> dt.datetime:
        def check(session: Session, record: SessionRecord) -> tuple[str, dict[str, Any]]:
            challenge, record.step_up_challenge = record.step_up_challenge, None  # single use
            if challenge is None:
                return "no_challenge", {}
            try:
                card = cards.verify_assertion(
                    session,
                    login.user_id,
                    challenge,
                    assertion,
                    settings=self.login.card_settings,
                    clock=self.login.clock,
                )
            except CardError as exc:
                return exc.reason, {}
            return "", {"credential_id": card.credential_id}

        return self._prove(login, Factor.CARD, client_addr, check)

    def with_totp(self, login: LoginSession, code: str, *, client_addr: str) -> dt.datetime:
        def check(session: Session, record: SessionRecord) -> tuple[str, dict[str, Any]]:
            kek, clock = self.login.kek, self.login.clock
            try:
                if totp.verify_totp(session, login.user_id, code, kek=kek, clock=clock):
                    return "", {}
            except totp.TotpSecretError:
                return "totp_secret_unreadable", {}
            used = totp.was_used(session, login.user_id, code, kek=kek, clock=clock)
            return ("totp_reused" if used else "totp_invalid"), {}

        return self._prove(login, Factor.TOTP, client_addr, check)

    def _prove(
        self, login: LoginSession, factor: Factor, client_addr: str, check: FactorCheck
    ) -> dt.datetime:
        account = canonical_login_id(login.login_id)
        throttle, now = self.login.throttle, self.login.clock.now()
        has = self.factor_of(login)  # the user's factor now (a card registered since the login wins)
        with write_transaction(self.login.transactions) as session:
            wait = throttle.wait(session, account, client_addr)
            if wait > dt.timedelta(0):
                details = {"factor": str(factor), "retry_after_seconds": int(wait.total_seconds())}
                self._audit(session, login, client_addr, "denied", "throttled", details)
        if wait > dt.timedelta(0):
            raise LoginThrottledError(wait)
        with write_transaction(self.login.transactions) as session:
            record = session.get_one(SessionRecord, login.id)
            reason, details = ("wrong_factor", {}) if has is not factor else ("", {})
            if not reason:
                reason, details = check(session, record)
            details = {"factor": str(factor), **details}
            if not reason:
                throttle.succeeded(session, account, client_addr)
                record.stepped_up_at = now
                self._audit(session, login, client_addr, "ok", "", details)
                return now
            throttle.count_attempt(session, account, client_addr)
            self._audit(session, login, client_addr, "denied", reason, details)
        raise StepUpCodeUsedError() if reason == "totp_reused" else StepUpFailedError()

    def _audit(
        self,
        session: Session,
        login: LoginSession,
        client_addr: str,
        result: str,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        self.login.audit.append_in(
            session,
            actor=login.login_id,
            action=AuditAction.SESSION_STEP_UP,
            resource=f"user/{login.login_id}",
            result=result,
            reason=reason,
            terminal=login.terminal_name,
            client_addr=client_addr,
            details={"session_id": login.id, **details},
        )
