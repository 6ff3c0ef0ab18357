"""How many examples property tests run: ``HYPOTHESIS_MAX_EXAMPLES`` (default 100) governs every one.

``tests/conftest.py`` registers it as the ``renkei`` profile's ``max_examples``. A test whose examples cost
far more or less than most asks for a share of that budget (:func:`scaled`) instead of a count of its own, so
``HYPOTHESIS_MAX_EXAMPLES=1000`` deepens every test tenfold and ``=10`` makes a quick run of all of them.
"""

from __future__ import annotations

import os

ENV = "HYPOTHESIS_MAX_EXAMPLES"
DEFAULT = 100


def budget() -> int:
    """The run's budget from the environment; a value that is not a positive integer is an error."""
    text = os.environ.get(ENV, str(DEFAULT))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{ENV} must be a positive integer, not {text!r}")
    return int(text)


MAX_EXAMPLES = budget()


def scaled(share: float) -> int:
    """``share`` of the budget (0.25: a test four times as costly per example), at least one example."""
    return max(1, round(MAX_EXAMPLES * share))
