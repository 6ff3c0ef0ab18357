"""Dedicated terminals (専用端末): registered devices, each proven by a TLS client certificate.

The hub keeps its own private terminal CA in its home, created on first use:

    <home>/terminal_ca.key   ECDSA P-256 private key (0600); only ``renkei terminal enroll`` reads it
    <home>/terminal_ca.crt   the CA certificate: the TLS server (renkei's own or the reverse proxy) trusts
                             client certificates issued by it, and :func:`identify_terminal` checks against it

``renkei terminal enroll NAME --out DIR`` issues the terminal a certificate (ECDSA P-256, clientAuth, valid
:data:`TERMINAL_VALIDITY`, CN = NAME, random serial) and writes its key, certificate and a password-protected
PKCS#12 bundle to DIR for installation. The ``terminals`` row records the certificate's SHA-256 fingerprint,
serial and validity; :func:`identify_terminal` accepts only a certificate whose signature verifies against
the CA, that is within its validity, whose fingerprint is registered and not revoked. A certificate with the
same name from anywhere else is a different certificate and identifies nothing. Revocation
(``renkei terminal revoke NAME``) is immediate: the next request from that terminal is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import KeyFileError, Location, RenkeiError
from renkei.files import write_private
from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base

CA_KEY_FILE = "terminal_ca.key"
CA_CERT_FILE = "terminal_ca.crt"
CA_VALIDITY = dt.timedelta(days=3653)  # ten years; terminals are re-enrolled, the CA is not
TERMINAL_VALIDITY = dt.timedelta(days=730)  # two years: about a PC's replacement cycle in a city office
CLOCK_SKEW = dt.timedelta(minutes=5)  # a terminal whose clock runs a little behind still accepts its cert
MAX_FORWARDED_CERT = 16 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class Terminal(Base):
    """A registered terminal and the one client certificate that proves it."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)  # unique among terminals not revoked
    serial: Mapped[str] = mapped_column(String(48))  # hex
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the DER
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    enrolled_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str] = mapped_column(String(128), default="")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def fingerprint(cert_der: bytes) -> str:
    return hashlib.sha256(cert_der).hexdigest()


