"""HYPOTHESIS_MAX_EXAMPLES governs every property test (tests/support/examples.py, tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import settings

from tests.support.examples import ENV, MAX_EXAMPLES, scaled

# A fresh interpreter loads the tests' conftest (which registers and loads the profile), then runs a property
# test with no settings of its own and one that asks for a share: how many examples did each run?
PROBE = """\
import tests.conftest
from hypothesis import given, settings, strategies as st
from tests.support.examples import scaled

plain, shared = [], []

@settings(database=None)
@given(st.integers())
def plain_test(n):
    plain.append(n)

@settings(database=None, max_examples=scaled(3))
@given(st.integers())
def shared_test(n):
    shared.append(n)

plain_test()
shared_test()
print(settings().max_examples, len(plain), len(shared))
"""


def probe(value: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {ENV: value}
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False)


def test_the_environment_sets_every_property_tests_examples() -> None:
    result = probe("7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "7", "21"]


def test_a_budget_that_is_not_a_positive_integer_is_refused() -> None:
    for bad in ("0", "ten", "-5"):
        result = probe(bad)
        assert result.returncode != 0 and f"{ENV} must be a positive integer" in result.stderr


def test_this_run_uses_the_profile() -> None:
    assert settings().max_examples == MAX_EXAMPLES
    assert scaled(0.25) == max(1, round(MAX_EXAMPLES / 4)) and scaled(0.0001) == 1
