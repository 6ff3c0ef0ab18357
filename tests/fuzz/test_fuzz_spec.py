"""Fuzzing the spec loader (renkei.spec.load_spec): hostile YAML — alias bombs, deep nesting, huge numbers,
wrong types, random text — loads or is refused with a SpecError naming the file; never another exception,
never a hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from renkei.errors import SpecError
from renkei.spec import bundled_specs, load_spec
from tests.fuzz.support import assert_clear

pytestmark = pytest.mark.timeout(300)

VALID = bundled_specs()["juki"].read_text(encoding="utf-8")
SCALARS = st.sampled_from(
    [
        "x",
        "1",
        "-0",
        "9" * 5000,
        "1e999999",
        ".nan",
        "~",
        "null",
        "true",
        "2001-12-14",
        "!!binary aGVsbG8=",
        "!!python/object:os.system",
        "!!set {a, b}",
        "'q'",
        '"\\x00"',
        "[]",
        "{}",
        "&a x",
        "*a",
        "<<: *a",
        "a: b",
    ]
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.dictionaries(
            st.sampled_from(["role", "kind", "dataset", "columns", "x", "1"]), inner, max_size=3
        ).map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}")
    ),
    max_leaves=12,
)


def bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    """The shipped spec with one line replaced or added, a hostile structure, or random text."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        depth = draw(st.integers(1, 3000))
        return "dataset: " + "[" * depth + "]" * depth + "\n"
    lines = VALID.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    key = lines[i].split(":")[0] if ":" in lines[i] else "x"
    replacement = f"{key}: {draw(VALUES)}"
    if kind == 2:
        lines[i] = replacement
    else:
        lines.insert(i, replacement)
    return "\n".join(lines) + "\n"


@given(spec_texts())
@example(bomb(9))  # "billion laughs": 10**9 leaves if expanded (took minutes before aliases were refused)
@example("a: &a [*a]\n")  # a recursive alias
@example("dataset: " + "[" * 5000 + "]" * 5000 + "\n")  # was a RecursionError
@example("dataset: " + "9" * 5000 + "\n")  # beyond int()'s digit limit: was a ValueError
@example("\x00")
def test_any_yaml_loads_or_is_refused_with_the_file_named(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_spec(path)
        except SpecError as error:
            assert_clear(error, path)


@given(st.binary(max_size=200))
def test_any_bytes_load_or_are_refused(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_bytes(data)
        try:
            load_spec(path)
        except SpecError as error:
            assert_clear(error, path)
