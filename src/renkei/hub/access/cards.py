"""Staff cards (職員証) as FIDO2/WebAuthn authenticators: the possession factor of a login.

The server side of both ceremonies, with py_webauthn:

- **Registration is admin-controlled.** An admin issues a one-time enrollment ticket for a user
  (``renkei user card-ticket LOGIN``, valid for :data:`TICKET_LIFETIME`); the user, at a registered terminal,
  gives their login id, password and the ticket, and presents the card. The ticket is consumed only when the
  card's attestation verifies, so a failed ceremony can be retried with the same ticket until it expires.
- **Authentication** happens in the login's second step (:mod:`renkei.hub.access.login`), with the options
  generated here for the user's registered cards.

Challenges are 64 random bytes, kept server-side (on the pending login or the enrollment row), used once and
valid for :data:`CEREMONY_LIFETIME`. User verification (a PIN on the card) is not asked for: the password is
the knowledge factor. Attestation ``none`` is accepted: the ticket, not the card's make, is what authorises a
card. A signature counter that does not increase (when either side is non-zero) means the card's key exists
twice (a clone): the card is disabled at once and the login refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, and_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.people import User
from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base
from renkei.hub.settings import WebAuthnSettings, load_settings

TICKET_LIFETIME = dt.timedelta(hours=8)  # issued and used on the same working day
CEREMONY_LIFETIME = dt.timedelta(minutes=5)  # from options to the card's answer, with time to find the card
CEREMONY_TIMEOUT_MS = 120_000  # what the browser is told; shorter than the server-side lifetime
TICKET_BYTES = 15  # 120 bits, shown as 24 base32 characters in groups of four

# What py_webauthn raises on a response that is not what it claims (it wraps most, not all, parse errors).
MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError)
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


class CardError(RenkeiError):
    """A card ceremony failed; ``reason`` is a stable code for the audit log."""

    def __init__(self, reason: str, ja: str, en: str) -> None:
        self.reason = reason
        super().__init__(ja, en)


# --- configuration ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardSettings:
    """The WebAuthn relying party: its id (the portal's host name) and the origins the portal is served from.

    From the hub's settings ``webauthn.rp_id`` (``RENKEI_WEBAUTHN_RP_ID``, default ``localhost``) and
    ``webauthn.origins`` (``RENKEI_WEBAUTHN_ORIGINS``, comma-separated; default ``https://<rp id>``) with
    :meth:`from_settings`. Invalid values are an error, never silently replaced by a default.
    """

    rp_id: str = "localhost"
    origins: tuple[str, ...] = ()
    rp_name: str = "renkei 庁内データ連携基盤"
    expected_origins: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not _HOSTNAME.fullmatch(self.rp_id) or _is_ip(self.rp_id):
            raise RenkeiError(
                f"WebAuthn の RP ID がホスト名ではありません: {self.rp_id!r}",
                f"WebAuthn RP id must be a lowercase host name, got {self.rp_id!r}",
            )
        origins = self.origins or (f"https://{self.rp_id}",)
        for origin in origins:
            _check_origin(origin, self.rp_id)
        object.__setattr__(self, "expected_origins", tuple(origins))

    @classmethod
    def from_settings(cls, webauthn: WebAuthnSettings | None = None) -> CardSettings:
        """From the hub's settings; None: the environment's (a service built without a hub)."""
        webauthn = webauthn or load_settings(None).webauthn
        return cls(rp_id=webauthn.rp_id, origins=webauthn.origins)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_origin(origin: str, rp_id: str) -> None:
    parts = urlsplit(origin)
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (parts.scheme == "http" and host == "localhost")
    within = host == rp_id or host.endswith("." + rp_id)
    if not secure or not within or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise RenkeiError(
            f"WebAuthn のオリジンが不正です: {origin!r}（https で、RP ID {rp_id} かそのサブドメイン）",
            f"WebAuthn origin {origin!r} must be https:// on the RP id {rp_id!r} or one of its subdomains",
        )


# --- tables -------------------------------------------------------------------------------------------------


class CardTicket(Base):
    """A one-time permission, issued by an admin, to register one card for one user."""

    __tablename__ = "card_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CardCredential(Base):
    """A registered staff card: its credential id, public key (COSE) and signature counter."""

    __tablename__ = "card_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url, ≤ 1023 bytes raw
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger)
    aaguid: Mapped[str] = mapped_column(String(36))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("card_tickets.id"))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str] = mapped_column(String(64), default="")


class CardEnrollment(Base):
    """A registration ceremony in progress: its challenge, bound to the user, ticket and terminal."""

    __tablename__ = "card_enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("card_tickets.id", ondelete="CASCADE"))
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"))
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# --- tickets ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    code: str = field(repr=False)  # shown once to the admin; only its SHA-256 is stored
    ticket_id: int
    expires_at: dt.datetime


def create_ticket(
    session: Session, user: User, *, created_by: str, clock: Clock = SYSTEM_CLOCK
) -> IssuedTicket:
    raw = base64.b32encode(secrets.token_bytes(TICKET_BYTES)).decode("ascii")
    code = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    now = clock.now()
    ticket = CardTicket(
        user_id=user.id,
        code_sha256=_ticket_digest(code),
        created_at=now,
        created_by=created_by,
        expires_at=now + TICKET_LIFETIME,
    )
    session.add(ticket)
    session.flush()
    return IssuedTicket(code=code, ticket_id=ticket.id, expires_at=ticket.expires_at)


def find_ticket(
    session: Session, user_id: int, code: str, *, clock: Clock = SYSTEM_CLOCK
) -> CardTicket | None:
    """The user's unused, unexpired ticket with this code, or None."""
    return session.scalar(
        select(CardTicket).where(
            CardTicket.code_sha256 == _ticket_digest(code),
            CardTicket.user_id == user_id,
            CardTicket.used_at.is_(None),
            CardTicket.expires_at > clock.now(),
        )
    )


def _ticket_digest(code: str) -> str:
    canonical = "".join(unicodedata.normalize("NFKC", code).upper().replace("-", "").split())
    return hashlib.sha256(f"renkei/card-ticket/v1\x00{canonical}".encode()).hexdigest()


# --- registration -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistrationStart:
    handle: str = field(repr=False)  # identifies the ceremony in the next request; only its SHA-256 is stored
    options_json: str  # PublicKeyCredentialCreationOptions for navigator.credentials.create()
    expires_at: dt.datetime


def start_registration(
    session: Session,
    user: User,
    ticket: CardTicket,
    *,
    terminal_id: int,
    settings: CardSettings,
    clock: Clock = SYSTEM_CLOCK,
) -> RegistrationStart:
    options = generate_registration_options(
        rp_id=settings.rp_id,
        rp_name=settings.rp_name,
        user_name=user.login_id,
        user_display_name=user.display_name,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.CROSS_PLATFORM,
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.DISCOURAGED,
        ),
        exclude_credentials=_descriptors(active_cards(session, user.id)),
    )
    handle = secrets.token_urlsafe(32)
    expires_at = clock.now() + CEREMONY_LIFETIME
    session.add(
        CardEnrollment(
            handle_sha256=_digest(handle),
            user_id=user.id,
            ticket_id=ticket.id,
            terminal_id=terminal_id,
            challenge=options.challenge,
            expires_at=expires_at,
        )
    )
    session.flush()
    return RegistrationStart(handle=handle, options_json=options_to_json(options), expires_at=expires_at)


def take_enrollment(session: Session, handle: str, *, clock: Clock = SYSTEM_CLOCK) -> CardEnrollment | None:
    """Remove and return the ceremony for ``handle`` if it has not expired (single use either way)."""
    enrollment = session.scalar(select(CardEnrollment).where(CardEnrollment.handle_sha256 == _digest(handle)))
    if enrollment is None:
        return None
    session.delete(enrollment)
    session.flush()
    return enrollment if enrollment.expires_at > clock.now() else None


def finish_registration(
    session: Session,
    enrollment: CardEnrollment,
    response: str | dict[str, Any],
    *,
    settings: CardSettings,
    clock: Clock = SYSTEM_CLOCK,
) -> CardCredential:
    """Verify the card's attestation, then consume the ticket and store the card."""
    try:
        if not isinstance(response, str | dict):
            raise TypeError("a registration response is JSON text or an object")
        verified = verify_registration_response(
            credential=response,
            expected_challenge=enrollment.challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.expected_origins),
            require_user_verification=False,
        )
    except MALFORMED:
        raise CardError(
            "registration_invalid",
            "職員証の登録応答を検証できませんでした",
            "the card's registration response did not verify",
        ) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if (
        session.scalar(select(CardCredential.id).where(CardCredential.credential_id == credential_id))
        is not None
    ):
        raise CardError(
            "card_already_registered", "この職員証は登録済みです", "this card is already registered"
        )
    _consume_ticket(session, enrollment.ticket_id, clock.now())
    card = CardCredential(
        user_id=enrollment.user_id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        ticket_id=enrollment.ticket_id,
        registered_at=clock.now(),
    )
    session.add(card)
    session.flush()
    return card


