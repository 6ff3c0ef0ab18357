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
``$ssl_client_escaped_cert``) and the client's address in ``X-Forwarded-For``. Anyone can send those headers,
so they are believed only on a connection that is provably the proxy's:

- through the Unix socket renkei listens on (``renkei serve --uds``, :attr:`WebSettings.proxy_socket`): the
  socket is 0660 in a directory of the proxy's group, so nobody else can connect (preferred);
- or over TCP from a configured trusted proxy address **that also sends the shared secret**
  (:data:`PROXY_SECRET_HEADER`, compared in constant time): on the proxy's machine every local user can
  connect from the proxy's loopback address, so the address alone proves nothing. A request from a trusted
  address without the right secret is refused outright (:attr:`ClientOrigin.refusal`), never served as
  someone else's.

Of ``X-Forwarded-For`` only the right-most entry counts: the hop our proxy added (it appends, or replaces the
client's header); everything to its left is the client's say-so.

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
from renkei.web.settings import PROXY_SECRET_HEADER, WebSettings

TLS_EXTENSION = "tls"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}  # the extension's tls_version values


@dataclass(frozen=True, slots=True)
class ClientOrigin:
    """Where a request comes from, as far as the app can trust it."""

    certificate: bytes | None  # DER of the client certificate presented, if any reached us
    address: str  # the client's IP address, for the audit log and the throttle
    via_proxy: bool
    refusal: str = ""  # why a request from a trusted proxy's address is refused ("" when it is not)


def client_origin(scope: Scope, settings: WebSettings) -> ClientOrigin:
    """The certificate and address of the request: from the TLS connection, or from a trusted proxy's headers."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    headers = Headers(scope=scope)
    if settings.proxy_socket and on_unix_socket(scope):
        return _from_proxy(headers, settings, peer)
    if settings.is_trusted_proxy(peer):
        presented = headers.getlist(PROXY_SECRET_HEADER)
        if not settings.proxy_secret_ok(presented):
            # The peer's address is believed (it is the TCP peer); nothing it claims is.
            refusal = "proxy_secret_wrong" if presented else "proxy_secret_missing"
            return ClientOrigin(None, peer, via_proxy=False, refusal=refusal)
        return _from_proxy(headers, settings, peer)
    return ClientOrigin(peer_certificate(scope), peer, via_proxy=False)


def on_unix_socket(scope: Scope) -> bool:
    """Whether the request came through a Unix socket: no client address, and a server without a port."""
    server = scope.get("server")
    return (
        scope.get("client") is None
        and isinstance(server, tuple | list)
        and len(server) == 2
        and server[1] is None
    )


def _from_proxy(headers: Headers, settings: WebSettings, peer: str) -> ClientOrigin:
    forwarded = headers.getlist(settings.client_cert_header)
    # Exactly one header: the proxy overwrites the client's own; two would mean it did not.
    certificate = parse_forwarded_cert(forwarded[0]) if len(forwarded) == 1 else None
    address = forwarded_address(headers.getlist("x-forwarded-for")) or peer
    return ClientOrigin(certificate, address, via_proxy=True)


def forwarded_address(values: list[str]) -> str:
    """The address our proxy saw: the right-most entry of X-Forwarded-For, across all its lines.

    That is the hop the proxy added, whether it appends (``$proxy_add_x_forwarded_for``, or a new header line)
    or replaces the header (``$remote_addr``); entries to its left are the client's say-so.
    """
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
