"""The real portal in real Chromium: a TLS server over a hub home, the demo staff, and a browser per session.

:func:`start_portal` builds a hub home (audit key, KEK, terminal CA, catalog on SQLite, the bundled datasets
with snapshots, one enrolled terminal; :func:`tests.web.support.build_world`), designates the demo staff of
``renkei demo`` (:data:`renkei.cli.demo.DEMO_PEOPLE`) with TOTP, and serves it with renkei's own TLS server
(uvicorn with :class:`renkei.web.terminal.ClientCertProtocol`) on 127.0.0.1. The browser reaches it as
``https://localhost:<port>``: WebAuthn needs a host name as the relying party, and Chromium lets WebAuthn run
on localhost although the demo server certificate is self-signed.

The terminal's client certificate is presented by Playwright's ``client_certificates`` context option
(Playwright ≥ 1.46): Playwright's driver makes the TLS connection to the server with the terminal's key, as the
browser of a registered terminal would; the server sees a real client certificate in a real handshake.

The staff card is Chromium's own virtual WebAuthn authenticator (DevTools ``WebAuthn.addVirtualAuthenticator``),
so the page's ``webauthn.js`` runs ``navigator.credentials.create()``/``get()`` for real.

:func:`check_page` saves a screenshot of each page visited under ``test-artifacts/screenshots/`` and runs
axe-core on it (WCAG 2.1 A and AA rules); serious or critical violations fail the test.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from renkei.cli.demo import DEMO_PEOPLE
from renkei.hub.access import totp
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.designation import designate_user
from renkei.hub.access.passwords import Passwords, set_password
from renkei.hub.access.people import Role, User
from renkei.hub.access.terminals import CA_CERT_FILE
from renkei.hub.catalog import get_or_create_department
from renkei.web.server import TLSFiles, server_config
from tests.support import TEST_HASHING
from tests.support.tls import free_port, running, self_signed
from tests.web.support import Person, WebWorld, terminal_key_files, world_on

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by `make browser-deps`
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = ROOT / "tests" / "browser" / "vendor" / "axe-core" / "axe.min.js"  # for the tests only, not served
DEMO_PASSWORD = (
    "港の見える丘で朝の珈琲を"  # what each demo user chose when they changed the one-time password
)
FAILING_IMPACTS = ("serious", "critical")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@dataclass
class Portal:
    world: WebWorld
    base_url: str
    staff: dict[Role, Person]  # one demo user per role (the steward is 市民課's, which owns juki)
    terminal_files: tuple[Path, Path]  # the terminal's certificate and key (PEM)

    def client_certificates(self) -> list[dict[str, str]]:
        cert, key = self.terminal_files
        return [{"origin": self.base_url, "certPath": str(cert), "keyPath": str(key)}]


@contextmanager
def start_portal(directory: Path) -> Iterator[Portal]:
    """The portal over TLS on a free loopback port, with the demo staff designated and TOTP enrolled."""
    port = free_port()
    base_url = f"https://localhost:{port}"
    cards = CardSettings(rp_id="localhost", origins=(base_url,))
    with world_on(f"sqlite:///{directory / 'catalog.db'}", directory, card_settings=cards) as world:
        staff = designate_demo_staff(world)
        server_files = self_signed(directory, "localhost", server=True)
        files = TLSFiles(*server_files, client_ca=world.home / CA_CERT_FILE)
        config = server_config(
            world.app, host="127.0.0.1", port=port, tls=files, log_level="critical", configure_logging=False
        )
        with running(config):
            yield Portal(world, base_url, staff, terminal_key_files(world.home, "term-01"))


def designate_demo_staff(world: WebWorld) -> dict[Role, Person]:
    """``renkei demo``'s staff, each with TOTP and a password they have already changed (so no forced change)."""
    staff: dict[Role, Person] = {}
    for login_id, name, role, department in DEMO_PEOPLE:
        if role in staff:  # the second steward (介護保険課) is not needed by the journeys
            continue
        staff[role] = designate(world, login_id, name, role, department, must_change=False)
    return staff


