"""Shared CLI pieces: the --home option, error display, progress bars."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from typer.exceptions import TyperException

from renkei.config import HUB, SENDER, check_home, resolve_home
from renkei.faults import as_renkei_error

P = ParamSpec("P")
R = TypeVar("R")

out = Console()
err = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="状態を置くディレクトリ (state directory; default: $RENKEI_HOME/<side> or"
        " ~/.local/share/renkei/sender, …/renkei/hub)",
    ),
]


def hub_home(home: Path | None) -> Path:
    """The hub's home for a hub command, refused if it is the sending side's or holds a pseudonym key."""
    return check_home(resolve_home(home, HUB), HUB)


def sender_home(home: Path | None) -> Path:
    """The sending side's home for a sending command, refused if it is the hub's."""
    return check_home(resolve_home(home, SENDER), SENDER)


def parse_date(value: str, what: str = "--as-of") -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} は YYYY-MM-DD 形式の日付ではありません (not a YYYY-MM-DD date)", param_hint=what
        ) from None


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Show a renkei error (or a fault renkei can name) as a clear message and exit with its code: see
    :func:`exit_for`. The top-level group does the same for every command (renkei.cli.main)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CLI_CONTROL:
            raise
        except Exception as exc:
            raise exit_for(exc) from None

    return wrapper


CLI_CONTROL = (typer.Exit, typer.Abort, TyperException)  # how commands end on purpose: passed on as they are


def exit_for(exc: Exception) -> typer.Exit:
    """The one place an exception becomes an exit code.

    A RenkeiError, or a fault of the disk or the database (renkei.faults), is printed Japanese first, English
    after, with no traceback, and exits with its family's code from renkei.errors.ERRORS. Anything else is a
    bug: it is raised again, for its traceback (exit code 1).
    """
    error = as_renkei_error(exc)
    if error is None:
        raise exc
    err.print(f"[bold red]エラー (error)[/]: {escape(error.render())}", highlight=False, soft_wrap=True)
    return typer.Exit(error.exit_code)


@contextmanager
def byte_progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar fed with (bytes done, bytes total); silent when not a terminal."""
    if not enabled or not err.is_terminal:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