# --- the terminal CA ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalCA:
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    @classmethod
    def load(cls, home: Path) -> TerminalCA:
        key = _load_ca_key(home / CA_KEY_FILE)
        return cls(key, load_ca_certificate(home))

    @classmethod
    def load_or_create(cls, home: Path, clock: Clock = SYSTEM_CLOCK) -> TerminalCA:
        """The home's CA, created (key 0600, then certificate) the first time it is needed."""
        key_path, cert_path = home / CA_KEY_FILE, home / CA_CERT_FILE
        if not key_path.exists():
            write_private(key_path, _pem_key(ec.generate_private_key(ec.SECP256R1())))
        key = _load_ca_key(key_path)
        if not cert_path.exists():  # also completes a creation interrupted between the two files
            cert = _self_signed_ca(key, clock.now())
            write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
            cert_path.chmod(0o644)
        return cls(key, load_ca_certificate(home))

    def issue(self, name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        ca_public = self.key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + TERMINAL_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return key, cert


def load_ca_certificate(home: Path) -> x509.Certificate:
    """The CA certificate only: what the web layer needs to identify terminals (it never needs the CA key)."""
    path = home / CA_CERT_FILE
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(
            "端末認証局の証明書がありません。`renkei terminal enroll` で端末を登録すると作成されます",
            "terminal CA certificate not found; it is created by the first `renkei terminal enroll`",
            Location(path),
        ) from None
    except ValueError:
        raise KeyFileError(
            "端末認証局の証明書の形式が正しくありません", "terminal CA certificate is not PEM", Location(path)
        ) from None


def _load_ca_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(
            "端末認証局の鍵がありません", "terminal CA key not found", Location(path)
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            "端末認証局の鍵のアクセス権が広すぎます（0600 にしてください）",
            f"terminal CA key is accessible to others (mode {stat.S_IMODE(mode):o}); chmod 600",
            Location(path),
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(
            "端末認証局の鍵が ECDSA 鍵ではありません", "terminal CA key is not ECDSA", Location(path)
        )
    return key


def _self_signed_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    # A random suffix keeps two hubs' CAs apart even if someone trusts both by mistake.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "renkei"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"renkei terminal CA {secrets.token_hex(4)}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    """digitalSignature for a terminal (TLS client auth); keyCertSign and cRLSign for the CA."""
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- enrollment and revocation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolledTerminal:
    terminal: Terminal
    key_file: Path
    cert_file: Path
    bundle_file: Path
    bundle_password: str = field(repr=False)  # shown once; protects the PKCS#12 file in transit


def check_terminal_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RenkeiError(
            f"端末名が不正です: {name!r}（英数字と . _ - で 63 文字まで、英数字で始まる）",
            f"invalid terminal name {name!r}: letters, digits, '.', '_', '-', at most 63, starting alphanumeric",
        )
    return name


def active_terminal(session: Session, name: str) -> Terminal | None:
    return session.scalar(select(Terminal).where(Terminal.name == name, Terminal.revoked_at.is_(None)))


def enroll_terminal(
    session: Session,
    ca: TerminalCA,
    name: str,
    out_dir: Path,
    *,
    enrolled_by: str,
    clock: Clock = SYSTEM_CLOCK,
) -> EnrolledTerminal:
    """Issue ``name`` a client certificate, record it, and write key, certificate and PKCS#12 to ``out_dir``."""
    check_terminal_name(name)
    if active_terminal(session, name) is not None:
        raise RenkeiError(
            f"端末 {name} は登録済みです（更新するには先に revoke してください）",
            f"terminal {name!r} is already registered; revoke it first to re-enroll",
        )
    now = clock.now()
    key, cert = ca.issue(name, now)
    der = cert.public_bytes(serialization.Encoding.DER)
    terminal = Terminal(
        name=name,
        serial=f"{cert.serial_number:x}",
        fingerprint_sha256=fingerprint(der),
        not_after=cert.not_valid_after_utc,
        enrolled_at=now,
        enrolled_by=enrolled_by,
    )
    session.add(terminal)
    session.flush()
    return _write_terminal_files(terminal, key, cert, ca, out_dir)


def _write_terminal_files(
    terminal: Terminal, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, ca: TerminalCA, out_dir: Path
) -> EnrolledTerminal:
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    refuse = {
        "ja": "端末の鍵ファイルが既に存在します（上書きしません）",
        "en": "terminal file exists; not overwriting",
    }
    password = secrets.token_urlsafe(12)
    bundle = pkcs12.serialize_key_and_certificates(
        terminal.name.encode(),
        key,
        cert,
        [ca.certificate],
        serialization.BestAvailableEncryption(password.encode()),
    )
    key_file = write_private(out_dir / f"{terminal.name}.key", _pem_key(key), **refuse)
    cert_file = write_private(
        out_dir / f"{terminal.name}.crt", cert.public_bytes(serialization.Encoding.PEM), **refuse
    )
    bundle_file = write_private(out_dir / f"{terminal.name}.p12", bundle, **refuse)
    return EnrolledTerminal(terminal, key_file, cert_file, bundle_file, password)


def revoke_terminal(session: Session, name: str, *, revoked_by: str, clock: Clock = SYSTEM_CLOCK) -> Terminal:
    """Revoke the active terminal called ``name``; its certificate identifies nothing from now on."""
    terminal = active_terminal(session, name)
    if terminal is None:
        raise RenkeiError(f"有効な端末 {name} はありません", f"no active terminal named {name!r}")
    terminal.revoked_at = clock.now()
    terminal.revoked_by = revoked_by
    session.flush()
    return terminal


# --- identification -----------------------------------------------------------------------------------------


def identify_terminal(
    session: Session,
    cert_der: bytes | None,
    *,
    ca_certificate: x509.Certificate,
    clock: Clock = SYSTEM_CLOCK,
) -> Terminal | None:
    """The registered, unrevoked terminal that ``cert_der`` proves, or None (unknown means refused)."""
    terminal = registered_terminal(session, cert_der, ca_certificate=ca_certificate, clock=clock)
    return terminal if terminal is not None and terminal.active else None


def registered_terminal(
    session: Session,
    cert_der: bytes | None,
    *,
    ca_certificate: x509.Certificate,
    clock: Clock = SYSTEM_CLOCK,
    candidate: Terminal | None = None,
) -> Terminal | None:
    """The registered terminal ``cert_der`` was issued to, **revoked or not**; None for any other certificate.

    A revoked terminal proves nothing (that is :func:`identify_terminal`), but the audit entry of what it
    tried should still name it. ``candidate`` is a terminal row read in ``session``'s transaction (the login
    session's own terminal): when the certificate's fingerprint is its, it is that row (the fingerprint is
    unique), and no second query is needed; otherwise the row is looked up.
    """
    if not cert_der:
        return None
    window = _client_certificate_window(cert_der, _der(ca_certificate))
    if window is None or not window[0] <= clock.now() <= window[1]:
        return None
    presented = fingerprint(cert_der)
    if candidate is not None and candidate.fingerprint_sha256 == presented:
        return candidate
    return session.scalar(select(Terminal).where(Terminal.fingerprint_sha256 == presented))


@functools.lru_cache(maxsize=8)
def _der(certificate: x509.Certificate) -> bytes:
    """The CA certificate's DER (an immutable object's encoding: kept, not re-encoded on every request)."""
    return certificate.public_bytes(serialization.Encoding.DER)


@functools.lru_cache(maxsize=1024)
def _client_certificate_window(cert_der: bytes, ca_der: bytes) -> tuple[dt.datetime, dt.datetime] | None:
    """When the certificate is valid, if the CA issued it for client authentication; else None.

    Pure (of the two certificates), so kept for the connections' certificates: every request presents its
    connection's certificate, and the signature check cost more than the page's own queries.
    """
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        ca = x509.load_der_x509_certificate(ca_der)
    except ValueError:
        return None
    if not _issued_by(cert, ca) or not _for_client_auth(cert):
        return None
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)  # issuer name, then the CA's signature over the certificate
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _for_client_auth(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def parse_forwarded_cert(header_value: str) -> bytes | None:
    """The DER of a client certificate forwarded by a trusted reverse proxy, or None.

    Accepts the URL-encoded PEM that nginx puts in ``$ssl_client_escaped_cert`` (and plain PEM). Only call this
    for requests that came from the configured proxy: anyone else could set the header.
    """
    if not header_value or len(header_value) > MAX_FORWARDED_CERT:
        return None
    pem = unquote(header_value.strip())
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return cert.public_bytes(serialization.Encoding.DER)
