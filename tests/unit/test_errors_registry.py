"""One registry of errors (issue 7, item 3): each class's exit code and HTTP status in one table, every family of
failure with its own exit code, the doc for scripts generated from it, the portal answering from it."""

from __future__ import annotations

import datetime as dt
import errno
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import renkei
from renkei.cli.main import LazyGroup
from renkei.errors import ERRORS, EXIT_CODES, EXIT_NO_SPACE, RenkeiError, answer_for, dotted_name
from renkei.web.errors import describe

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "exit-codes.md"
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| (.+?) \|$")
RAISED_BY = re.compile(r"`([\w.]+)` (\d{3})")


def every_error_class() -> set[type[RenkeiError]]:
    """Every RenkeiError subclass defined in src/renkei, each module imported."""
    for module in pkgutil.walk_packages(renkei.__path__, "renkei."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: set[type[RenkeiError]] = set()
    pending: list[type[RenkeiError]] = [RenkeiError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("renkei.") and cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return found


def resolve(name: str) -> type:
    module, _, qualname = name.rpartition(".")
    return getattr(importlib.import_module(module), qualname)  # type: ignore[no-any-return]


def test_every_error_class_has_its_line_in_the_table_and_every_line_a_class() -> None:
    classes = every_error_class()
    assert {dotted_name(cls) for cls in classes} == set(ERRORS)
    for name in ERRORS:
        assert issubclass(resolve(name), RenkeiError), name


def test_the_table_is_the_only_place_a_code_or_status_is_set() -> None:
    for cls in every_error_class() - {RenkeiError}:  # RenkeiError's own: the descriptors reading the table
        assert not {"exit_code", "http_status", "code"} & set(vars(cls)), dotted_name(cls)
        assert (cls.exit_code, cls.http_status) == (answer_for(cls).exit_code, answer_for(cls).http_status)


def test_each_family_has_its_own_code() -> None:
    """The codes 3 and 4 once meant unrelated things (an extract stopped, a wrong KEK, a corrupted file; a
    rejected package, a refused login): now one meaning each, every code a class answers is documented."""
    assert {answer.exit_code for answer in ERRORS.values()} <= set(EXIT_CODES)
    meaning = {
        "renkei.errors.LeftoverIdentifierError": 3,
        "renkei.hub.importer.PackageRejectedError": 4,
        "renkei.hub.vault.CorruptedFileError": 5,
        "renkei.hub.keys.WrongKekError": 10,
        "renkei.hub.access.login.LoginFailedError": 9,
        "renkei.hub.workspace.errors.QueryFailed": 11,
    }
    assert {name: ERRORS[name].exit_code for name in meaning} == meaning
    assert len(set(meaning.values())) == len(meaning)


def doc_rows() -> dict[int, tuple[str, str, set[tuple[str, int]]]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if match := ROW.match(line):
            code, ja, en, raised = match.groups()
            rows[int(code)] = (ja, en, {(f"renkei.{n}", int(s)) for n, s in RAISED_BY.findall(raised)})
    return rows


def test_the_doc_table_is_the_registry() -> None:
    rows = doc_rows()
    assert {code: (ja, en) for code, (ja, en, _) in rows.items()} == EXIT_CODES
    for code, (_, _, raised) in rows.items():
        expected = {(name, a.http_status) for name, a in ERRORS.items() if a.exit_code == code}
        assert raised == expected, code
    assert "docs/exit-codes.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_the_portal_answers_each_error_with_the_tables_status(name: str) -> None:
    cls = resolve(name)
    error = cls.__new__(cls)  # whatever its constructor takes: the renderer reads only these
    error.ja, error.en, error.where = "日本語", "English", None
    if name.endswith("LoginThrottledError"):
        error.retry_after = dt.timedelta(seconds=3)
    problem = describe(error)
    answer = ERRORS[name]
    assert problem.status == answer.http_status
    assert answer.code is None or problem.code == answer.code
    if name.endswith("InvalidTransition"):  # a stale state is put in words around the hub's message
        assert "日本語" in problem.message_ja and "English" in problem.message_en
    else:
        assert (problem.message_ja, problem.message_en) == ("日本語", "English")


def test_the_top_level_group_is_the_one_choke_point_even_for_a_command_without_handle_errors() -> None:
    """A fault renkei can name becomes its message and exit code; a bug keeps its traceback (exit code 1)."""
    app = typer.Typer(cls=LazyGroup)

    @app.command("full")
    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    @app.command("bug")
    def bug() -> None:
        raise ValueError("a bug")

    runner = CliRunner()
    named = runner.invoke(app, ["full"])
    assert named.exit_code == EXIT_NO_SPACE and "ディスクの空きがありません" in named.output
    assert named.exception is None or isinstance(named.exception, SystemExit)
    crashed = runner.invoke(app, ["bug"])
    assert crashed.exit_code == 1 and isinstance(crashed.exception, ValueError)
