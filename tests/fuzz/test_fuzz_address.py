"""Fuzzing the address reader (renkei.sending.address): any text — random Unicode, address-shaped pieces,
huge values — gets a reading with one of the documented outcomes, never an exception, never a hang; the
vectorized reading equals the scalar one, and the output never holds what the input did not (it is built from
the input's own parts and Japan Post's names)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from renkei.sending.address import OUTCOMES, truncate_address, truncate_addresses

pytestmark = pytest.mark.timeout(300)

PIECES = st.sampled_from(
    [
        "兵庫県",
        "神戸市",
        "中央区",
        "加納町",
        "神戸港地方",
        "6丁目",
        "六丁目",
        "丁",
        "5",
        "５",
        "-",
        "－",
        "ー",
        "の",
        "番",
        "番地",
        "号",
        "号室",
        "方",
        "山田方",
        "（",
        "）",
        "(",
        ")",
        "字",
        "大字",
        "第",
        "地割",
        "線",
        "条",
        "西",
        "通",
        "上る",
        "下ル",
        "番外地",
        "無番地",
        "ｺｰﾎﾟ",
        "A",
        "イ",
        " ",
        "\u3000",
        "\x00",
        "\n",
        "巿",
        "〇",
        "十",
        "百",
        "千",
        "万",
        "9" * 40,
        "京都府",
        "北海道",
        "札幌市",
    ]
)
ADDRESS_TEXT = st.lists(PIECES, max_size=20).map("".join) | st.text(max_size=60)


@given(st.lists(st.none() | ADDRESS_TEXT, min_size=1, max_size=8))
@example(["兵庫県神戸市中央区" + "1-" * 5000 + "1"])  # a long tail
@example(["神戸市中央区加納町" + "九" * 2000 + "番地"])  # a huge kanji number
@example(["\x00", "", "　", None])
def test_any_text_gets_a_reading_with_a_documented_outcome(values: list[str | None]) -> None:
    result = truncate_addresses(pa.array(values, pa.string()))
    assert sum(result.counts.values()) == len(values)
    outputs = result.address.to_pylist()
    for value, output in zip(values, outputs, strict=True):
        reading = truncate_address(value)
        assert reading.outcome in OUTCOMES
        assert reading.address == output
        if output is not None:
            assert len(output) <= len(value or "") + 16  # the 都道府県, 郡 and 区 filled in, nothing more