def _consume_ticket(session: Session, ticket_id: int, now: dt.datetime) -> None:
    claimed = session.execute(
        update(CardTicket)
        .where(CardTicket.id == ticket_id, CardTicket.used_at.is_(None), CardTicket.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not isinstance(claimed, CursorResult) or claimed.rowcount != 1:
        raise CardError(
            "ticket_invalid",
            "登録チケットが無効です（使用済みか期限切れ）。管理者に再発行を依頼してください",
            "the enrollment ticket is used or expired; ask an admin for a new one",
        )


# --- authentication -----------------------------------------------------------------------------------------


def active_cards(session: Session, user_id: int) -> list[CardCredential]:
    return list(
        session.scalars(
            select(CardCredential)
            .where(CardCredential.user_id == user_id, CardCredential.revoked_at.is_(None))
            .order_by(CardCredential.id)
        )
    )


def authentication_options(cards: list[CardCredential], settings: CardSettings) -> tuple[bytes, str]:
    """A fresh challenge and the PublicKeyCredentialRequestOptions JSON that allows exactly these cards."""
    options = generate_authentication_options(
        rp_id=settings.rp_id,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=_descriptors(cards),
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    return options.challenge, options_to_json(options)


def verify_assertion(
    session: Session,
    user_id: int,
    challenge: bytes,
    assertion: str | dict[str, Any],
    *,
    settings: CardSettings,
    clock: Clock = SYSTEM_CLOCK,
) -> CardCredential:
    """Check a card's signature over ``challenge``; on success advance its counter, on a clone disable it."""
    card = _card_for(session, user_id, assertion)
    try:
        verified = verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.expected_origins),
            credential_public_key=card.public_key,
            credential_current_sign_count=0,  # the counter is compared below, where a clone can be recorded
            require_user_verification=False,
        )
    except MALFORMED:
        raise CardError(
            "assertion_invalid", "職員証の署名を検証できませんでした", "the card's signature did not verify"
        ) from None
    now = clock.now()
    if _counter_went_back(card.sign_count, verified.new_sign_count):
        card.revoked_at = now
        card.revoked_reason = "clone_suspected"
        session.flush()
        raise CardError(
            "clone_suspected",
            "職員証の複製の疑いがあるため、この職員証を無効にしました。管理者に連絡してください",
            "the card's signature counter went back (a cloned card?); the card has been disabled",
        )
    card.sign_count = verified.new_sign_count
    card.last_used_at = now
    session.flush()
    return card


def _counter_went_back(stored: int, received: int) -> bool:
    # Cards without a counter always send 0; once either side is non-zero it must strictly increase.
    return (stored > 0 or received > 0) and received <= stored


def _card_for(session: Session, user_id: int, assertion: str | dict[str, Any]) -> CardCredential:
    try:
        if not isinstance(assertion, str | dict):
            raise TypeError("an assertion is JSON text or an object")
        credential_id = bytes_to_base64url(parse_authentication_credential_json(assertion).raw_id)
    except MALFORMED:
        raise CardError(
            "assertion_malformed", "職員証の応答の形式が不正です", "malformed card response"
        ) from None
    card = session.scalar(
        select(CardCredential).where(
            and_(CardCredential.credential_id == credential_id, CardCredential.user_id == user_id)
        )
    )
    if card is None or card.revoked_at is not None:
        raise CardError(
            "unknown_card",
            "この職員証は登録されていないか、無効にされています",
            "this card is not registered to the user or has been disabled",
        )
    return card


def revoke_cards(session: Session, user_id: int, *, reason: str, clock: Clock = SYSTEM_CLOCK) -> int:
    """Disable every active card of the user (lost card, staff leaving); returns how many."""
    cards = active_cards(session, user_id)
    for card in cards:
        card.revoked_at = clock.now()
        card.revoked_reason = reason
    session.flush()
    return len(cards)


def _descriptors(cards: list[CardCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=_b64url_decode(card.credential_id)) for card in cards]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode("utf-8")).hexdigest()
