"""How the terminal's certificate reaches the app, with real servers and real client certificates.

- Set-up A, renkei's own TLS server (uvicorn with :class:`ClientCertProtocol`) on 127.0.0.1: a certificate
  from the hub's terminal CA identifies the enrolled terminal; a self-signed one fails the handshake; no
  certificate gets the portal, but no login (refused and audited). Also ``renkei serve`` itself, as a process.
- Set-up B, behind a reverse proxy: the certificate header and X-Forwarded-For count only when the TCP peer
  is a configured trusted proxy (in-process, and through a real plain-HTTP server, where uvicorn's own proxy
  handling must not interfere).
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from renkei.errors import RenkeiError
from renkei.hub.access import totp
from renkei.hub.access.people import Role
from renkei.hub.access.terminals import CA_CERT_FILE
from renkei.hub.access.throttle import ADDRESS_POLICY
from renkei.hub.db import DATABASE_URL_ENV
from renkei.web.cookies import CSRF_COOKIE
from renkei.web.server import (
    SOCKET_MODE,
    TLSFiles,
    access_log_off_the_loop,
    bind_unix_socket,
    server_config,
)
from renkei.web.settings import DEFAULT_CLIENT_CERT_HEADER, PROXY_SECRET_HEADER, WebSettings
from tests.support.tls import free_port, running, self_signed
from tests.web.support import Person, WebWorld, terminal_key_files, world_on

HEADER = DEFAULT_CLIENT_CERT_HEADER


def tls_client(port: int, server_cert: Path, client: tuple[Path, Path] | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=server_cert)
    if client is not None:
        context.load_cert_chain(*client)
    return httpx.Client(verify=context, base_url=f"https://127.0.0.1:{port}", follow_redirects=False)


def login(world: WebWorld, client: httpx.Client, person: Person) -> httpx.Response:
    """Both login steps with TOTP; returns the second step's response."""
    world.clock.advance(seconds=30)
    token = client.get("/api/v1/session/csrf").json()["csrf_token"]
    step1 = client.post(
        "/api/v1/session/login",
        json={"login_id": person.login_id, "password": person.password},
        headers={"X-CSRF-Token": token},
    )
    if step1.status_code != 200:
        return step1
    code = totp.current_code(person.totp_secret, world.clock.now())
    return client.post("/api/v1/session/totp", json={"code": code}, headers={"X-CSRF-Token": token})


@pytest.fixture(scope="module")
def server_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("server"), "renkei-test-server", server=True)


@pytest.fixture(scope="module")
def tls_server(shared_world: WebWorld, server_files: tuple[Path, Path]) -> Iterator[int]:
    port = free_port()
    files = TLSFiles(*server_files, client_ca=shared_world.home / CA_CERT_FILE)
    config = server_config(
        shared_world.app,
        host="127.0.0.1",
        port=port,
        tls=files,
        log_level="critical",
        configure_logging=False,
    )
    with running(config):
        yield port


# --- set-up A: renkei's own TLS server -------------------------------------------------------------------


def test_an_enrolled_terminals_certificate_identifies_it_over_tls(
    world: WebWorld, tls_server: int, server_files: tuple[Path, Path]
) -> None:
    person = world.person(Role.ANALYST)
    with tls_client(tls_server, server_files[0], terminal_key_files(world.home, "term-01")) as client:
        assert client.get("/api/v1/session/csrf").json()["terminal_registered"] is True
        signed_in = login(world, client, person)
        assert signed_in.status_code == 200, signed_in.text
        me = client.get("/api/v1/session").json()
        assert (me["login_id"], me["terminal"]) == (person.login_id, "term-01")
        assert client.get("/api/v1/session").headers["strict-transport-security"]
    logins = [e for e in world.entries() if e.action == "login.totp" and e.actor == person.login_id]
    assert [(e.result, e.terminal, e.client_addr) for e in logins] == [("ok", "term-01", "127.0.0.1")]


def test_a_self_signed_client_certificate_fails_the_handshake(
    world: WebWorld, tls_server: int, server_files: tuple[Path, Path], tmp_path: Path
) -> None:
    stranger = self_signed(tmp_path, "term-01", server=False)  # the same name, made elsewhere
    with tls_client(tls_server, server_files[0], stranger) as client, pytest.raises(httpx.TransportError):
        client.get("/api/v1/session/csrf")


def test_without_a_client_certificate_the_login_is_refused_and_logged(
    world: WebWorld, tls_server: int, server_files: tuple[Path, Path]
) -> None:
    person = world.person(Role.ANALYST)
    before = world.audit_size()
    with tls_client(tls_server, server_files[0], None) as client:
        assert client.get("/api/v1/session/csrf").json()["terminal_registered"] is False
        refused = login(world, client, person)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "terminal_not_registered"
    logged = [(e.action, e.result, e.reason, e.client_addr) for e in world.entries(before)]
    assert ("login.password", "denied", "unregistered_terminal", "127.0.0.1") in logged


