"""Re-identification risk of one snapshot and its link rate to the resident register: the figures (docs/risk.md).

Pure computation over DuckDB, no catalog: :mod:`renkei.hub.assessment` stores what these return.

Risk (the prosecutor model of ARX, El Emam; sdcMicro's individual risk with sampling weights 1): the records are
grouped by their quasi-identifiers into equivalence classes; a record in a class of size k has risk 1/k. Per
combination of quasi-identifiers (every subset up to a size, and the full set):

- ``sizes``: how many classes have size 1, 2, …, k-1 and ≥ k (``risk.k``);
- ``sample_uniques``: records alone in their class, and their share;
- ``highest_risk`` = 1 / the smallest class; ``average_risk`` = classes / records (ARX's average prosecutor risk,
  equal to the marketer risk, and to the mean of sdcMicro's individual risk when every weight is 1: a register
  is its own population, so F_k = f_k and r_k = 1/f_k); ``expected_reidentifications`` = classes (sdcMicro's
  global risk ER, the sum of the individual risks);
- ``records_at_risk``: the share of records in classes smaller than k.

The combination that contributes most is the one that is a *minimal sample unique* (SUDA, Elliot et al.; sdcMicro
``suda2``) for the most records: unique on it, but on none of its subsets one smaller.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renkei.spec import HOUSEHOLD_ID, HOUSEHOLD_SIZE

PID = "pid"


@dataclass(frozen=True, slots=True)
class RiskThresholds:
    k: int = 5
    max_records_at_risk: float = 0.05
    max_average_risk: float = 0.05
    max_combination_size: int = 3

    def as_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "max_records_at_risk": self.max_records_at_risk,
            "max_average_risk": self.max_average_risk,
            "max_combination_size": self.max_combination_size,
        }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _connect() -> Any:
    import duckdb  # noqa: PLC0415 (heavy: only an import's assessment needs it)

    return duckdb.connect(config={"threads": 2})


def combinations(qis: Sequence[str], bound: int) -> list[tuple[str, ...]]:
    """Every non-empty subset up to ``bound`` names, then the full set (once), in the declared order."""
    found = [c for size in range(1, min(bound, len(qis)) + 1) for c in itertools.combinations(qis, size)]
    if len(qis) > bound:
        found.append(tuple(qis))
    return found


def risk_report(parquet: Path | str, qis: Sequence[str], thresholds: RiskThresholds) -> dict[str, Any]:
    """The risk report of one Parquet file over the quasi-identifiers ``qis`` (output column names)."""
    con = _connect()
    try:
        _load(con, str(parquet), qis)
        return report_from(con, qis, thresholds)
    finally:
        con.close()


def _load(con: Any, parquet: str, qis: Sequence[str]) -> None:
    """Table ``q``: one column ``q0``, ``q1``… per quasi-identifier (household_size derived from household_id)."""
    source = f"read_parquet({_literal(parquet)})"
    columns = []
    for i, name in enumerate(qis):
        if name == HOUSEHOLD_SIZE:
            hid = _quote(HOUSEHOLD_ID)
            expr = f"CASE WHEN {hid} IS NULL THEN NULL ELSE count(*) OVER (PARTITION BY {hid}) END"
        else:
            expr = _quote(name)
        columns.append(f"{expr} AS q{i}")
    con.execute(f"CREATE TEMP TABLE q AS SELECT {', '.join(columns)} FROM {source}")


def report_from(con: Any, qis: Sequence[str], thresholds: RiskThresholds) -> dict[str, Any]:
    """The report over table ``q`` (see :func:`_load`); ``qis`` is not empty."""
    records = int(con.execute("SELECT count(*) FROM q").fetchone()[0])
    index = {name: i for i, name in enumerate(qis)}
    combos = combinations(qis, thresholds.max_combination_size)
    figures = [_combination(con, i, combo, index, records, thresholds.k) for i, combo in enumerate(combos)]
    for entry, count in zip(figures, _minimal_uniques(con, combos), strict=True):
        entry["minimal_uniques"] = count
    overall = figures[-1]
    top = max(figures, key=lambda f: (f["minimal_uniques"], -len(f["columns"])))
    flagged = records > 0 and bool(
        overall["records_at_risk"] > thresholds.max_records_at_risk
        or overall["average_risk"] > thresholds.max_average_risk
    )
    return {
        "quasi_identifiers": list(qis),
        "records": records,
        "thresholds": thresholds.as_json(),
        "overall": overall,
        "combinations": figures,
        "top_combination": top["columns"] if top["minimal_uniques"] > 0 else [],
        "flagged": flagged,
    }


def _combination(
    con: Any, number: int, combo: Sequence[str], index: dict[str, int], records: int, k: int
) -> dict[str, Any]:
    """The class-size distribution of one combination and the risk figures it implies; keeps the row ids of
    its sample uniques in table ``u<number>`` (one group-by: each class's size and its first row)."""
    keys = ", ".join(f"q{index[name]}" for name in combo)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE g AS SELECT count(*) AS size, min(rowid) AS rid FROM q GROUP BY {keys}"
    )
    rows = con.execute("SELECT size, count(*) FROM g GROUP BY size").fetchall()
    con.execute(f"CREATE TEMP TABLE u{number} AS SELECT rid FROM g WHERE size = 1")
    con.execute("DROP TABLE g")
    by_size = {int(size): int(classes) for size, classes in rows}
    classes = sum(by_size.values())
    uniques = by_size.get(1, 0)
    at_risk = sum(size * n for size, n in by_size.items() if size < k)
    sizes = {str(size): by_size.get(size, 0) for size in range(1, k)}
    sizes[f">={k}"] = sum(n for size, n in by_size.items() if size >= k)
    return {
        "columns": list(combo),
        "classes": classes,
        "sizes": sizes,
        "sample_uniques": uniques,
        "sample_unique_share": uniques / records if records else 0.0,
        "highest_risk": 1 / min(by_size) if by_size else 0.0,
        "average_risk": classes / records if records else 0.0,
        "expected_reidentifications": classes,
        "records_at_risk": at_risk / records if records else 0.0,
    }


