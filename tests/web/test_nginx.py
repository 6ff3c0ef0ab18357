"""Set-up B end to end: real nginx terminating TLS with real client certificates, ``renkei serve --uds`` behind it.

nginx runs the very ``server`` block that docs/web.md documents (only paths and the port are replaced, and the
test fails if any of them is no longer in the document). It comes from Debian (``apt-get install nginx``,
which ``.ci/run`` does); without it the test is skipped and says so. Run as root, nginx's workers are
``nobody:nogroup``, and reach renkei's socket exactly as the document says: through a setgid directory of
their group, the socket 0660.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.orm import Session

from renkei.hub.access.people import Role
from renkei.hub.access.terminals import CA_CERT_FILE, revoke_terminal
from renkei.hub.db import DATABASE_URL_ENV
from renkei.web.settings import DEFAULT_CLIENT_CERT_HEADER
from tests.web.support import Person, WebWorld, enroll, terminal_key_files, world_on
from tests.web.test_terminals import free_port, self_signed, tls_client

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed here: `apt-get install nginx` (.ci/run installs it)"
)
DOCS = Path(__file__).parents[2] / "docs" / "web.md"
WORKERS = ("nobody", "nogroup")  # nginx's workers when its master runs as root


@dataclass
class Stack:
    world: WebWorld
    port: int
    server_cert: Path
    socket: Path
    person: Person


def documented_server_block() -> str:
    """The set-up B ``server { … }`` of docs/web.md (the first nginx block that proxies to a Unix socket)."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    return next(b for b in blocks if "http://unix:" in b)


