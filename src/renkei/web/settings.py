"""Settings of the web portal: the ``web`` section of the hub's one settings table (renkei.hub.settings), held
by :class:`WebSettings` with what the portal is built with besides (card settings, clock, password hashing).

docs/settings.md lists them with every other setting; a test keeps the two in step. ``renkei serve`` takes them
from the hub's settings, its ``--trusted-proxy`` and ``--client-cert-header`` winning. Invalid values are an
error at start-up, never silently replaced by a default (fail closed).
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.passwords import Passwords
from renkei.hub.settings import DEFAULTS, MIN_HSTS_SECONDS, IPNetwork, WebSection, proxy_network

__all__ = [
    "DEFAULT_CLIENT_CERT_HEADER",
    "DEFAULT_MAX_BODY_BYTES",
    "MIN_HSTS_SECONDS",
    "MIN_PROXY_SECRET",
    "PROXY_SECRET_HEADER",
    "WebSettings",
]

DEFAULT_CLIENT_CERT_HEADER = DEFAULTS.web.client_cert_header
DEFAULT_MAX_BODY_BYTES = DEFAULTS.web.max_body_bytes
SECTION = "web."
PROXY_SECRET_HEADER = "X-Renkei-Proxy-Secret"  # noqa: S105 (a header name) set by the proxy over TCP
MIN_PROXY_SECRET = 32  # characters; `openssl rand -hex 32` gives 64
_SECRET = re.compile(rf"[!-~]{{{MIN_PROXY_SECRET},256}}")  # printable ASCII, no space: one header value


@dataclass(frozen=True)
class WebSettings:
    """What ``create_app`` needs besides the hub's home. ``card_settings`` None: the hub's ``webauthn.*``."""

    trusted_proxies: tuple[str, ...] = DEFAULTS.web.trusted_proxies
    proxy_secret: str = field(default="", repr=False)  # from --proxy-secret-file, never from a settings file
    proxy_socket: bool = False  # listening on a Unix socket (--uds)
    client_cert_header: str = DEFAULTS.web.client_cert_header
    max_body_bytes: int = DEFAULTS.web.max_body_bytes
    hsts_max_age: int = DEFAULTS.web.hsts_max_age
    max_workspaces: int = DEFAULTS.web.max_workspaces
    workspace_idle_seconds: int = DEFAULTS.web.workspace_idle_seconds
    step_up_minutes: int = DEFAULTS.web.step_up_minutes  # approvals and exports: renkei.hub.access.step_up
    card_settings: CardSettings | None = None
    passwords: Passwords | None = None  # None: the production argon2 parameters
    clock: Clock = SYSTEM_CLOCK
    proxy_networks: tuple[IPNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:  # the table's rules, so that settings made in code obey the same bounds as hub.toml
            WebSection(
                trusted_proxies=self.trusted_proxies,
                client_cert_header=self.client_cert_header,
                max_body_bytes=self.max_body_bytes,
                hsts_max_age=self.hsts_max_age,
                max_workspaces=self.max_workspaces,
                workspace_idle_seconds=self.workspace_idle_seconds,
                step_up_minutes=self.step_up_minutes,
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            name = SECTION + ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
            reason = error["msg"].removeprefix("Value error, ")
            raise RenkeiError(f"ポータルの設定 {name} の値が正しくありません", f"{name}: {reason}") from None
        object.__setattr__(self, "proxy_networks", tuple(proxy_network(p) for p in self.trusted_proxies))
        _check_proxy_secret(self.proxy_networks, self.proxy_secret)

    @classmethod
    def from_section(
        cls,
        web: WebSection,
        *,
        trusted_proxies: tuple[str, ...] = (),
        client_cert_header: str = "",
        proxy_secret: str = "",
        proxy_socket: bool = False,
        card_settings: CardSettings | None = None,
    ) -> WebSettings:
        """The hub's ``web`` settings, under what ``renkei serve`` was given (empty: not given)."""
        return cls(
            trusted_proxies=trusted_proxies or web.trusted_proxies,
            proxy_secret=proxy_secret,
            proxy_socket=proxy_socket,
            client_cert_header=client_cert_header or web.client_cert_header,
            max_body_bytes=web.max_body_bytes,
            hsts_max_age=web.hsts_max_age,
            max_workspaces=web.max_workspaces,
            workspace_idle_seconds=web.workspace_idle_seconds,
            step_up_minutes=web.step_up_minutes,
            card_settings=card_settings,
        )

    @property
    def step_up_window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.step_up_minutes)

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
