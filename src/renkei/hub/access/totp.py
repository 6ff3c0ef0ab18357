"""TOTP (RFC 6238): the possession factor for users whose terminal has no card reader.

30-second steps, 6 digits, SHA-1 (what every authenticator app implements), and one step of tolerance either
side for clock drift and typing time. Each step is accepted at most once: the last step used is stored and
only later steps are accepted afterwards, so a code seen over someone's shoulder cannot be replayed (RFC 6238
§5.2). Guessing is limited by the login throttle: every code needs a fresh password step, which is counted.

An admin enrolls the secret (``renkei user totp-enroll LOGIN``), which prints the ``otpauth://`` URI once for
the user's authenticator app. A user has either staff cards or TOTP: enrolling TOTP is refused while a card is
registered, and registering a card removes the TOTP secret.

The secret is a shared key, so whoever reads the database could make codes with it: it is stored only wrapped
by the vault's KEK (AES-256-GCM, bound to the user, :mod:`renkei.hub.keys`), rewrapped when the KEK is rotated.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
import unicodedata

import pyotp
from sqlalchemy import BigInteger, ForeignKey, String, Text, delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.people import User
from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base
from renkei.hub.keys import KeyEncryptionKey, WrappedKey, WrongKekError

STEP_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1  # steps accepted before and after the current one
ISSUER = "renkei"
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")
SECRET_AAD_PREFIX = b"renkei/totp-secret/v1|user/"


class TotpSecret(Base):
    """A user's TOTP shared secret and the last step accepted (single use)."""

    __tablename__ = "totp_secrets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # base32, 160 bits (RFC 4226 §4 recommends 160), wrapped by the KEK: {"kek_id", "nonce", "wrapped"}
    wrapped_secret: Mapped[str] = mapped_column(Text)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    enrolled_by: Mapped[str] = mapped_column(String(128))
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TotpSecretError(RenkeiError):
    """A stored TOTP secret cannot be opened: damaged, moved to another user, or wrapped by another KEK."""


def enroll_totp(
    session: Session,
    user: User,
    *,
    kek: KeyEncryptionKey,
    enrolled_by: str,
    clock: Clock = SYSTEM_CLOCK,
) -> str:
    """Give ``user`` a new secret (replacing any old one) and return its ``otpauth://`` URI, to show once."""
    secret = pyotp.random_base32()
    record = session.get(TotpSecret, user.id)
    if record is None:
        record = TotpSecret(user_id=user.id)
        session.add(record)
    record.wrapped_secret = wrap_secret(kek, user.id, secret)
    record.enrolled_at = clock.now()
    record.enrolled_by = enrolled_by
    record.last_used_step = None
    session.flush()
    return str(_totp(secret).provisioning_uri(name=user.login_id, issuer_name=ISSUER))


def has_totp(session: Session, user_id: int) -> bool:
    return session.get(TotpSecret, user_id) is not None


def remove_totp(session: Session, user_id: int) -> bool:
    result = session.execute(delete(TotpSecret).where(TotpSecret.user_id == user_id))
    return bool(_rowcount(result))


def normalize_code(code: str) -> str | None:
    """Six ASCII digits from what was typed (full-width digits and spaces allowed), or None."""
    digits = "".join(unicodedata.normalize("NFKC", code).split())
    return digits if _CODE.fullmatch(digits) else None


