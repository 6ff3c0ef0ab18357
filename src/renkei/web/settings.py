"""Settings of the web portal, declared once in :data:`SETTINGS` (name, default, help) and held by :class:`WebSettings`.

The table feeds ``renkei serve --help`` and docs/web.md; a test keeps the three in step. Invalid values are an
error at start-up, never silently replaced by a default (fail closed).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass, field

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.passwords import Passwords

DEFAULT_CLIENT_CERT_HEADER = "X-Renkei-Client-Cert"
PROXY_SECRET_HEADER = "X-Renkei-Proxy-Secret"  # noqa: S105 (a header name) set by the proxy over TCP
MIN_PROXY_SECRET = 32  # characters; `openssl rand -hex 32` gives 64
DEFAULT_MAX_BODY_BYTES = 256 * 1024  # forms and JSON are small; a WebAuthn response is a few KiB
MIN_HSTS_SECONDS = 365 * 24 * 3600  # ASVS v5.0.0-3.4.1: at least one year
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_SECRET = re.compile(rf"[!-~]{{{MIN_PROXY_SECRET},256}}")  # printable ASCII, no space: one header value

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
        "proxy_secret",
        "",
        "TCP で待ち受けるとき、信用するプロキシが X-Renkei-Proxy-Secret ヘッダで送る合言葉（32 文字以上、"
        "--proxy-secret-file）。これがないと --trusted-proxy は使えません",
        "the secret a trusted proxy sends in X-Renkei-Proxy-Secret when renkei listens on TCP (at least 32"
        " characters, --proxy-secret-file); --trusted-proxy needs it",
    ),
    Setting(
        "proxy_socket",
        False,
        "Unix ソケットで待ち受ける（--uds）: そのソケットに接続できるのはプロキシだけなので、ソケットからの"
        "証明書ヘッダと X-Forwarded-For を信用する",
        "listening on a Unix socket (--uds): only the proxy can connect to it, so the certificate header and"
        " X-Forwarded-For are believed on connections through it",
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
    proxy_secret: str = field(default="", repr=False)
    proxy_socket: bool = False
    client_cert_header: str = DEFAULT_CLIENT_CERT_HEADER
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    hsts_max_age: int = 2 * MIN_HSTS_SECONDS
    card_settings: CardSettings | None = None
    passwords: Passwords | None = None  # None: the production argon2 parameters
    clock: Clock = SYSTEM_CLOCK
    proxy_networks: tuple[IPNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "proxy_networks", tuple(_network(p) for p in self.trusted_proxies))
        _check_proxy_secret(self.proxy_networks, self.proxy_secret)
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
        """Whether the TCP peer ``address`` is one of the configured reverse proxies (its secret not yet checked)."""
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.proxy_networks)

    def proxy_secret_ok(self, presented: list[str]) -> bool:
        """Whether the request carries exactly one copy of the proxy's secret (compared in constant time)."""
        if not self.proxy_secret or len(presented) != 1:
            return False
        return hmac.compare_digest(self.proxy_secret.encode(), presented[0].encode("utf-8", "replace"))


def _check_proxy_secret(networks: tuple[IPNetwork, ...], secret: str) -> None:
    """A proxy over TCP must prove itself: its address alone is shared by everyone on that machine."""
    if networks and not secret:
        raise RenkeiError(
            "--trusted-proxy には --proxy-secret-file（プロキシと共有する合言葉）が必要です。同じ機械の誰もが"
            "プロキシのアドレスから接続できるため、アドレスだけでは端末を偽れます。推奨は --uds（Unix ソケット）です",
            "--trusted-proxy needs --proxy-secret-file (a secret shared with the proxy): anyone on that machine"
            " can connect from the proxy's address and pose as any terminal; --uds (a Unix socket) is preferred",
        )
    if secret and not _SECRET.fullmatch(secret):
        raise RenkeiError(
            f"プロキシの合言葉は空白を含まない {MIN_PROXY_SECRET} 文字以上の ASCII 文字にしてください"
            "（例: openssl rand -hex 32）",
            f"the proxy secret must be at least {MIN_PROXY_SECRET} printable ASCII characters without spaces"
            " (e.g. openssl rand -hex 32)",
        )


def _network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError:
        raise RenkeiError(
            f"信用するプロキシのアドレスが不正です: {text!r}（例: 127.0.0.1, 10.0.0.0/24）",
            f"invalid trusted proxy address {text!r} (e.g. 127.0.0.1, 10.0.0.0/24)",
        ) from None
