"""A software FIDO2 authenticator standing in for a staff card (職員証) in tests.

It holds one EC P-256 credential and answers WebAuthn options the way a browser plus a security key would:
:meth:`SoftwareAuthenticator.create` returns the JSON of ``navigator.credentials.create()`` with attestation
``none``; :meth:`SoftwareAuthenticator.get` returns the JSON of ``navigator.credentials.get()``, an assertion
signed over ``authenticatorData || SHA-256(clientDataJSON)``. Both are the shapes py_webauthn parses.

``origin`` is where the "browser" says the page came from (change it to play a phishing site); the RP id is
taken from the options, as a real client does. :meth:`clone` copies the key and the counter, to play a
cloned card.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url, encode_cbor

FLAG_USER_PRESENT = 0x01
FLAG_ATTESTED_DATA = 0x40
COSE_EC2, COSE_ES256, COSE_P256 = 2, -7, 1


@dataclass
class SoftwareAuthenticator:
    origin: str = "https://localhost"
    sign_count: int = 0
    counter_step: int = 1  # 0 plays a card without a signature counter
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    aaguid: bytes = bytes(16)

    def create(self, options_json: str) -> dict[str, Any]:
        """The registration response (``PublicKeyCredential`` JSON) for these creation options."""
        options = json.loads(options_json)
        client_data = self._client_data("webauthn.create", options["challenge"])
        auth_data = (
            self._auth_data_head(options["rp"]["id"], FLAG_USER_PRESENT | FLAG_ATTESTED_DATA)
            + self.aaguid
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + encode_cbor(self._cose_public_key())
        )
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        response = {
            "clientDataJSON": _b64(client_data),
            "attestationObject": _b64(attestation),
            "transports": ["nfc"],
        }
        return self._credential(response)

    def get(self, options_json: str) -> dict[str, Any]:
        """The authentication response (a signed assertion) for these request options."""
        options = json.loads(options_json)
        allowed = [entry["id"] for entry in options.get("allowCredentials", [])]
        if allowed and _b64(self.credential_id) not in allowed:
            raise LookupError("this card is not among the allowed credentials")
        self.sign_count += self.counter_step
        client_data = self._client_data("webauthn.get", options["challenge"])
        auth_data = self._auth_data_head(options["rpId"], FLAG_USER_PRESENT)
        signature = self.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        response = {
            "clientDataJSON": _b64(client_data),
            "authenticatorData": _b64(auth_data),
            "signature": _b64(signature),
        }
        return self._credential(response)

    def clone(self) -> SoftwareAuthenticator:
        """A second card with the same key and the same counter: what a cloned card looks like."""
        return copy.copy(self)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode()

    def _auth_data_head(self, rp_id: str, flags: int) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count)

    def _cose_public_key(self) -> dict[int, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            1: COSE_EC2,
            3: COSE_ES256,
            -1: COSE_P256,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }

    def _credential(self, response: dict[str, Any]) -> dict[str, Any]:
        credential_id = _b64(self.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
        }


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)
