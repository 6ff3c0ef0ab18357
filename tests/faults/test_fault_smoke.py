"""The fault suite's quick version inside ``make test``: two landed kills per operation on SQLite.

The full runs (100 landed kills per operation, on SQLite and PostgreSQL) are ``make faults``; their figures are
in docs/reliability.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.faults import suite


def test_a_few_kills_per_operation_leave_a_hub_that_verifies_and_completes(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    code = suite.main(["--kills", "2", "--databases", "sqlite", "--residents", "150", "--json", str(figures)])
    found = json.loads(figures.read_text(encoding="utf-8"))
    assert {f["operation"] for f in found} == set(suite.OPERATIONS)
    assert [f["failed"] for f in found] == [[]] * len(found)
    assert all(f["landed"] == 2 for f in found) and code == 0
