"""What the CLI prints fits 80 columns and never cuts a value (issue 10 item 5)."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from renkei.cli.common import SafeConsole
from renkei.cli.listing import column_blocks, listing, print_wide

WARDS = ["東灘区", "灘区", "中央区", "兵庫区", "北区", "長田区", "須磨区", "垂水区", "西区", "北神区", "計"]


def console(width: int = 80) -> tuple[SafeConsole, io.StringIO]:
    sink = io.StringIO()
    return SafeConsole(file=sink, width=width, color_system=None), sink


def lines_of(sink: io.StringIO) -> list[str]:
    return sink.getvalue().splitlines()


def test_a_wide_crosstab_is_printed_in_blocks_with_every_value_whole() -> None:
    rows = [
        [f"{a}〜{a + 4}歳", *(str((a * 37 + i) % 999) for i in range(len(WARDS)))] for a in range(45, 95, 5)
    ]
    for width in (80, 50):
        screen, sink = console(width)
        print_wide(screen, ["年齢階級", *WARDS], rows, title="区・5歳階級別", right=range(1, 12))
        printed = lines_of(sink)
        assert max(cell_len(line) for line in printed) <= width
        text = sink.getvalue()
        assert "…" not in text and all(ward in text for ward in WARDS)
        assert all(value in text for row in rows for value in row)
        blocks = sum(1 for line in printed if line.startswith("年齢階級"))
        assert (blocks == 1) if width == 80 else (blocks > 1)


def test_a_list_puts_english_under_japanese_and_fits() -> None:
    screen, sink = console()
    table = listing(
        "データセット", "名称 (title)", "所管課 (owner)", "期間数 (periods)", "最新 (latest)", "行数 (rows)"
    )
    table.add_row("kojin_juminzei", "個人住民税", "こども家庭福祉課", "10", "2025-01-01 v1", "1,234,567")
    screen.print(table)
    printed = lines_of(sink)
    assert max(cell_len(line) for line in printed) <= 80
    header_ja, header_en = printed[0], printed[1]
    assert "名称" in header_ja and "(title)" in header_en and "(title)" not in header_ja
    assert (
        "kojin_juminzei" in sink.getvalue() and "1,234,567" in sink.getvalue() and "…" not in sink.getvalue()
    )


def test_a_value_that_looks_like_markup_is_printed_as_it_is() -> None:
    screen, sink = console()
    print_wide(screen, ["[bold]x[/]", "n"], [["[red]港区[/]", "1"]])
    assert "[bold]x[/]" in sink.getvalue() and "[red]港区[/]" in sink.getvalue()


@given(st.lists(st.integers(1, 30), min_size=1, max_size=25), st.integers(20, 120))
def test_blocks_keep_every_column_once_in_order_and_fit(widths: list[int], width: int) -> None:
    blocks = column_blocks(widths, width)
    assert [i for block in blocks for i in block] == list(range(1, len(widths)))
    for block in blocks:
        used = sum(widths[i] + 1 for i in [0, *block])
        assert used <= width + 1 or len(block) <= 1  # one over-wide column alone is folded, never dropped
