"""Settings of the web portal: the ``web`` section of the hub's one settings table (renkei.hub.settings), held
by :class:`WebSettings` with what the portal is built with besides (card settings, clock, password hashing).

docs/settings.md lists them with every other setting; a test keeps the two in step. ``renkei serve`` takes them
from the hub's settings, its ``--trusted-proxy`` and ``--client-cert-header`` winning. Invalid values are an
error at start-up, never silently replaced by a default (fail closed).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pydantic import ValidationError

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.passwords import Passwords
from renkei.hub.settings import DEFAULTS, MIN_HSTS_SECONDS, IPNetwork, WebSection, proxy_network

__all__ = ["DEFAULT_CLIENT_CERT_HEADER", "DEFAULT_MAX_BODY_BYTES", "MIN_HSTS_SECONDS", "WebSettings"]

DEFAULT_CLIENT_CERT_HEADER = DEFAULTS.web.client_cert_header
DEFAULT_MAX_BODY_BYTES = DEFAULTS.web.max_body_bytes
SECTION = "web."


@dataclass(frozen=True)
class WebSettings:
    """What ``create_app`` needs besides the hub's home. ``card_settings`` None: the hub's ``webauthn.*``."""

    trusted_proxies: tuple[str, ...] = DEFAULTS.web.trusted_proxies
    client_cert_header: str = DEFAULTS.web.client_cert_header
    max_body_bytes: int = DEFAULTS.web.max_body_bytes
    hsts_max_age: int = DEFAULTS.web.hsts_max_age
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
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            name = SECTION + ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
            reason = error["msg"].removeprefix("Value error, ")
            raise RenkeiError(f"ポータルの設定 {name} の値が正しくありません", f"{name}: {reason}") from None
        object.__setattr__(self, "proxy_networks", tuple(proxy_network(p) for p in self.trusted_proxies))

    @classmethod
    def from_section(
        cls,
        web: WebSection,
        *,
        trusted_proxies: tuple[str, ...] = (),
        client_cert_header: str = "",
        card_settings: CardSettings | None = None,
    ) -> WebSettings:
        """The hub's ``web`` settings, under what ``renkei serve`` was given (empty: not given)."""
        return cls(
            trusted_proxies=trusted_proxies or web.trusted_proxies,
            client_cert_header=client_cert_header or web.client_cert_header,
            max_body_bytes=web.max_body_bytes,
            hsts_max_age=web.hsts_max_age,
            card_settings=card_settings,
        )

    def is_trusted_proxy(self, address: str) -> bool:
        """Whether the TCP peer ``address`` is one of the configured reverse proxies."""
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.proxy_networks)
