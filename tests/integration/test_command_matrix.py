"""The commands section of authz_matrix.yaml, held against the CLI: every command is listed with its guard,
every listed command exists, and the guard agrees with the command's options (a user command names the user
and terminal it acts as; no other command does)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import typer
from ruamel.yaml import YAML
from typer.core import TyperGroup

from renkei.cli.main import app

COMMANDS: dict[str, dict[str, Any]] = YAML(typ="safe").load(
    (resources.files("renkei.hub.access") / "authz_matrix.yaml").read_text(encoding="utf-8")
)["commands"]
GUARDS = {"console", "user", "sender", "local"}


def cli_commands(cli: typer.Typer = app) -> dict[str, set[str]]:
    """Every leaf command of the CLI as "group sub" → its option names."""
    found: dict[str, set[str]] = {}
    root = typer.main.get_command(cli)
    context = root.context_class(root)

    def walk(command: Any, path: list[str]) -> None:
        if isinstance(command, TyperGroup):
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*path, name])
            return
        found[" ".join(path)] = {opt for param in command.params for opt in param.opts}

    for name in root.list_commands(context):  # type: ignore[attr-defined]
        walk(root.get_command(context, name), [name])  # type: ignore[attr-defined]
    return found


def unlisted(served: dict[str, set[str]], matrix: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(set(served) - set(matrix))


def test_the_matrix_lists_exactly_the_commands_of_the_cli() -> None:
    served = cli_commands()
    assert unlisted(served, COMMANDS) == [], "commands missing from authz_matrix.yaml"
    assert sorted(set(COMMANDS) - set(served)) == [], "commands in authz_matrix.yaml that the CLI lacks"


def test_a_command_missing_from_the_matrix_is_found() -> None:
    cli, group = typer.Typer(), typer.Typer()
    cli.command("extract")(lambda: None)
    group.command("purge")(lambda: None)
    cli.add_typer(group, name="vault")
    assert unlisted(cli_commands(cli), COMMANDS) == ["vault purge"]


def test_each_guard_is_known_and_agrees_with_the_options() -> None:
    served = cli_commands()
    for name, spec in COMMANDS.items():
        assert spec["guard"] in GUARDS, name
        acts_as_user = {"--user", "--terminal"} <= served[name]
        assert acts_as_user == (spec["guard"] == "user"), name