def verify_totp(
    session: Session, user_id: int, code: str, *, kek: KeyEncryptionKey, clock: Clock = SYSTEM_CLOCK
) -> bool:
    """Accept ``code`` once if it matches a step within the window that is later than the last one used.

    Raises :class:`TotpSecretError` when the stored secret does not open (never a silent acceptance).
    """
    record = session.get(TotpSecret, user_id)
    typed = normalize_code(code)
    if record is None or typed is None:
        return False
    secret = unwrap_secret(kek, user_id, record.wrapped_secret)
    step = _matching_step(secret, record.last_used_step, typed, clock.now())
    if step is None:
        return False
    # Conditional update: of two concurrent logins with the same code, only one moves the step forward.
    claimed = session.execute(
        update(TotpSecret)
        .where(
            TotpSecret.user_id == user_id,
            or_(TotpSecret.last_used_step.is_(None), TotpSecret.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    session.expire(record)
    return _rowcount(claimed) == 1


def was_used(
    session: Session, user_id: int, code: str, *, kek: KeyEncryptionKey, clock: Clock = SYSTEM_CLOCK
) -> bool:
    """Whether ``code`` is right for a step in the window that was already used (so: wait for the next code).

    Asked only after :func:`verify_totp` refused the code, to tell the user why; it accepts nothing.
    """
    record = session.get(TotpSecret, user_id)
    typed = normalize_code(code)
    if record is None or typed is None or record.last_used_step is None:
        return False
    secret = unwrap_secret(kek, user_id, record.wrapped_secret)
    current = _step(clock.now())
    spent = range(current - VALID_WINDOW, min(current + VALID_WINDOW, record.last_used_step) + 1)
    return any(hmac.compare_digest(str(_totp(secret).generate_otp(step)), typed) for step in spent)


def current_code(secret: str, at: dt.datetime) -> str:
    """The code for ``at`` (for tests and for checking an app during enrollment)."""
    return str(_totp(secret).generate_otp(_step(at)))


def rewrap_totp_secrets(session: Session, old: KeyEncryptionKey, new: KeyEncryptionKey) -> int:
    """Move every TOTP secret from ``old`` to ``new`` (a KEK rotation); returns how many were rewrapped.

    Secrets already under ``new`` (an interrupted rotation run again) are left alone.
    """
    count = 0
    for record in session.scalars(select(TotpSecret).order_by(TotpSecret.user_id)):
        if _wrapped(record.user_id, record.wrapped_secret).kek_id == new.key_id:
            continue
        secret = unwrap_secret(old, record.user_id, record.wrapped_secret)
        record.wrapped_secret = wrap_secret(new, record.user_id, secret)
        count += 1
    session.flush()
    return count


def wrap_secret(kek: KeyEncryptionKey, user_id: int, secret: str) -> str:
    """The stored form of a secret: wrapped by ``kek`` and bound to the user (a row moved to another fails)."""
    wrapped = kek.wrap(secret.encode("ascii"), _secret_aad(user_id))
    return json.dumps(wrapped.to_json(), sort_keys=True, separators=(",", ":"))


def unwrap_secret(kek: KeyEncryptionKey, user_id: int, stored: str) -> str:
    try:
        return kek.unwrap(_wrapped(user_id, stored), _secret_aad(user_id)).decode("ascii")
    except (WrongKekError, UnicodeDecodeError) as exc:
        raise TotpSecretError(
            "TOTP の秘密情報を開けません（鍵暗号化鍵が違うか、記録が改ざん・取り違えられています）",
            f"the TOTP secret of user {user_id} does not open: {getattr(exc, 'en', 'not ASCII')}",
        ) from None


def _wrapped(user_id: int, stored: str) -> WrappedKey:
    try:
        return WrappedKey.from_json(json.loads(stored))
    except (ValueError, TypeError, AttributeError):
        raise TotpSecretError(
            "TOTP の秘密情報の記録が壊れています", f"the stored TOTP secret of user {user_id} is malformed"
        ) from None


def _secret_aad(user_id: int) -> bytes:
    return SECRET_AAD_PREFIX + str(user_id).encode()


def _matching_step(secret: str, last_used: int | None, typed: str, now: dt.datetime) -> int | None:
    totp = _totp(secret)
    current = _step(now)
    match = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if last_used is not None and step <= last_used:
            continue
        # Every candidate is compared (no early exit), each in constant time.
        if hmac.compare_digest(str(totp.generate_otp(step)), typed) and match is None:
            match = step
    return match


def _step(at: dt.datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
