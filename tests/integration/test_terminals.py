"""Terminals (専用端末): the private CA, enrollment, identification by client certificate, revocation."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from typer.testing import CliRunner

from renkei.cli.access import register
from renkei.errors import KeyFileError, RenkeiError
from renkei.hub.access.terminals import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    TERMINAL_VALIDITY,
    Terminal,
    TerminalCA,
    enroll_terminal,
    fingerprint,
    identify_terminal,
    load_ca_certificate,
    parse_forwarded_cert,
    revoke_terminal,
)
from renkei.hub.audit import AuditEntry
from renkei.hub.home import Hub
from tests.support import AccessWorld, access_world, make_hub_home


@pytest.fixture
def db_world(database_url: str, tmp_path: Path) -> Iterator[AccessWorld]:
    with access_world(database_url, tmp_path) as built:
        yield built


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    with access_world(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path) as built:
        yield built


def identify(world: AccessWorld, der: bytes | None) -> Terminal | None:
    with world.session() as session:
        return identify_terminal(session, der, ca_certificate=world.ca.certificate, clock=world.clock)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def forged(name: str, issuer: x509.Name, now: dt.datetime) -> x509.Certificate:
    """A client certificate made by someone without the CA key (self-signed, or claiming the CA as issuer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


# --- identification -----------------------------------------------------------------------------------------


def test_the_issued_certificate_identifies_its_terminal(db_world: AccessWorld) -> None:
    world = db_world
    found = identify(world, world.terminal_cert_der)
    assert found is not None and found.name == "term-01"
    cert = x509.load_der_x509_certificate(world.terminal_cert_der)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "term-01"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - world.clock.now() == TERMINAL_VALIDITY
    assert found.serial == f"{cert.serial_number:x}" and found.fingerprint_sha256 == fingerprint(
        world.terminal_cert_der
    )


def test_a_self_signed_certificate_with_the_same_name_identifies_nothing(db_world: AccessWorld) -> None:
    world = db_world
    now = world.clock.now()
    self_signed = forged("term-01", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "term-01")]), now)
    assert identify(world, der(self_signed)) is None
    claiming_the_ca = forged("term-01", world.ca.certificate.subject, now)  # right issuer name, wrong key
    assert identify(world, der(claiming_the_ca)) is None


def test_a_certificate_of_the_ca_that_was_never_registered_identifies_nothing(world: AccessWorld) -> None:
    _, unregistered = world.ca.issue("term-01", world.clock.now())
    assert identify(world, der(unregistered)) is None


def test_a_revoked_terminal_is_refused_at_once(db_world: AccessWorld) -> None:
    world = db_world
    with world.session() as session:
        revoke_terminal(session, "term-01", revoked_by="test", clock=world.clock)
        session.commit()
    assert identify(world, world.terminal_cert_der) is None
    renewed, renewed_der = world.add_terminal("term-01")  # the name may be enrolled again
    assert identify(world, renewed_der) is not None and renewed.id != world.terminal.id


def test_an_expired_certificate_is_refused(world: AccessWorld) -> None:
    world.clock.advance(days=TERMINAL_VALIDITY.days - 1)
    assert identify(world, world.terminal_cert_der) is not None
    world.clock.advance(days=2)
    assert identify(world, world.terminal_cert_der) is None


def test_no_or_garbage_certificate_identifies_nothing(world: AccessWorld) -> None:
    for value in (None, b"", b"not a certificate", world.terminal_cert_der[:-5]):
        assert identify(world, value) is None


def test_an_active_name_cannot_be_enrolled_twice(world: AccessWorld) -> None:
    with world.session() as session, pytest.raises(RenkeiError):
        enroll_terminal(
            session, world.ca, "term-01", world.home / "again", enrolled_by="test", clock=world.clock
        )
    with world.session() as session, pytest.raises(RenkeiError):
        enroll_terminal(
            session, world.ca, "../escape", world.home / "x", enrolled_by="test", clock=world.clock
        )


# --- the trusted proxy's header ------------------------------------------------------------------------------