def _minimal_uniques(con: Any, combos: Sequence[tuple[str, ...]]) -> list[int]:
    """Per combination, the records unique on it and on none of its subsets one smaller (SUDA's MSUs): its
    uniques (``u<i>``) less those of those subsets. Uniqueness only grows with the columns, so the subsets one
    smaller stand for all; the full set beyond the bound is compared with the largest subsets examined."""
    position = {combo: i for i, combo in enumerate(combos)}
    counts = []
    for i, combo in enumerate(combos):
        smaller = [position[s] for s in itertools.combinations(combo, len(combo) - 1) if s in position]
        if len(combo) > 1 and not smaller:  # the full set beyond the bound
            largest = max(len(c) for c in combos[:-1])
            smaller = [j for j, c in enumerate(combos[:-1]) if len(c) == largest]
        query = f"SELECT count(*) FROM u{i}"
        if smaller:
            others = " UNION ALL ".join(f"SELECT rid FROM u{j}" for j in smaller)
            query += f" WHERE rid NOT IN ({others})"
        counts.append(int(con.execute(query).fetchone()[0]))
    return counts


def link_counts(parquet: Path | str, register: Path | str) -> tuple[int, int]:
    """(rows, rows whose pid is among the register's pids) of one Parquet file against the register's."""
    con = _connect()
    try:
        row = con.execute(
            f"SELECT count(*), count(r.pid) FROM read_parquet({_literal(str(parquet))}) AS s "
            f"LEFT JOIN (SELECT DISTINCT pid FROM read_parquet({_literal(str(register))}) "
            "WHERE pid IS NOT NULL) AS r ON s.pid = r.pid"
        ).fetchone()
    finally:
        con.close()
    return int(row[0]), int(row[1])
