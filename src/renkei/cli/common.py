"""Shared CLI pieces: the --home option, the consoles every command prints on, error display, progress bars.

:data:`out` and :data:`err` are :class:`SafeConsole` objects, the one place where the CLI's output meets the
terminal: nothing printed on them can be Rich markup or a terminal control, whoever wrote it (issue 9, item 7).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import (
    Console,
    ConsoleOptions,
    HighlighterType,
    JustifyMethod,
    OverflowMethod,
    RenderableType,
)
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from typer.exceptions import TyperException

from renkei.config import HUB, SENDER, check_home, resolve_home
from renkei.display import terminal_text
from renkei.errors import RenkeiError
from renkei.faults import as_renkei_error

if TYPE_CHECKING:  # a live status and a progress bar load Rich's live display: only when one is shown
    from rich.status import Status

P = ParamSpec("P")
R = TypeVar("R")


class SafeConsole(Console):
    """A Rich console on which no printed text is markup or reaches the terminal as a control.

    - Every ``str`` printed (as an argument, a table cell, a title) is plain text: markup (``[green]``) and
      emoji codes are never interpreted, and every control or format character — ``ESC``, C1 controls, bidi
      overrides, newlines — is shown as ``\\uXXXX`` (:func:`renkei.display.terminal_text`), so one value stays
      on one line. Our own multi-line text is printed line by line (:func:`print_lines`).
    - Styling is never markup: :func:`styled` builds a :class:`~rich.text.Text` (and escapes it too);
      ``markup=True`` is refused.
    - Whatever is rendered (tables, JSON, Text, a live status) has its control and format characters, newlines
      aside, escaped in the very segments sent to the terminal; only Rich's own control segments pass.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**options, "markup": False, "emoji": False})

    def print(
        self, *objects: Any, markup: bool | None = None, emoji: bool | None = None, **options: Any
    ) -> None:
        if markup or emoji:
            raise ValueError("SafeConsole prints no markup: style with renkei.cli.common.styled()")
        super().print(*objects, markup=False, emoji=False, **options)

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: HighlighterType | None = None,
    ) -> Text:
        return super().render_str(
            terminal_text(text),
            style=style,
            justify=justify,
            overflow=overflow,
            emoji=False,
            markup=False,
            highlight=highlight,
            highlighter=highlighter,
        )

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control:  # Rich's own cursor and screen controls (a live status, a progress bar)
                yield segment
                continue
            safe = terminal_text(segment.text, keep="\n")  # the layout's line breaks stay
            yield segment if safe == segment.text else Segment(safe, segment.style)

    def status(self, status: RenderableType, **options: Any) -> Status:
        return super().status(
            styled(status, "") if isinstance(status, str) else status, **options
        )  # not markup


out = SafeConsole()
err = SafeConsole(stderr=True)


def styled(text: str, style: str) -> Text:
    """``text`` in ``style`` (instead of markup), its controls escaped like any other printed text."""
    return Text(terminal_text(text), style=style)


def print_lines(console: Console, text: str, *, indent: str = "") -> None:
    """Multi-line text (SQL, CSV, a description), one printed line per line, each line escaped.

    ``indent`` sets someone else's text (a purpose, a description) apart: none of its lines can pass for ours.
    """
    for line in text.split("\n"):
        console.print(indent + line, soft_wrap=True, highlight=False)


def print_error(console: Console, label: str, exc: RenkeiError, style: str = "bold red") -> None:
    """``label``: the error's message, on its lines (any file name in it escaped)."""
    first, *rest = exc.lines()
    # soft_wrap: a long line (a file name, a database URL) stays one line for scripts that read it
    console.print(Text.assemble(styled(label, style), ":"), first, highlight=False, soft_wrap=True)
    for line in rest:
        console.print(line, highlight=False, soft_wrap=True)


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
    print_error(err, "エラー (error)", error)
    return typer.Exit(error.exit_code)


@contextmanager
def byte_progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar fed with (bytes done, bytes total); silent when not a terminal."""
    if not enabled or not err.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import (  # noqa: PLC0415 (see the imports)
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    description = TextColumn("{task.description}", markup=False)
    columns = (description, BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(terminal_text(label), total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
