"""Settings of the web portal, declared once in :data:`SETTINGS` (name, default, help) and held by :class:`WebSettings`.

The table feeds ``renkei serve --help`` and docs/web.md; a test keeps the three in step. Invalid values are an
error at start-up, never silently replaced by a default (fail closed).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.passwords import Passwords

DEFAULT_CLIENT_CERT_HEADER = "X-Renkei-Client-Cert"
DEFAULT_MAX_BODY_BYTES = 256 * 1024  # forms and JSON are small; a WebAuthn response is a few KiB
MIN_HSTS_SECONDS = 365 * 24 * 3600  # ASVS v5.0.0-3.4.1: at least one year
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: object
    help_ja: str
    help_en: str


SETTINGS = (
    Setting(
        "trusted_proxies",
        (),
        "クライアント証明書ヘッダと X-Forwarded-For を信用するリバースプロキシのアドレス（またはネットワーク）",
        "addresses (or networks) of reverse proxies whose client-certificate and X-Forwarded-For headers are believed",
    ),
    Setting(
        "client_cert_header",
        DEFAULT_CLIENT_CERT_HEADER,
        "信用するプロキシが端末のクライアント証明書（URL エンコードした PEM）を入れるヘッダ",
        "header in which a trusted proxy passes the terminal's client certificate (URL-encoded PEM)",
    ),
    Setting(
        "max_body_bytes",
        DEFAULT_MAX_BODY_BYTES,
        "リクエスト本文の上限（バイト）。超えると 413",
        "largest request body accepted, in bytes; larger ones get 413",
    ),
    Setting(
        "hsts_max_age",
        2 * MIN_HSTS_SECONDS,
        "Strict-Transport-Security の max-age（秒、1 年以上）",
        "max-age of Strict-Transport-Security, in seconds (at least one year)",
    ),
)


@dataclass(frozen=True)
class WebSettings:
    """What ``create_app`` needs besides the hub's home. ``card_settings`` None: from RENKEI_WEBAUTHN_*."""

    trusted_proxies: tuple[str, ...] = ()
    client_cert_header: str = DEFAULT_CLIENT_CERT_HEADER
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    hsts_max_age: int = 2 * MIN_HSTS_SECONDS
    card_settings: CardSettings | None = None
    passwords: Passwords | None = None  # None: the production argon2 parameters
    clock: Clock = SYSTEM_CLOCK
    proxy_networks: tuple[IPNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "proxy_networks", tuple(_network(p) for p in self.trusted_proxies))
        if not _HEADER_NAME.fullmatch(self.client_cert_header):
            raise RenkeiError(
                f"ヘッダ名が不正です: {self.client_cert_header!r}",
                f"invalid header name {self.client_cert_header!r}",
            )
        if self.max_body_bytes < 4096:
            raise RenkeiError(
                "max_body_bytes は 4096 以上にしてください", "max_body_bytes must be at least 4096"
            )
        if self.hsts_max_age < MIN_HSTS_SECONDS:
            raise RenkeiError(
                "hsts_max_age は 1 年（31536000 秒）以上にしてください",
                "hsts_max_age must be at least one year (31536000 s)",
            )

    def is_trusted_proxy(self, address: str) -> bool:
        """Whether the TCP peer ``address`` is one of the configured reverse proxies."""
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.proxy_networks)


def _network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise RenkeiError(
            f"信用するプロキシのアドレスが不正です: {text!r}（例: 127.0.0.1, 10.0.0.0/24）",
            f"invalid trusted proxy address {text!r} (e.g. 127.0.0.1, 10.0.0.0/24)",
        ) from None
