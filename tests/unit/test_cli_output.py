"""The CLI's consoles print nothing as markup or as a terminal control, whoever wrote it (issue 9, item 7)."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.table import Table

from renkei.cli.common import SafeConsole, err, out, print_error, print_lines, styled
from renkei.display import display_text, is_unsafe, terminal_text
from renkei.errors import Location, RenkeiError

HOSTILE = "[bold red]x[/] :smile: \x1b[2J\x1b]0;title\x07\x9b2J\x85\u202eabc\u2066\u200b\u2028\ud800\U000e0041\nforged"
ESCAPED = (
    "[bold red]x[/] :smile: \\u001b[2J\\u001b]0;title\\u0007\\u009b2J\\u0085\\u202eabc\\u2066\\u200b\\u2028"
    "\\ud800\\udb40\\udc41\\u000aforged"
)
SGR = re.compile(r"\x1b\[[0-9;]*m")
LIVE = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[[0-9]*[AK]|\r")  # and a live display's cursor moves


def terminal() -> tuple[SafeConsole, io.StringIO]:
    """A console as on a colour terminal: Rich's own styles do come out as escape sequences."""
    sink = io.StringIO()
    return SafeConsole(file=sink, force_terminal=True, color_system="truecolor", width=400), sink


def plain(text: str, own: re.Pattern[str] = SGR) -> str:
    """What is left once the console's own escapes are removed: must hold no control but line breaks."""
    rest = own.sub("", text)
    assert [c for c in rest if is_unsafe(c) and c != "\n"] == []
    return rest


def test_the_clis_consoles_are_safe() -> None:
    assert isinstance(out, SafeConsole) and isinstance(err, SafeConsole)


def test_a_string_is_printed_as_plain_escaped_text_on_one_line() -> None:
    console, sink = terminal()
    console.print(HOSTILE)
    assert plain(sink.getvalue()) == ESCAPED + "\n"


def test_tables_titles_rules_json_and_styles_are_escaped_too() -> None:
    console, sink = terminal()
    table = Table("列 " + HOSTILE, title=HOSTILE)
    table.add_row(HOSTILE)
    console.print(table)
    console.rule(HOSTILE)
    console.print(styled(HOSTILE, "bold"), HOSTILE)
    console.print_json(json.dumps({"name": HOSTILE}, ensure_ascii=False))
    shown = plain(sink.getvalue())
    assert shown.count(ESCAPED) == 6  # title, header, cell, rule, styled, plain
    assert json.loads(shown[shown.index("{") :]) == {"name": json.loads(f'"{ESCAPED}"')}  # JSON stays JSON


def test_markup_is_refused_and_a_status_is_not_markup() -> None:
    console, sink = terminal()
    with pytest.raises(ValueError, match="no markup"):
        console.print("[bold]x[/]", markup=True)
    with console.status(HOSTILE):
        pass
    assert ESCAPED in plain(sink.getvalue(), LIVE)


def test_multi_line_text_and_errors_keep_their_own_lines_only() -> None:
    console, sink = terminal()
    print_lines(console, "SELECT 1\nFROM t -- \x1b[2J", indent="  ")
    print_error(
        console, "エラー (error)", RenkeiError("読めません\n偽", "unreadable", Location(f"in{HOSTILE}.rkpkg"))
    )
    lines = plain(sink.getvalue()).split("\n")
    assert lines[:2] == ["  SELECT 1", "  FROM t -- \\u001b[2J"]
    assert lines[2] == f"エラー (error): in{ESCAPED}.rkpkg: 読めません\\u000a偽"
    assert lines[3:] == ["  (unreadable)", ""]


def test_the_audit_form_also_doubles_backslashes() -> None:
    assert display_text("a\\x1b\x1b\u202e") == "a\\\\x1b\\x1b\\u202e"
    assert terminal_text("a\\x1b\x1b", keep="") == "a\\x1b\\u001b"
    assert terminal_text("plain 日本語 text") == "plain 日本語 text"