def nginx_config(work: Path, port: int, files: dict[str, Path]) -> str:
    block = documented_server_block()
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "/etc/renkei/server.crt": str(files["cert"]),
        "/etc/renkei/server.key": str(files["key"]),
        "/etc/renkei/terminal_ca.crt": str(files["ca"]),
        "/run/renkei/renkei.sock": str(files["socket"]),
    }
    for documented, here in replacements.items():
        assert documented in block, f"docs/web.md no longer says {documented!r}"
        block = block.replace(documented, here)
    temp = " ".join(f"{kind}_temp_path {work / kind};" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
    user = f"user {' '.join(WORKERS)};" if os.geteuid() == 0 else ""
    return (
        f"daemon off; worker_processes 1; pid {work / 'nginx.pid'}; error_log {work / 'error.log'} warn; {user}\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {work / 'body'}; {temp}\n{block}\n}}\n"
    )


def private_run_directory() -> Path:
    """Like /run/renkei: setgid, of the proxy's group, so the socket renkei creates there is the proxy's too."""
    work = Path(tempfile.mkdtemp(prefix="renkei-nginx-", dir="/tmp"))  # reachable by nginx's workers
    if os.geteuid() == 0:
        os.chown(work, 0, grp.getgrnam(WORKERS[1]).gr_gid)
        work.chmod(0o2750)
    return work


def _until_answered(client: httpx.Client, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60  # the process imports the whole stack first; this machine is slow
    while True:
        _check_alive(process, what)
        try:
            client.get("/api/v1/session/csrf")
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{what} did not answer"
            time.sleep(0.2)


def _until_listening(path: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the server accepts on its socket (plain connects: httpx leaks a socket per failed attempt)."""
    deadline = time.monotonic() + 60  # the process imports the whole stack first; this machine is slow
    while True:
        _check_alive(process, "renkei serve")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                return
            except OSError:
                assert time.monotonic() < deadline, "renkei serve did not listen"
        time.sleep(0.2)


def _check_alive(process: subprocess.Popen[bytes], what: str) -> None:
    if process.poll() is not None:
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
        raise AssertionError(f"{what} stopped: {output}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("nginx")
    work = private_run_directory()
    try:
        with world_on(f"sqlite:///{directory / 'catalog.db'}", directory) as world:
            yield from _running(world, work, directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _running(world: WebWorld, work: Path, directory: Path) -> Iterator[Stack]:
    enroll(world.engine, world.ca, world.clock, "term-02", world.home)
    with Session(world.engine) as session:
        revoke_terminal(session, "term-02", revoked_by="test", clock=world.clock)
        session.commit()
    cert, key = self_signed(directory, "renkei-proxy", server=True)
    socket_path = work / "renkei.sock"
    port = free_port()
    config = work / "nginx.conf"
    files = {"cert": cert, "key": key, "ca": world.home / CA_CERT_FILE, "socket": socket_path}
    config.write_text(nginx_config(work, port, files), encoding="utf-8")
    serve = [
        sys.executable,
        "-m",
        "renkei.cli.main",
        "serve",
        "--home",
        str(world.home),
        "--uds",
        str(socket_path),
    ]
    env = {**os.environ, DATABASE_URL_ENV: str(world.engine.url)}
    nginx = [str(NGINX), "-p", str(work), "-c", str(config), "-e", str(work / "error.log")]
    with _process(serve, env) as renkei:
        _until_listening(socket_path, renkei)
        with _process(nginx, dict(os.environ)) as proxy:
            with tls_client(port, cert, terminal_key_files(world.home, "term-01")) as client:
                _until_answered(client, proxy, "nginx")
            yield Stack(world, port, cert, socket_path, world.person(Role.ANALYST))


@contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A process of ours, stopped (SIGTERM) and reaped when the block ends."""
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        try:
            yield process
        finally:
            process.terminate()
            process.communicate(timeout=15)


def failed_login(client: httpx.Client, login_id: str, headers: dict[str, str]) -> httpx.Response:
    token = client.get("/api/v1/session/csrf").json()["csrf_token"]
    return client.post(
        "/api/v1/session/login",
        json={"login_id": login_id, "password": "not the password 0123"},
        headers={**headers, "X-CSRF-Token": token},
    )


def test_renkeis_socket_is_the_proxys_only(stack: Stack) -> None:
    """0660, and of the proxy's group by the setgid directory: other local users cannot connect."""
    found = stack.socket.stat()
    assert stat.S_ISSOCK(found.st_mode) and stat.S_IMODE(found.st_mode) == 0o660
    if os.geteuid() == 0:
        assert grp.getgrgid(found.st_gid).gr_name == WORKERS[1]


def test_nginx_passes_only_the_certificate_it_verified_and_the_address_it_saw(stack: Stack) -> None:
    world = stack.world
    other = quote(
        world.cert_pem
    )  # a copy of term-01's certificate, sent as a header by whoever holds term-02
    forged = {DEFAULT_CLIENT_CERT_HEADER: other, "X-Forwarded-For": "203.0.113.66"}
    before = world.audit_size()
    with tls_client(stack.port, stack.server_cert, terminal_key_files(world.home, "term-01")) as client:
        assert client.get("/api/v1/session/csrf").json()["terminal_registered"] is True
        assert failed_login(client, stack.person.login_id, forged).status_code == 401
    with tls_client(stack.port, stack.server_cert, terminal_key_files(world.home, "term-02")) as revoked:
        assert revoked.get("/api/v1/session/csrf", headers=forged).json()["terminal_registered"] is False
        refused = failed_login(revoked, stack.person.login_id, forged)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "terminal_not_registered"
    logged = [(e.action, e.reason, e.terminal, e.client_addr) for e in world.entries(before)]
    assert logged == [
        ("login.password", "bad_password", "term-01", "127.0.0.1"),  # nginx's $remote_addr, right-most
        ("login.password", "terminal_revoked", "term-02", "127.0.0.1"),  # issue 9 item 8: named
    ]


def test_nginx_refuses_a_client_without_a_terminal_certificate(stack: Stack, tmp_path: Path) -> None:
    world = stack.world
    before = world.audit_size()
    stranger = self_signed(tmp_path, "term-01", server=False)  # the same name, made elsewhere
    for certificate in (None, stranger):
        with tls_client(stack.port, stack.server_cert, certificate) as client:
            try:
                answer = client.get(
                    "/api/v1/session/csrf", headers={DEFAULT_CLIENT_CERT_HEADER: quote(world.cert_pem)}
                )
            except httpx.TransportError:
                continue  # the handshake itself refused it
            assert answer.status_code == 400 and "renkei" not in answer.text.lower()  # nginx's own answer
    assert world.audit_size() == before  # nothing reached renkei
