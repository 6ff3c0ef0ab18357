"""Tables that fit an 80-column terminal: what every command prints its lists and results with.

Rich's default table (vertical rules, two spaces of padding per column, one-line headers) cuts a six-column
list of Japanese names to "データセ …" at 80 columns. Here a list has no vertical rules and one space between
columns, a header's English goes under its Japanese, and a table too wide for the terminal (a crosstab with
ten wards across) is printed in blocks of columns, each repeating the row labels, as R and pandas print a
wide data frame, so no value is ever cut.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from renkei.display import terminal_text

GAP = 1  # cells between two columns: the box's blank column rule, no padding


def listing(*headers: str, title: str | None = None, right: Collection[int] = ()) -> Table:
    """An empty list table: headers ``"ja (en)"`` on two lines, columns in ``right`` right-aligned."""
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0,
        title_justify="left",
    )  # fmt: skip
    for i, header in enumerate(headers):
        table.add_column(
            Text(_two_lines(terminal_text(header))),
            justify="right" if i in right else "left",
            overflow="fold",
        )
    return table


def print_wide(
    console: Console,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    title: str | None = None,
    labels: int = 1,
    right: Collection[int] = (),
) -> None:
    """A result table in blocks of whole columns that fit the console, each block led by the ``labels``
    first columns; a table that fits is one block."""
    body = [list(row) for row in rows]
    widths = [max([_header_width(h), *(cell_len(r[i]) for r in body)]) for i, h in enumerate(header)]
    for n, block in enumerate(column_blocks(widths, console.width, labels)):
        columns = [*range(labels), *block]
        table = listing(
            *(header[i] for i in columns),
            title=title if n == 0 else None,
            right={k for k, i in enumerate(columns) if i in right},
        )
        if sum(widths[i] + GAP for i in columns) <= console.width + GAP:  # else one column alone: fold it
            for column, i in zip(table.columns, columns, strict=True):
                column.no_wrap, column.min_width = True, widths[i]
        for row in body:
            table.add_row(*(Text(terminal_text(row[i])) for i in columns))
        if n:
            console.print()
        console.print(table)


def column_blocks(widths: Sequence[int], width: int, labels: int = 1) -> list[list[int]]:
    """The indices of the columns after the first ``labels``, in consecutive blocks: each block together
    with the label columns fits ``width`` (a column wider than the room left gets a block of its own)."""
    room = width - sum(w + GAP for w in widths[:labels])
    blocks: list[list[int]] = [[]]
    used = 0
    for i in range(labels, len(widths)):
        need = widths[i] + GAP
        if blocks[-1] and used + need > room:
            blocks.append([])
            used = 0
        blocks[-1].append(i)
        used += need
    return blocks


def _two_lines(header: str) -> str:
    ja, sep, en = header.partition(" (")
    return f"{ja}\n({en}" if sep else header


def _header_width(header: str) -> int:
    return max(cell_len(line) for line in _two_lines(header).split("\n"))
