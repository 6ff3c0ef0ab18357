"""Serving the portal with uvicorn: renkei's own TLS server (set-up A) or plain HTTP behind a proxy (set-up B).

With TLS, the server asks every client for a certificate and accepts only one signed by the hub's terminal
CA (``ssl.CERT_OPTIONAL``: a connection without a certificate is let through, so that the browser shows the
portal's own "terminal not registered" page and the refusal is audited; a certificate from anywhere else
fails the handshake). TLS 1.2 is the minimum (ASVS v5.0.0-12.1.1). The certificate reaches the app through
:class:`renkei.web.terminal.ClientCertProtocol`.

uvicorn's own proxy-header handling is switched off: the app alone decides, by its trusted-proxy setting,
whose X-Forwarded-For to believe, and it must see the real TCP peer to decide.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from renkei.web.terminal import ClientCertProtocol


@dataclass(frozen=True)
class TLSFiles:
    certificate: Path  # the server's certificate (chain), PEM
    key: Path  # its private key, PEM
    client_ca: Path  # the hub's terminal CA certificate: which client certificates the handshake accepts


def tls_context(files: TLSFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.certificate, files.key)
    context.load_verify_locations(cafile=files.client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def _context_factory(
    files: TLSFiles,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    def factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return tls_context(files)

    return factory


def server_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    tls: TLSFiles | None,
    log_level: str = "info",
    configure_logging: bool = True,
) -> uvicorn.Config:
    """uvicorn's configuration for the portal (``configure_logging=False`` leaves the process's logging alone)."""
    extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=ClientCertProtocol,
        ws="none",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        ssl_context_factory=_context_factory(tls) if tls is not None else None,
        log_level=log_level,
        **extra,
    )
