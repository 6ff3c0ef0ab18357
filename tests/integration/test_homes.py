"""The two sides never share a home: separate defaults, a marker per home, refusals both ways, no key on the hub."""

from __future__ import annotations

import enum
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from renkei.cli.main import app
from renkei.config import SIDE_FILE, HomeError, default_home
from renkei.hub.db import CATALOG_FILE
from renkei.hub.home import Hub, init_hub
from renkei.sending.pseudonym import create_key, load_key
from renkei.sending.seal import create_sender, load_sender, trust_hub

SENDING_COMMANDS = {"extract", "preview", "synth", "sender", "demo"}


def run(*arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments))


def test_each_side_has_its_own_default_home_and_marks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RENKEI_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert run("sender", "init").exit_code == 0
    hub = run("hub", "init")
    assert hub.exit_code == 0, hub.output
    sender_home, hub_home = tmp_path / "renkei" / "sender", tmp_path / "renkei" / "hub"
    assert (default_home("sender"), default_home("hub")) == (sender_home, hub_home)
    assert (sender_home / SIDE_FILE).read_text() == "sender\n" and (sender_home / "pseudonym.key").exists()
    assert (hub_home / SIDE_FILE).read_text() == "hub\n" and not (hub_home / "pseudonym.key").exists()


def test_renkei_home_is_the_parent_of_both_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENKEI_HOME", str(tmp_path))
    assert run("sender", "init").exit_code == 0 and run("hub", "init").exit_code == 0
    assert (tmp_path / "sender" / "pseudonym.key").exists() and (tmp_path / "hub" / "kek.key").exists()


def test_the_hub_cannot_be_initialised_in_a_sending_home(tmp_path: Path) -> None:
    home = tmp_path / "sender"
    assert run("sender", "init", "--home", str(home)).exit_code == 0
    result = run("hub", "init", "--home", str(home))
    assert result.exit_code == 2 and "hub needs a home of its own" in result.output
    assert not (home / "package_identity.txt").exists() and not (home / "kek.key").exists()
    with pytest.raises(HomeError):
        init_hub(home)


def test_the_sending_side_cannot_be_initialised_in_a_hub_home(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    assert run("hub", "init", "--home", str(home)).exit_code == 0
    result = run("sender", "init", "--home", str(home))
    assert result.exit_code == 2 and "sending side needs a home of its own" in result.output
    assert not (home / "pseudonym.key").exists() and not (home / "sender_signing.key").exists()
    for create in (create_key, lambda h: create_sender(h, "x")):
        with pytest.raises(HomeError):
            create(home)
    assert not (home / "pseudonym.key").exists()


def test_a_marker_alone_keeps_the_other_side_out(tmp_path: Path) -> None:
    (tmp_path / SIDE_FILE).write_text("sender\n")
    with pytest.raises(HomeError, match="sending side's home"):
        Hub(tmp_path)
    (tmp_path / SIDE_FILE).write_text("hub\n")
    with pytest.raises(HomeError, match="hub's home"):
        create_key(tmp_path)


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    hub = init_hub(tmp_path / "hub")
    sender = tmp_path / "sender"
    create_key(sender)
    create_sender(sender, "kyotsu-kiban")
    yield sender, hub.home
    hub.engine.dispose()


def test_sending_commands_refuse_a_hub_home(homes: tuple[Path, Path]) -> None:
    _, hub = homes
    result = run("sender", "public-key", "--home", str(hub))
    assert result.exit_code == 2 and "hub's home" in result.output
    for call in (load_key, load_sender, lambda h: trust_hub(h, "age1x")):
        with pytest.raises(HomeError):
            call(hub)


def test_hub_commands_refuse_a_sending_home(homes: tuple[Path, Path]) -> None:
    sender, _ = homes
    result = run("catalog", "list", "--home", str(sender))
    assert result.exit_code == 2 and "sending side's home" in result.output


def hub_commands() -> list[list[str]]:
    """Every hub-side command with placeholder values for what it requires, found in the CLI itself."""
    found: list[list[str]] = []
    root = typer.main.get_command(app)
    context = root.context_class(root)

    def walk(command: Any, path: list[str]) -> None:
        if isinstance(command, TyperGroup):  # the top level imports each command's module here, on demand
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*path, name])
            return
        found.append([*path, *placeholders(command)])

    for name in root.list_commands(context):  # type: ignore[attr-defined]
        if name not in SENDING_COMMANDS:
            walk(root.get_command(context, name), [name])  # type: ignore[attr-defined]
    return found


def placeholders(command: Any) -> list[str]:
    values: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        annotation = param.type_descriptor.annotation
        value = (
            next(iter(annotation)).value
            if isinstance(annotation, type) and issubclass(annotation, enum.Enum)
            else "1"
        )
        values += [param.opts[0], str(value)] if param.param_type_name == "option" else [str(value)]
    return values


@pytest.mark.parametrize("command", hub_commands(), ids=lambda c: " ".join(c[:2]))
def test_every_hub_command_refuses_a_home_with_a_pseudonym_key(
    homes: tuple[Path, Path], command: list[str]
) -> None:
    _, hub = homes
    (hub / "pseudonym.key").write_bytes(secrets.token_bytes(32))
    result = run(*command, "--home", str(hub))
    assert result.exit_code == 2, result.output
    assert "pseudonymization key is in the hub's home" in result.output


def test_the_hub_api_and_the_portal_refuse_a_home_with_a_pseudonym_key(homes: tuple[Path, Path]) -> None:
    from renkei.web.app import create_app  # noqa: PLC0415
    from renkei.web.settings import WebSettings  # noqa: PLC0415

    sender, hub = homes
    (sender / "pseudonym.key").rename(hub / "pseudonym.key")
    with pytest.raises(HomeError, match=r"pseudonym\.key"):
        Hub(hub)
    with pytest.raises(HomeError, match=r"pseudonym\.key"):
        create_app(hub, WebSettings(proxy_socket=True))


def test_the_catalog_and_its_wal_files_are_private(tmp_path: Path) -> None:
    """Issue 9, item 10: catalog.db holds users, sessions and TOTP data; SQLite alone makes it 0644."""
    home = tmp_path / "hub"

    def modes() -> dict[str, int]:
        return {f.name: stat.S_IMODE(f.stat().st_mode) for f in home.glob(f"{CATALOG_FILE}*")}

    previous = os.umask(0o022)
    try:
        hub = init_hub(home)
        with hub.engine.connect() as connection:  # an open connection keeps the -wal and -shm files
            connection.exec_driver_sql("SELECT count(*) FROM audit_entries")
            names = [CATALOG_FILE, f"{CATALOG_FILE}-shm", f"{CATALOG_FILE}-wal"]
            assert modes() == dict.fromkeys(names, 0o600)
            for name in names:  # as an older hub left them
                (home / name).chmod(0o644)
            Hub(home).engine.dispose()  # the next process tightens them again
            assert modes() == dict.fromkeys(names, 0o600)
        hub.engine.dispose()
    finally:
        os.umask(previous)