def designate(
    world: WebWorld, login_id: str, name: str, role: Role, department: str, *, must_change: bool
) -> Person:
    """What an admin's ``renkei user add`` and ``renkei user totp`` do; ``must_change=False``: already changed."""
    passwords = Passwords(TEST_HASHING)
    hub = world.app.state.portal.hub
    with world.session() as session:
        get_or_create_department(session, department)
        user = designate_user(
            session,
            hub.audit,
            login_id=login_id,
            display_name=name,
            role=role,
            department=department,
            password=DEMO_PASSWORD,
            actor="demo",
            passwords=passwords,
        )
        if not must_change:
            set_password(
                session,
                user,
                DEMO_PASSWORD,
                passwords=passwords,
                changed_by=login_id,
                must_change=False,
                clock=world.clock,
            )
        uri = totp.enroll_totp(session, user, kek=hub.kek, enrolled_by="demo", clock=world.clock)
        session.commit()
        session.refresh(user)
        session.expunge(user)
    return Person(user, DEMO_PASSWORD, totp_secret=uri.split("secret=")[1].split("&")[0])


def user_of(world: WebWorld, person: Person) -> User:
    with world.session() as session:
        return session.get_one(User, person.user.id)


# --- what a user does in the browser -----------------------------------------------------------------------


def password_step(page: Page, person: Person) -> None:
    page.goto("/login")
    page.get_by_label("利用者ID").fill(person.login_id)
    page.get_by_label("パスワード", exact=True).fill(person.password)
    page.get_by_role("button", name="次へ").click()


def login_with_totp(page: Page, portal: Portal, person: Person) -> None:
    """ID and password, then the code the person's authenticator app shows now (the next 30-second step)."""
    portal.world.clock.advance(seconds=30)
    password_step(page, person)
    enter_code(page, portal, person)
    expect(page.locator("header .who")).to_be_visible()  # signed in: the next page has loaded


def enter_code(page: Page, portal: Portal, person: Person) -> None:
    page.get_by_label("確認コード").fill(totp.current_code(person.totp_secret, portal.world.clock.now()))
    page.get_by_role("button", name="次へ").click()


def logout(page: Page) -> None:
    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url(re.compile(r"/login$"))


def virtual_card(page: Page) -> CDPSession:
    """A staff card on the reader: Chromium's virtual CTAP2 authenticator, attached to this page's browser tab."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "nfc",
                "hasResidentKey": False,
                "hasUserVerification": False,
                "automaticPresenceSimulation": True,  # the card is already on the reader
            }
        },
    )
    return cdp


def new_context(browser: Any, portal: Portal, *, certificate: bool = True, **options: Any) -> BrowserContext:
    """A browser profile on the terminal (``certificate=False``: a machine that is not a registered terminal)."""
    extra: dict[str, Any] = {"client_certificates": portal.client_certificates()} if certificate else {}
    context: BrowserContext = browser.new_context(
        base_url=portal.base_url,
        ignore_https_errors=True,  # the demo server certificate is self-signed
        locale="ja-JP",
        viewport={"width": 1280, "height": 900},
        **extra,
        **options,
    )
    context.set_default_timeout(15_000)
    return context


def csp_refusals(context: BrowserContext) -> list[str]:
    """A list that fills with every Content-Security-Policy refusal Chromium reports on the context's pages."""
    refused: list[str] = []
    context.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return refused


# --- what every page visited gets: a screenshot and an accessibility check --------------------------------


def check_page(page: Page, name: str) -> None:
    """Save a full-page screenshot as ``<name>.png`` and fail on serious or critical axe-core violations."""
    page.wait_for_load_state()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert violations == [], f"{name}: {page.url}\n" + json.dumps(violations, ensure_ascii=False, indent=1)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is now."""
    # Evaluated through DevTools, which the page's CSP does not govern: the portal needs no exception for it.
    page.evaluate(_axe_source())
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]};
            const result = await axe.run(document, options);
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }""",
        AXE_TAGS,
    )
    return [v for v in found if v["impact"] in FAILING_IMPACTS]


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")
