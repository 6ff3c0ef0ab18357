"""Throttling of login attempts (NIST SP 800-63B §3.2.2, ASVS v5.0.0-6.1.1 and 6.3.1).

Two counters guard every password step: one per account (the login id as typed, so unknown ids are throttled
exactly like real ones and reveal nothing) and one per client address (so one address cannot spray guesses
over many accounts).

- Each attempt is counted *before* the password is checked, so parallel attempts cannot slip past the limit;
  a complete login (password and second factor) then resets the account counter and takes the attempt back
  from the address counter. An abandoned second step therefore counts as a failure.
- Up to ``free_attempts`` consecutive failures cost nothing; after that the next attempt is not even checked
  until a wait has passed, 30 s doubling per further failure up to 15 min (NIST's "30 seconds up to an hour").
- Nothing is ever locked for good: the wait is capped, so an attacker can slow a user down but never lock them
  out (ASVS 6.1.1 "prevention of malicious lockout"). Counters are forgotten after a quiet period.
- State lives in the database (``login_throttle``), so it survives restarts and is shared by every process.
  Rows hold a SHA-256 of the key, never the typed login id (which may be a mistyped password) or the address.

Why not NIST's hard limit of 100 failures: with the 15-minute cap an attacker gets at most ~96 guesses a day
per account, must do so from a registered terminal (client certificate), and still lacks the staff card or
TOTP; disabling the authenticator after 100 failures would hand that attacker a lockout.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Integer, String, Table, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.dml import ReturningInsert

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures are free, how the wait grows after them, and when a quiet counter is forgotten."""

    free_attempts: int
    base_wait: dt.timedelta
    max_wait: dt.timedelta
    forget_after: dt.timedelta

    def wait_after(self, failures: int) -> dt.timedelta | None:
        """The wait imposed after ``failures`` consecutive failures (None: the next attempt may go ahead)."""
        if failures < self.free_attempts:
            return None
        doublings = min(failures - self.free_attempts, 32)
        return min(self.max_wait, self.base_wait * (1 << doublings))


# Per account: 5 free failures (typos), then 30 s, 1, 2, 4, 8 min, then 15 min per attempt.
ACCOUNT_POLICY = ThrottlePolicy(
    free_attempts=5,
    base_wait=dt.timedelta(seconds=30),
    max_wait=dt.timedelta(minutes=15),
    forget_after=dt.timedelta(hours=24),
)
# Per client address: a shared terminal sees several people's typos, so more are free.
ADDRESS_POLICY = ThrottlePolicy(
    free_attempts=20,
    base_wait=dt.timedelta(seconds=30),
    max_wait=dt.timedelta(minutes=15),
    forget_after=dt.timedelta(hours=1),
)


class Scope(enum.StrEnum):
    ACCOUNT = "account"
    ADDRESS = "address"


class ThrottleRecord(Base):
    """Consecutive failures of one account or one client address."""

    __tablename__ = "login_throttle"

    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


_table = cast(Table, ThrottleRecord.__table__)


def throttle_key(scope: Scope, value: str) -> str:
    return hashlib.sha256(f"renkei/throttle/v1\x00{scope}\x00{value}".encode()).hexdigest()


class Throttle:
    """The account and address counters of the login's password step."""

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        account_policy: ThrottlePolicy = ACCOUNT_POLICY,
        address_policy: ThrottlePolicy = ADDRESS_POLICY,
    ) -> None:
        self.clock = clock
        self.policies = {Scope.ACCOUNT: account_policy, Scope.ADDRESS: address_policy}

    def wait(self, session: Session, login_id: str, client_addr: str) -> dt.timedelta:
        """How long until an attempt for this account from this address may be checked (zero: now)."""
        keys = [throttle_key(scope, value) for scope, value in _targets(login_id, client_addr)]
        blocked = session.scalars(
            select(ThrottleRecord.blocked_until).where(
                ThrottleRecord.key_sha256.in_(keys), ThrottleRecord.blocked_until.is_not(None)
            )
        ).all()
        now = self.clock.now()
        return max(
            (until - now for until in blocked if until is not None and until > now), default=dt.timedelta(0)
        )

    def count_attempt(self, session: Session, login_id: str, client_addr: str) -> None:
        """Count an attempt as a failure until :meth:`succeeded` says otherwise (account first, then address)."""
        for scope, value in _targets(login_id, client_addr):
            self._count(session, scope, value)

    def succeeded(self, session: Session, login_id: str, client_addr: str) -> None:
        """A complete login: the account starts afresh; the address gets this attempt back."""
        for scope, value in _targets(login_id, client_addr):
            key = throttle_key(scope, value)
            if scope is Scope.ACCOUNT:
                session.execute(delete(ThrottleRecord).where(ThrottleRecord.key_sha256 == key))
                continue
            session.execute(
                update(ThrottleRecord)
                .where(ThrottleRecord.key_sha256 == key)
                .values(
                    failures=case((ThrottleRecord.failures > 0, ThrottleRecord.failures - 1), else_=0),
                    blocked_until=None,
                )
            )

    def failures(self, session: Session, scope: Scope, value: str) -> int:
        record = session.get(ThrottleRecord, throttle_key(scope, value))
        return record.failures if record is not None else 0

    def _count(self, session: Session, scope: Scope, value: str) -> None:
        policy = self.policies[scope]
        now = self.clock.now()
        key = throttle_key(scope, value)
        failures = session.execute(
            _upsert_failure(session, key, scope, now, now - policy.forget_after)
        ).scalar_one()
        wait = policy.wait_after(failures)
        if wait is not None:
            session.execute(
                update(ThrottleRecord)
                .where(ThrottleRecord.key_sha256 == key)
                .values(blocked_until=now + wait)
            )


def _targets(login_id: str, client_addr: str) -> list[tuple[Scope, str]]:
    targets = [(Scope.ACCOUNT, login_id)]
    if client_addr:  # no address known (e.g. a local CLI): only the account is limited
        targets.append((Scope.ADDRESS, client_addr))
    return targets


def _upsert_failure(
    session: Session, key: str, scope: Scope, now: dt.datetime, stale_before: dt.datetime
) -> ReturningInsert[int]:
    """INSERT … ON CONFLICT DO UPDATE: one atomic statement, even when two processes count the same key."""
    values = {"key_sha256": key, "scope": str(scope), "failures": 1, "last_failure_at": now}
    stale = _table.c.last_failure_at < stale_before
    counted = {"failures": case((stale, 1), else_=_table.c.failures + 1), "last_failure_at": now}
    if session.get_bind().dialect.name == "postgresql":
        pg = pg_insert(_table).values(values)
        return pg.on_conflict_do_update(index_elements=[_table.c.key_sha256], set_=counted).returning(
            _table.c.failures
        )
    lite = sqlite_insert(_table).values(values)
    return lite.on_conflict_do_update(index_elements=[_table.c.key_sha256], set_=counted).returning(
        _table.c.failures
    )
