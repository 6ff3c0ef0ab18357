"""Seal an extract for the hub: encrypt to the hub's age recipient, sign as the sending system.

The sending side's home holds its own Ed25519 signing key (``sender_signing.key``, 0600), its name
(``sender.json``) and the hub's public age recipient (``hub_recipient.txt``, registered with
``renkei sender trust-hub``). It holds nothing that can decrypt a package or read the vault.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from renkei.config import SENDER, check_home, claim_home
from renkei.errors import KeyFileError, Location, RenkeiError
from renkei.files import write_private
from renkei.manifest import DATA_FILE, MANIFEST_FILE, Manifest, sha256_file
from renkei.package import (
    ENVELOPE,
    PACKAGE_SUFFIX,
    PAYLOAD,
    SEAL,
    SIGNATURE,
    Envelope,
    Seal,
    add_bytes,
    add_file,
)

SIGNING_KEY_FILE = "sender_signing.key"
SENDER_FILE = "sender.json"
HUB_RECIPIENT_FILE = "hub_recipient.txt"


@dataclass(frozen=True, slots=True)
class SenderIdentity:
    name: str
    signing_key: Ed25519PrivateKey

    @property
    def public_key_b64(self) -> str:
        return public_key_b64(self.signing_key)


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def create_sender(home: Path, name: str) -> SenderIdentity:
    """Create the sending system's signing key and name (never in a hub's home)."""
    claim_home(home, SENDER)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(home / SIGNING_KEY_FILE, pem)
    (home / SENDER_FILE).write_text(json.dumps({"name": name}, ensure_ascii=False) + "\n", encoding="utf-8")
    return SenderIdentity(name, key)


def load_sender(home: Path) -> SenderIdentity:
    path = check_home(home, SENDER) / SIGNING_KEY_FILE
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        name = json.loads((home / SENDER_FILE).read_text(encoding="utf-8"))["name"]
    except FileNotFoundError:
        raise KeyFileError(
            "送信側の署名鍵がありません。`renkei sender init` を実行してください",
            "sender signing key not found; run `renkei sender init`",
            Location(path),
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("署名鍵の形式が正しくありません", "signing key is not Ed25519", Location(path))
    return SenderIdentity(str(name), key)


def trust_hub(home: Path, recipient: str) -> Path:
    """Register the hub's age public key; the sender encrypts every package to it."""
    path = check_home(home, SENDER) / HUB_RECIPIENT_FILE
    recipient = recipient.strip()
    try:
        pyrage.x25519.Recipient.from_str(recipient)
    except Exception:
        raise RenkeiError(
            "基盤の公開鍵の形式が正しくありません（age1… の形式）", "not an age X25519 recipient (age1…)"
        ) from None
    path.write_text(recipient + "\n", encoding="utf-8")
    return path


def hub_recipient(home: Path) -> str | None:
    path = home / HUB_RECIPIENT_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def seal(extract_dir: Path, manifest: Manifest, sender: SenderIdentity, recipient: str, out: Path) -> Path:
    """Write ``out`` (a .rkpkg file) from an extract directory; the caller makes it visible atomically."""
    package_id = secrets.token_hex(16)
    work = out.parent
    inner = work / f".{out.name}.inner.tar"
    payload = work / f".{out.name}.payload.age"
    try:
        with tarfile.open(inner, "w", format=tarfile.PAX_FORMAT) as tar:
            add_bytes(tar, SEAL, Seal(package_id=package_id, sender=sender.name).model_dump_json().encode())
            add_file(tar, MANIFEST_FILE, extract_dir / MANIFEST_FILE)
            add_file(tar, DATA_FILE, extract_dir / DATA_FILE)
        pyrage.encrypt_file(str(inner), str(payload), [pyrage.x25519.Recipient.from_str(recipient)])
        envelope = Envelope(
            package_id=package_id,
            sender=sender.name,
            dataset=manifest.dataset,
            as_of=manifest.as_of,
            payload_sha256=sha256_file(payload),
            payload_bytes=payload.stat().st_size,
            created_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        )
        body = envelope.to_bytes()
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
            add_bytes(tar, ENVELOPE, body)
            add_bytes(tar, SIGNATURE, base64.b64encode(sender.signing_key.sign(body)))
            add_file(tar, PAYLOAD, payload)
    finally:
        inner.unlink(missing_ok=True)
        payload.unlink(missing_ok=True)
    return out


def package_name(dataset: str, as_of: dt.date) -> str:
    return f"{dataset}_{as_of.isoformat()}{PACKAGE_SUFFIX}"
