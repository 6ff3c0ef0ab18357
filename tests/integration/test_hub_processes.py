"""Issue 9, item 5: a hub process loads no sending-side code, checked on the real commands in real processes.

Each command runs as ``python -m renkei.cli.main …`` in a fresh interpreter whose ``sitecustomize`` (on
``PYTHONPATH`` for these processes only) writes, at exit, every ``renkei`` module the process had loaded. The
hub's import, a running portal, and every other hub command the CLI lists are checked; ``demo`` runs both sides
in one process by design, and the sending commands are the sending side's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from renkei.hub.access.terminals import TerminalCA, enroll_terminal
from renkei.web.settings import PROXY_SECRET_HEADER
from tests.integration.hub_world import World, make_world
from tests.integration.test_homes import hub_commands
from tests.web.test_terminals import free_port

AS_OF = dt.date(2025, 1, 1)

HOOK = """\
import atexit, os, sys

def _dump() -> None:
    with open(os.environ["RENKEI_TEST_MODULES_FILE"], "w", encoding="utf-8") as f:
        f.write("\\n".join(sorted(m for m in sys.modules if m.split(".")[0] == "renkei")))

atexit.register(_dump)
"""

# Runs the CLI once per command line in one fresh interpreter, as the console script would, and goes on
# after each command's exit: the union of what every hub command loads, for one interpreter's start-up.
EVERY_COMMAND = """\
import json, sys
from renkei.cli.main import app
for argv in json.loads(sys.argv[1]):
    try:
        app(argv, prog_name="renkei")
    except SystemExit:
        pass
"""


def sending_modules(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m == "renkei.sending" or m.startswith("renkei.sending."))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = make_world(tmp_path_factory.mktemp("world"), residents=200, years=1)
    with world.hub.session() as session:  # the portal needs the terminal CA to start
        ca = TerminalCA.load_or_create(world.hub.home)
        enroll_terminal(session, ca, "term-01", world.root / "terminal", enrolled_by="test")
        session.commit()
    yield world
    world.hub.engine.dispose()


@pytest.fixture
def hooked(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment of a hooked process and the file its hook writes; its folder is the process's working
    directory, where commands that write files (``terminal enroll`` with placeholder arguments) write them."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    dump = tmp_path / "modules.txt"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {"PYTHONPATH": path, "RENKEI_TEST_MODULES_FILE": str(dump)}, dump


def loaded_modules(dump: Path) -> set[str]:
    return set(dump.read_text(encoding="utf-8").split("\n"))


def renkei(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "renkei.cli.main", *arguments]


def test_the_hook_sees_a_sending_command_load_sending_code(
    world: World, hooked: tuple[dict[str, str], Path]
) -> None:
    """The positive control: the same hook on a sending command reports the sending modules."""
    env, dump = hooked
    result = subprocess.run(
        renkei("sender", "public-key", "--home", str(world.sender_home)),
        env=env,
        cwd=dump.parent,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "renkei.sending.seal" in sending_modules(loaded_modules(dump))


def test_renkei_import_loads_no_sending_code(world: World, hooked: tuple[dict[str, str], Path]) -> None:
    env, dump = hooked
    package = world.extract("kaigo", AS_OF)
    result = subprocess.run(
        renkei("import", str(package), "--home", str(world.hub.home)),
        env=env,
        cwd=dump.parent,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    loaded = loaded_modules(dump)
    assert {"renkei.hub.importer", "renkei.hub.vault", "renkei.cli.hub"} <= loaded  # it did import
    assert sending_modules(loaded) == []


def test_renkei_serve_loads_no_sending_code(world: World, hooked: tuple[dict[str, str], Path]) -> None:
    """The portal as a process, after it has answered a request, stopped as an operator would (Ctrl-C)."""
    env, dump = hooked
    port = free_port()
    secret = "s" * 40
    secret_file = dump.parent / "proxy.secret"
    secret_file.write_text(secret, encoding="ascii")
    secret_file.chmod(0o600)
    command = renkei(
        "serve",
        "--home",
        str(world.hub.home),
        "--port",
        str(port),
        "--trusted-proxy",
        "127.0.0.1",
        "--proxy-secret-file",
        str(secret_file),
    )
    with subprocess.Popen(
        command, env=env, cwd=dump.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        try:
            answer = first_answer(
                process, f"http://127.0.0.1:{port}/api/v1/session/csrf", {PROXY_SECRET_HEADER: secret}
            )
            assert answer.status_code == 200
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
    assert dump.exists(), stderr.decode(errors="replace")
    loaded = loaded_modules(dump)
    assert {"renkei.web.app", "renkei.cli.web"} <= loaded
    assert sending_modules(loaded) == []


def test_every_other_hub_command_loads_no_sending_code(
    world: World, hooked: tuple[dict[str, str], Path]
) -> None:
    """Every hub command the CLI lists, with placeholder arguments, plus a few that run to the end."""
    env, dump = hooked
    home = ["--home", str(world.hub.home)]
    complete = [["catalog", "list", *home], ["vault", "verify", *home], ["audit", "verify", *home]]
    every = [[*command, *home] for command in hub_commands() if command[0] not in {"import", "serve"}]
    result = subprocess.run(
        [sys.executable, "-c", EVERY_COMMAND, json.dumps(complete + every)],
        env=env,
        cwd=dump.parent,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    loaded = loaded_modules(dump)
    for module in ("renkei.cli.hub", "renkei.cli.access", "renkei.cli.applications", "renkei.cli.analysis"):
        assert module in loaded
    assert len(every) >= 30  # the walk found the commands
    assert sending_modules(loaded) == []


def first_answer(process: subprocess.Popen[bytes], url: str, headers: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 60  # the process imports the whole web stack first; this machine is slow
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=5)
        except httpx.TransportError:
            assert process.poll() is None, "renkei serve stopped before it answered"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
