"""The ``renkei`` command starts without importing its command modules, and its list of them is the truth."""

from __future__ import annotations

import os
import subprocess
import sys

import typer.main
from typer.testing import CliRunner

from renkei.cli.main import COMMANDS, app, module_command, module_commands

COMMAND_MODULES = sorted({entry.module for entry in COMMANDS.values()})
HEAVY = ("sqlalchemy", "pyarrow", "pydantic", "fastapi", "duckdb", "scipy", "renkei.hub", "renkei.sending")
# What `catalog list` must not load: the analysis engines, Alembic, the web, the vault (and the risk and link
# tables that import it), the TOTP code, the importer, the sending side and Rich's live display.
NOT_FOR_CATALOG_LIST = (
    "pyarrow",
    "duckdb",
    "scipy",
    "pandas",
    "alembic",
    "fastapi",
    "pyotp",
    "renkei.hub.vault",
    "renkei.hub.assessment",
    "renkei.hub.access.totp",
    "renkei.hub.importer",
    "renkei.hub.risk",
    "renkei.sending",
    "renkei.web",
    "rich.progress",
    "rich.live",
)


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


def test_resolving_catalog_list_builds_that_command_alone_and_loads_nothing_it_does_not_run() -> None:
    """``renkei catalog list`` starts fast (issue 7): resolving it imports its module and builds the ``catalog``
    group only, and nothing on the way loads the vault, the analysis engines or the other heavy modules.
    tests/integration/test_authz.py runs the command itself in a fresh process and checks the same."""
    code = (
        "import sys\n"
        "import typer.main\n"
        "from renkei.cli.main import app\n"
        "built = []\n"
        "def spy(command_info, **options):\n"
        "    built.append(command_info.name)\n"
        "    return build(command_info, **options)\n"
        "build, typer.main.get_command_from_info = typer.main.get_command_from_info, spy\n"
        "root = typer.main.get_command(app)\n"
        "context = root.context_class(root)\n"
        "catalog = root.get_command(context, 'catalog')\n"
        "assert catalog.get_command(context, 'list') is not None\n"
        "print('BUILT', ','.join(sorted(built)))\n"
        "print('MODULES', ','.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    built = result.stdout.split("BUILT ")[1].split()[0]
    loaded = set(result.stdout.split("MODULES ")[1].strip().split(","))
    assert built == "list,show"  # not the `hub`, `vault`, `audit` and `import` commands of the same module
    assert "renkei.cli.hub" in loaded and "renkei.hub.services.catalog" in loaded
    assert sorted(m for m in loaded if m.startswith(NOT_FOR_CATALOG_LIST)) == []


def test_one_command_built_alone_is_the_command_built_with_its_module() -> None:
    for module in COMMAND_MODULES:
        for name, command in module_commands(module).items():
            alone = module_command(module, name)
            assert type(alone) is type(command) and alone.name == command.name == name
            assert alone.help == command.help
            assert [p.name for p in alone.params] == [p.name for p in command.params]
            assert sorted(getattr(alone, "commands", {})) == sorted(getattr(command, "commands", {}))
