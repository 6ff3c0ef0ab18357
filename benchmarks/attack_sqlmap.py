"""sqlmap (Debian's package) against a running portal: login, the audit search filters, query, tables, export.

The portal is the one the web tests build (tests/web/support.py: a hub home, the bundled datasets, one enrolled
terminal, a signed-in auditor and analyst), served by uvicorn over plain HTTP on 127.0.0.1 and a free port;
every connection presents the enrolled terminal's certificate through the ASGI TLS extension, exactly as the
TLS server does (renkei.web.terminal.WithTLSExtension), so sqlmap needs no client certificate. Each target is
one sqlmap run (``--batch``, level 2, risk 1, the session cookie and CSRF header of a real session). The run
fails (exit 1) when sqlmap names an injection point, or when a target could not be tested.

    make proof            # or: .venv/bin/python benchmarks/attack_sqlmap.py [--level 3 --risk 2]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import uvicorn  # noqa: E402
from tests.web.support import OWN, PASSWORD, tls_scope_extension, world_on  # noqa: E402

from renkei.hub.access.people import Role  # noqa: E402
from renkei.web.cookies import SESSION_COOKIE  # noqa: E402
from renkei.web.terminal import WithTLSExtension  # noqa: E402

FOUND = "identified the following injection point"
TESTED = ("do not appear to be injectable", "does not seem to be injectable", FOUND)


def targets(base: str, login_id: str) -> list[tuple[str, str, list[str]]]:
    """(name, role whose session to use, sqlmap arguments); ``*`` marks where sqlmap injects."""
    return [
        ("login", "", ["-u", f"{base}/api/v1/session/login",
                       "--data", f'{{"login_id": "{login_id}*", "password": "{PASSWORD}*"}}']),
        ("audit search", "auditor", ["-u", f"{base}/audit?actor=a*&action=b*&resource=c*&result=ok"]),
        ("query", "analyst", ["-u", f"{base}/api/v1/query", "--data", '{"sql": "SELECT count(*) FROM juki*"}']),
        ("tables", "analyst", ["-u", f"{base}/api/v1/tables",
                               "--data", '{"dataset": "juki*", "dimensions": [{"kind": "column", "column": "住所_ward*"}]}']),
        ("export", "analyst", ["-u", f"{base}/api/v1/exports", "--data", '{"release_id": 1*, "format": "csv*"}',
                               "--ignore-code=404"]),  # no such release: sqlmap would stop at the first 404
    ]  # fmt: skip


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", default="2")
    parser.add_argument("--risk", default="1")
    parser.add_argument("--only", help="one target by name (login, audit search, query, tables, export)")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        with world_on(f"sqlite:///{directory / 'catalog.db'}", directory) as world:
            people = {role.value: world.person(role, OWN) for role in (Role.AUDITOR, Role.ANALYST)}
            sock = free_socket()
            app = WithTLSExtension(world.app, tls_scope_extension(world.cert_pem))
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            for name, role, arguments in targets(base, people["analyst"].login_id):
                if args.only and name != args.only:
                    continue
                headers = []
                if role:
                    token, csrf_token = world.open_session(people[role])
                    headers = [
                        "--cookie",
                        f"{SESSION_COOKIE}={token}",
                        "--headers",
                        f"X-CSRF-Token: {csrf_token}",
                    ]
                command = ["sqlmap", "--batch", "--flush-session", f"--level={args.level}", f"--risk={args.risk}",
                           "--output-dir", str(directory / "sqlmap"), "--disable-coloring", *headers, *arguments]  # fmt: skip
                started = time.monotonic()
                run = subprocess.run(command, capture_output=True, text=True, check=False)
                found = FOUND in run.stdout
                tested = any(phrase in run.stdout for phrase in TESTED)
                verdict = "INJECTABLE" if found else ("nothing found" if tested else "NOT TESTED")
                print(f"{name:14} {verdict:14} {time.monotonic() - started:6.1f} s", flush=True)
                if found or not tested:
                    failed = True
                    print(run.stdout[-3000:], file=sys.stderr)
            server.should_exit = True
            thread.join(timeout=10)
    print("sqlmap found nothing" if not failed else "sqlmap: see above", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