def test_renkei_serve_runs_the_portal_with_tls(
    shared_world: WebWorld, server_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """The command itself, as a process: listens on loopback, asks for the client certificate."""
    port = free_port()
    launcher = (
        "import typer\nfrom renkei.cli.web import register\n"
        "app = typer.Typer()\n@app.callback()\ndef main() -> None: ...\nregister(app)\napp()\n"
    )
    command = [sys.executable, "-c", launcher, "serve", "--home", str(shared_world.home), "--port", str(port)]
    command += ["--tls-cert", str(server_files[0]), "--tls-key", str(server_files[1])]
    env = {**os.environ, DATABASE_URL_ENV: str(shared_world.engine.url)}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        try:
            answer = _first_answer(port, server_files[0], terminal_key_files(shared_world.home, "term-01"))
            assert answer.status_code == 200
            assert answer.json()["terminal_registered"] is True
            assert answer.headers["x-content-type-options"] == "nosniff"
            with tls_client(port, server_files[0], None) as anonymous:
                assert anonymous.get("/api/v1/session/csrf").json()["terminal_registered"] is False
        finally:
            process.terminate()
            output = process.communicate(timeout=15)[0].decode(errors="replace")
    assert f"https://127.0.0.1:{port}/" in output
    # The access log is kept (written by its own thread, renkei.web.server.access_log_off_the_loop).
    assert '"GET /api/v1/session/csrf HTTP/1.1" 200' in output


def test_the_access_log_is_written_off_the_callers_thread() -> None:
    """Each record reaches uvicorn's access formatter whole (its arguments intact), in the listener's thread;
    what is still queued is written before the block ends; afterwards the logger has its handlers back."""
    written: list[tuple[str, int]] = []

    class Recording(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append((self.format(record), threading.get_ident()))

    logger = logging.getLogger("tests.access")
    handler = Recording()
    handler.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    with access_log_off_the_loop("tests.access"):
        assert logger.handlers != [handler]
        for n in range(50):
            logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/page/{n}", "1.1", 200)
    assert logger.handlers == [handler]
    assert [line for line, _ in written] == [
        f'127.0.0.1:5000 - "GET /page/{n} HTTP/1.1" 200 OK' for n in range(50)
    ]
    assert threading.get_ident() not in {thread for _, thread in written}


def _first_answer(port: int, server_cert: Path, client_files: tuple[Path, Path]) -> httpx.Response:
    deadline = time.monotonic() + 40  # the process imports the whole stack first; this machine is slow
    while True:
        try:
            with tls_client(port, server_cert, client_files) as client:
                return client.get("/api/v1/session/csrf")
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- set-up B: behind a trusted reverse proxy ------------------------------------------------------------

PROXY = "10.0.0.1"
SECRET = secrets.token_hex(32)  # what --proxy-secret-file holds, and the proxy's configuration


@pytest.fixture(scope="module")
def proxied_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    directory = tmp_path_factory.mktemp("proxied")
    with world_on(
        f"sqlite:///{directory / 'catalog.db'}",
        directory,
        trusted_proxies=(PROXY, "127.0.0.1"),
        proxy_secret=SECRET,
    ) as w:
        yield w


def forwarded(
    world: WebWorld, client_addr: str = "192.0.2.10", secret: str | None = SECRET
) -> dict[str, str]:
    """What nginx sends: the verified certificate, URL-encoded ($ssl_client_escaped_cert), the address, and
    (over TCP) the proxy's secret; ``secret=None`` is what anyone else on the proxy's machine can send."""
    headers = {HEADER: quote(world.cert_pem), "X-Forwarded-For": client_addr}
    if secret is not None:
        headers[PROXY_SECRET_HEADER] = secret
    return headers


def test_the_proxy_header_counts_only_from_the_trusted_proxy(proxied_world: WebWorld) -> None:
    world = proxied_world
    person = world.person(Role.ANALYST)
    with world.client(None, address=PROXY) as via_proxy, world.client(None, address="10.0.0.99") as direct:
        via_proxy.headers.update(forwarded(world))
        direct.headers.update(forwarded(world))
        assert via_proxy.get("/api/v1/session/csrf").json()["terminal_registered"] is True
        assert direct.get("/api/v1/session/csrf").json()["terminal_registered"] is False
        before = world.audit_size()
        assert login(world, direct, person).status_code == 403
        assert login(world, via_proxy, person).status_code == 200
    addresses = [
        (e.action, e.result, e.client_addr) for e in world.entries(before) if e.action.startswith("login")
    ]
    assert ("login.password", "denied", "10.0.0.99") in addresses  # X-Forwarded-For ignored from others
    assert ("login.totp", "ok", "192.0.2.10") in addresses  # believed from the proxy


@pytest.mark.parametrize(
    ("headers", "registered", "address"),
    [
        ({"X-Forwarded-For": "203.0.113.5, 192.0.2.10"}, True, "192.0.2.10"),  # what our proxy saw: the last
        ({"X-Forwarded-For": "not-an-address"}, True, PROXY),
        ({HEADER: "garbage"}, False, "192.0.2.10"),
    ],
)
def test_what_a_proxy_forwards_is_checked(
    proxied_world: WebWorld, headers: dict[str, str], registered: bool, address: str
) -> None:
    world = proxied_world
    with world.client(None, address=PROXY) as client:
        client.headers.update({**forwarded(world), **headers})
        before = world.audit_size()
        assert client.get("/api/v1/session/csrf").json()["terminal_registered"] is registered
        assert login(world, client, world.person(Role.ANALYST)).status_code == (200 if registered else 403)
    assert {e.client_addr for e in world.entries(before) if e.action.startswith("login.")} == {address}


def test_two_certificate_headers_from_the_proxy_identify_nothing(proxied_world: WebWorld) -> None:
    world = proxied_world
    with world.client(None, address=PROXY) as client:
        response = client.get(
            "/api/v1/session/csrf",
            headers=[
                (HEADER, quote(world.cert_pem)),
                (HEADER, quote(world.cert_pem)),
                (PROXY_SECRET_HEADER, SECRET),
            ],
        )
    assert response.json()["terminal_registered"] is False


def test_a_real_server_behind_a_proxy_sees_the_tcp_peer(proxied_world: WebWorld) -> None:
    """uvicorn's own X-Forwarded-For handling is off: the app alone decides whom to believe."""
    world = proxied_world
    port = free_port()
    config = server_config(
        world.app, host="127.0.0.1", port=port, tls=None, log_level="critical", configure_logging=False
    )
    with running(config), httpx.Client(base_url=f"http://127.0.0.1:{port}") as local_proxy:
        trusted = local_proxy.get("/api/v1/session/csrf", headers=forwarded(world))
        assert trusted.json()["terminal_registered"] is True
    world.app.state.portal.settings = _settings_without_loopback(world)
    try:
        with running(config), httpx.Client(base_url=f"http://127.0.0.1:{port}") as stranger:
            assert (
                stranger.get("/api/v1/session/csrf", headers=forwarded(world)).json()["terminal_registered"]
                is False
            )
    finally:
        world.app.state.portal.settings = world.settings


def _settings_without_loopback(world: WebWorld) -> WebSettings:
    return replace(world.settings, trusted_proxies=(PROXY,))


def test_the_proxys_address_without_its_secret_is_refused_and_logged(proxied_world: WebWorld) -> None:
    """Issue 9, item 4: on the proxy's machine anyone can connect from its address; only its secret counts."""
    world = proxied_world
    person = world.person(Role.ANALYST)
    before, throttled = world.audit_size(), world.throttle_rows()
    with world.client(None, address=PROXY) as client:
        for secret in (None, "x" * 64, SECRET[:-1]):
            answer = client.get("/api/v1/session/csrf", headers=forwarded(world, "203.0.113.9", secret))
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "proxy_refused"
        twice = [*forwarded(world).items(), (PROXY_SECRET_HEADER, SECRET)]  # a client's copy passed along
        assert client.get("/api/v1/session/csrf", headers=twice).status_code == 403
        attempt = client.post(
            "/api/v1/session/login",
            json={"login_id": person.login_id, "password": "wrong password 0123"},
            headers={**forwarded(world, "203.0.113.9", secret=None), "X-CSRF-Token": "any"},
        )
        assert attempt.status_code == 403 and attempt.json()["error"]["code"] == "proxy_refused"
    entries = world.entries(before)
    assert {(e.action, e.result, e.reason, e.client_addr) for e in entries} == {
        ("web.proxy", "denied", "proxy_secret_missing", PROXY),  # the TCP peer, never the forged address
        ("web.proxy", "denied", "proxy_secret_wrong", PROXY),
    }
    assert world.throttle_rows() == throttled  # refused before the password step: the throttle never saw it


def test_a_forged_x_forwarded_for_does_not_escape_the_address_throttle(proxied_world: WebWorld) -> None:
    """The proxy appends the address it saw; whatever the client put to its left changes nothing."""
    world = proxied_world
    world.clock.advance(hours=2)  # earlier tests' failures from this address are forgotten
    statuses = []
    with world.client(None, address=PROXY) as client:
        client.headers.update(forwarded(world))
        token = client.get("/api/v1/session/csrf").json()["csrf_token"]
        before = world.audit_size()
        for n in range(ADDRESS_POLICY.free_attempts + 1):
            client.headers["X-Forwarded-For"] = f"198.51.100.{n}, 192.0.2.77"  # as $proxy_add_x_forwarded_for
            answer = client.post(
                "/api/v1/session/login",
                json={"login_id": f"nobody{n}", "password": "wrong password 0123"},  # a new account each time
                headers={"X-CSRF-Token": token},
            )
            statuses.append(answer.status_code)
    assert statuses == [401] * ADDRESS_POLICY.free_attempts + [429]
    logged = [e for e in world.entries(before) if e.action == "login.password"]
    assert {e.client_addr for e in logged} == {"192.0.2.77"}
    assert logged[-1].reason == "throttled"


def failed_login_over_plain_http(client: httpx.Client, login_id: str) -> httpx.Response:
    """A wrong password, as the proxy relays it: plain HTTP, so the __Host- cookie is sent by hand."""
    token = client.get("/api/v1/session/csrf").json()["csrf_token"]
    return client.post(
        "/api/v1/session/login",
        json={"login_id": login_id, "password": "not the password 0123"},
        headers={"X-CSRF-Token": token, "Cookie": f"{CSRF_COOKIE}={token}"},
    )


def test_on_loopback_a_local_user_cannot_pose_as_the_proxy(proxied_world: WebWorld) -> None:
    """A real server on 127.0.0.1 and real HTTP requests: what any local user can send, and what the proxy does."""
    world = proxied_world
    person = world.person(Role.ANALYST)
    port = free_port()
    config = server_config(
        world.app, host="127.0.0.1", port=port, tls=None, log_level="critical", configure_logging=False
    )
    before = world.audit_size()
    with running(config), httpx.Client(base_url=f"http://127.0.0.1:{port}") as local:
        forged = local.get("/api/v1/session/csrf", headers=forwarded(world, "203.0.113.7", secret=None))
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "proxy_refused"
        local.headers.update(forwarded(world, "203.0.113.7, 192.0.2.44"))  # the proxy, with its secret
        assert local.get("/api/v1/session/csrf").json()["terminal_registered"] is True
        assert failed_login_over_plain_http(local, person.login_id).status_code == 401
    seen = [(e.action, e.reason, e.terminal, e.client_addr) for e in world.entries(before)]
    assert seen == [
        ("web.proxy", "proxy_secret_missing", "", "127.0.0.1"),
        ("login.password", "bad_password", "term-01", "192.0.2.44"),
    ]


def test_on_a_unix_socket_the_proxy_is_whoever_may_connect(proxied_world: WebWorld, tmp_path: Path) -> None:
    """Set-up B on a Unix socket (0660): headers are believed on the socket, and on no TCP connection."""
    world = proxied_world
    person = world.person(Role.ANALYST)
    path = tmp_path / "renkei.sock"
    world.app.state.portal.settings = WebSettings(
        passwords=world.settings.passwords, card_settings=world.settings.card_settings, clock=world.clock,
        proxy_socket=True,
    )  # fmt: skip
    quiet = {"log_level": "critical", "configure_logging": False}
    config = server_config(world.app, host="127.0.0.1", port=0, tls=None, **quiet)  # type: ignore[arg-type]
    port = free_port()
    tcp = server_config(world.app, host="127.0.0.1", port=port, tls=None, **quiet)  # type: ignore[arg-type]
    before = world.audit_size()
    try:
        listening = bind_unix_socket(path)
        assert stat.S_IMODE(path.stat().st_mode) == SOCKET_MODE == 0o660
        transport = httpx.HTTPTransport(uds=str(path))
        with (
            running(config, [listening]),
            httpx.Client(transport=transport, base_url="http://renkei") as proxy,
        ):
            proxy.headers.update(forwarded(world, "203.0.113.8, 192.0.2.55", secret=None))
            assert proxy.get("/api/v1/session/csrf").json()["terminal_registered"] is True
            assert failed_login_over_plain_http(proxy, person.login_id).status_code == 401
        with running(tcp), httpx.Client(base_url=f"http://127.0.0.1:{port}") as local:
            local.headers.update(forwarded(world, secret=None))
            assert local.get("/api/v1/session/csrf").json()["terminal_registered"] is False
    finally:
        world.app.state.portal.settings = world.settings
    seen = [(e.action, e.reason, e.terminal, e.client_addr) for e in world.entries(before)]
    assert seen == [("login.password", "bad_password", "term-01", "192.0.2.55")]


def test_a_live_socket_is_kept_and_a_stale_one_replaced(tmp_path: Path) -> None:
    path = tmp_path / "renkei.sock"
    first = bind_unix_socket(path)
    first.listen()
    with pytest.raises(RenkeiError, match="another server is listening"):
        bind_unix_socket(path)
    first.close()  # a killed server leaves its socket file behind
    bind_unix_socket(path).close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(RenkeiError, match="another file"):
        bind_unix_socket(path)
    assert path.read_text() == "not a socket"