def test_nginx_escaped_certificate_header_is_parsed(world: AccessWorld) -> None:
    pem = (
        x509.load_der_x509_certificate(world.terminal_cert_der)
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    escaped = quote(pem, safe="")  # what nginx puts in $ssl_client_escaped_cert
    assert parse_forwarded_cert(escaped) == world.terminal_cert_der
    assert parse_forwarded_cert(pem) == world.terminal_cert_der
    found = identify(world, parse_forwarded_cert(escaped))
    assert found is not None and found.name == "term-01"


@pytest.mark.parametrize(
    "value", ["", "-", "(null)", "%2D%2D%2D", "x" * 20_000, "-----BEGIN CERTIFICATE-----\nAAAA"]
)
def test_anything_else_in_the_header_is_no_certificate(value: str) -> None:
    assert parse_forwarded_cert(value) is None


# --- the CA and the files handed to the terminal ------------------------------------------------------------


def test_ca_is_created_once_with_a_private_key(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    home.mkdir()
    first = TerminalCA.load_or_create(home)
    second = TerminalCA.load_or_create(home)
    assert stat.S_IMODE((home / CA_KEY_FILE).stat().st_mode) == 0o600
    assert first.certificate == second.certificate == load_ca_certificate(home)
    constraints = first.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    (home / CA_KEY_FILE).chmod(0o644)
    with pytest.raises(KeyFileError):
        TerminalCA.load(home)


def test_an_interrupted_ca_creation_is_completed(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    home.mkdir()
    TerminalCA.load_or_create(home)
    (home / CA_CERT_FILE).unlink()
    assert TerminalCA.load_or_create(home).certificate.subject is not None
    with pytest.raises(KeyFileError):
        load_ca_certificate(tmp_path)


def test_enrollment_writes_key_certificate_and_a_protected_bundle(world: AccessWorld) -> None:
    with world.session() as session:
        enrolled = enroll_terminal(
            session, world.ca, "term-09", world.home / "t9", enrolled_by="test", clock=world.clock
        )
        session.commit()
    assert stat.S_IMODE(enrolled.key_file.stat().st_mode) == 0o600
    _, cert, extra = pkcs12.load_key_and_certificates(
        enrolled.bundle_file.read_bytes(), enrolled.bundle_password.encode()
    )
    assert cert is not None and identify(world, der(cert)) is not None
    assert [der(c) for c in extra] == [der(world.ca.certificate)]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(enrolled.bundle_file.read_bytes(), b"wrong")
    with (
        world.session() as session,
        pytest.raises(RenkeiError),
    ):  # never overwrites an earlier terminal's files
        revoke_terminal(session, "term-09", revoked_by="test", clock=world.clock)
        enroll_terminal(
            session, world.ca, "term-09", world.home / "t9", enrolled_by="test", clock=world.clock
        )


# --- admin CLI ----------------------------------------------------------------------------------------------


def test_cli_enroll_list_and_revoke(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    home = make_hub_home(tmp_path / "hub")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200"})
        assert "Traceback" not in result.output
        return result.exit_code, result.output

    code, enroll_output = run("terminal", "enroll", "kobe-pc-001", "--out", str(tmp_path / "pc1"))
    assert code == 0, enroll_output
    bundle_password = enroll_output.split("shown once): ")[1].split()[0]
    bundle = (tmp_path / "pc1" / "kobe-pc-001.p12").read_bytes()
    assert pkcs12.load_key_and_certificates(bundle, bundle_password.encode())[1] is not None
    assert (home / CA_KEY_FILE).exists()
    assert run("terminal", "enroll", "kobe-pc-001", "--out", str(tmp_path / "pc1b"))[0] == 2
    code, output = run("terminal", "list")
    assert "kobe-pc-001" in output and "有効" in output
    assert run("terminal", "revoke", "kobe-pc-001")[0] == 0
    assert "失効" in run("terminal", "list")[1]
    assert run("terminal", "revoke", "kobe-pc-001")[0] == 2
    hub = Hub(home)
    with hub.session() as session:
        logged = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    changes = [e.action for e in logged if e.action != "authz.decision"]
    assert changes[-2:] == ["admin.terminal_enroll", "admin.terminal_revoke"]
    decided = [e.details["access"] for e in logged if e.action == "authz.decision"]
    assert decided[-4:] == ["admin.terminals"] * 4  # every attempt was decided, the refused ones too
    assert all(bundle_password not in str(e.fields()) for e in logged)
    hub.engine.dispose()
