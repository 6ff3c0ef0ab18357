"""The ``renkei`` command starts without importing its command modules, and its list of them is the truth."""

from __future__ import annotations

import os
import subprocess
import sys

import typer.main
from typer.testing import CliRunner

from renkei.cli.main import COMMANDS, app, module_commands

COMMAND_MODULES = sorted({entry.module for entry in COMMANDS.values()})
HEAVY = ("sqlalchemy", "pyarrow", "pydantic", "fastapi", "duckdb", "scipy", "renkei.hub", "renkei.sending")


def test_help_lists_every_command_without_importing_any_command_module() -> None:
    code = (
        "import sys\n"
        "from renkei.cli.main import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', ','.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    listing, _, modules = result.stdout.rpartition("MODULES ")
    loaded = set(modules.strip().split(","))
    assert "renkei.cli.main" in loaded
    assert sorted(loaded & set(COMMAND_MODULES)) == []
    assert sorted(m for m in loaded if m.startswith(HEAVY)) == []
    for name, entry in COMMANDS.items():
        assert f" {name} " in listing and entry.help in listing


def test_each_listed_help_line_is_the_commands_own_and_no_command_is_unlisted() -> None:
    for module in COMMAND_MODULES:
        registered = module_commands(module)
        assert set(registered) == {name for name, entry in COMMANDS.items() if entry.module == module}
        for name, command in registered.items():
            assert (command.help or "").splitlines()[0] == COMMANDS[name].help, name


def test_a_command_is_imported_when_it_is_used() -> None:
    result = CliRunner().invoke(app, ["catalog", "--help"])
    assert result.exit_code == 0 and "list" in result.output and "show" in result.output
    root = typer.main.get_command(app)
    context = root.context_class(root)
    assert root.get_command(context, "catalog") is root.get_command(context, "catalog")  # type: ignore[attr-defined]
    assert root.get_command(context, "no-such-command") is None  # type: ignore[attr-defined]


def test_a_mistyped_command_gets_a_suggestion_from_the_whole_list() -> None:
    result = CliRunner().invoke(app, ["catalgo"])
    assert result.exit_code == 2 and "catalog" in result.output
