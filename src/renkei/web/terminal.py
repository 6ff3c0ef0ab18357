"""How the terminal's client certificate (and the client's address) reach the app.

Two set-ups, described in docs/web.md:

**A. renkei's own TLS server** (``renkei serve --tls-cert … --tls-key …``). The handshake asks for a client
certificate signed by the hub's terminal CA (see :mod:`renkei.web.server`). uvicorn (checked: 0.54) does not
put the peer certificate into the ASGI scope, so :class:`ClientCertProtocol`, a small subclass of uvicorn's
h11 protocol, reads it from the TLS connection once per connection and hands it to the app in the scope as
the standard ASGI TLS extension: ``scope["extensions"]["tls"]["client_cert_chain"][0]`` (PEM). Any ASGI server
that implements that extension works the same way.

**B. Behind a reverse proxy** that terminates TLS and verifies the certificate itself (nginx). The proxy passes
the certificate in a header (:attr:`WebSettings.client_cert_header`, URL-encoded PEM as nginx's
``$ssl_client_escaped_cert``) and the client's address in ``X-Forwarded-For``. Both headers are believed
**only** when the TCP peer is a configured trusted proxy; from anyone else they are ignored, since anyone can
send them.

Either way the app gets DER bytes (or None) and an address; :func:`renkei.hub.access.terminals.identify_terminal`
decides whether they prove a registered terminal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from renkei.hub.access.terminals import parse_forwarded_cert
from renkei.web.settings import WebSettings

TLS_EXTENSION = "tls"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}  # the extension's tls_version values


@dataclass(frozen=True, slots=True)
class ClientOrigin:
    """Where a request comes from, as far as the app can trust it."""

    certificate: bytes | None  # DER of the client certificate presented, if any reached us
    address: str  # the client's IP address, for the audit log and the throttle
    via_proxy: bool


def client_origin(scope: Scope, settings: WebSettings) -> ClientOrigin:
    """The certificate and address of the request: from the TLS connection, or from a trusted proxy's headers."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    if settings.is_trusted_proxy(peer):
        headers = Headers(scope=scope)
        forwarded = headers.getlist(settings.client_cert_header)
        # Exactly one header: the proxy overwrites the client's own; two would mean it did not.
        certificate = parse_forwarded_cert(forwarded[0]) if len(forwarded) == 1 else None
        address = forwarded_address(headers.getlist("x-forwarded-for")) or peer
        return ClientOrigin(certificate, address, via_proxy=True)
    return ClientOrigin(peer_certificate(scope), peer, via_proxy=False)


def forwarded_address(values: list[str]) -> str:
    """The address our proxy saw: the last entry of X-Forwarded-For (earlier ones are the client's say-so)."""
    if not values:
        return ""
    last = values[-1].split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return ""


def peer_certificate(scope: Scope) -> bytes | None:
    """The DER of the client certificate from the ASGI TLS extension, if the server provides it."""
    extensions = scope.get("extensions") or {}
    tls = extensions.get(TLS_EXTENSION)
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    first = next(iter(chain), None) if chain else None
    if not isinstance(first, str):
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(first)
    except ValueError:
        return None


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI TLS extension for one connection (the fields the handshake gives us)."""
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class WithTLSExtension:
    """Adds one connection's TLS extension to the scope of each request on that connection."""

    def __init__(self, app: ASGIApp, extension: dict[str, Any]) -> None:
        self.app = app
        self.extension = extension

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {
                **scope,
                "extensions": {**(scope.get("extensions") or {}), TLS_EXTENSION: self.extension},
            }
        await self.app(scope, receive, send)


class ClientCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ASGI TLS extension carrying the client certificate.

    asyncio calls ``connection_made`` after the TLS handshake, so the peer certificate is known here; the
    connection's app is wrapped once, and every request on the connection sees the same certificate.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = WithTLSExtension(self.app, tls_extension(ssl_object))
