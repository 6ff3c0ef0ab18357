"""Differential test against ACRO (AI-SDC/ACRO, the SACRO output checker): on the same microdata, ACRO's
crosstab checks and this hub's primary rules flag the same cells — threshold (with zeros disclosive, ACRO's
default), (n, k) dominance and the p% rule — in the inner cells and in every margin. ACRO takes about a
second per table, so few examples run here."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pytest
from acro import ACRO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei.hub.disclosure.policy import DisclosurePolicy
from renkei.hub.disclosure.protect import complete
from renkei.hub.disclosure.suppression import dominated, p_percent_sensitive, primary_suppression
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.service import Cells
from tests.support.examples import scaled

POLICY = DisclosurePolicy(method="suppression", zeros="suppress")  # threshold 10, n=2 k=85, p=10


@pytest.fixture(scope="module")
def acro() -> ACRO:
    logging.getLogger("acro").setLevel(logging.ERROR)
    checker = ACRO(suppress=False)
    appetite = checker.sdc_checks.risk_appetite
    appetite.update(safe_threshold=POLICY.threshold, safe_nk_n=POLICY.dominance_n)
    appetite.update(safe_nk_k=POLICY.dominance_k / 100, safe_pratio_p=POLICY.p_percent / 100)
    return checker


@st.composite
def microdata(draw: st.DrawFn) -> pd.DataFrame:
    size = draw(st.integers(5, 250))
    a = draw(st.lists(st.sampled_from(["a0", "a1", "a2", "a3"]), min_size=size, max_size=size))
    b = draw(st.lists(st.sampled_from(["b0", "b0", "b0", "b1", "b1", "b2"]), min_size=size, max_size=size))
    amount = st.one_of(
        st.integers(0, 1_000), st.just(0), st.integers(10_000, 5_000_000)
    )  # whole yen: exact sums
    v = draw(st.lists(amount, min_size=size, max_size=size))
    return pd.DataFrame({"a": a, "b": b, "v": [float(x) for x in v]})


def _cells(df: pd.DataFrame) -> Cells:
    """The CUBE cells the control query would return: n, the sum, the two largest contributions."""
    coordinates, n, value, top = [], [], [], []
    for keys in (["a", "b"], ["a"], ["b"], []):
        groups = df.groupby(keys) if keys else [((), df)]
        for key, group in groups:
            labels = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            coordinates.append((labels.get("a", TOTAL), labels.get("b", TOTAL)))
            n.append(len(group))
            value.append(float(group["v"].sum()))
            top.append(sorted(group["v"].abs(), reverse=True)[:2])
    return Cells(coordinates, n, [0] * len(n), value, top)  # type: ignore[arg-type]


def _acro_flags(checker: ACRO, df: pd.DataFrame, **kwargs: Any) -> dict[str, set[tuple[Any, ...]]]:
    checker.crosstab(df.a, df.b, margins=True, **kwargs)
    record = checker.results.get(checker.results.get_keys()[-1])
    rows = [TOTAL if r == "All" else r for r in record.outcome.index]
    cols = [TOTAL if c == "All" else c for c in record.outcome.columns]
    return {check: {(rows[i], cols[j]) for i, j in cells} for check, cells in record.sdc["cells"].items()}


@pytest.mark.filterwarnings("ignore::FutureWarning")  # inside ACRO: np.sum as a pandas aggfunc
@settings(
    max_examples=scaled(0.15), suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # ACRO: slow
@given(microdata())
def test_counts_flag_the_same_cells_as_acro(acro: ACRO, df: pd.DataFrame) -> None:
    flags = _acro_flags(acro, df)
    table, _ = complete(_cells(df))
    ours = primary_suppression(POLICY, "count", table.n, table.value, table.top)
    flagged = {table.coordinates[i] for i in ours}
    assert flagged == flags["MinimumThresholdCheck"] | flags.get("PresenceOfZeroCheck", set())
    assert {table.coordinates[i] for i, r in ours.items() if r == "zero"} == flags["PresenceOfZeroCheck"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # inside ACRO: np.sum as a pandas aggfunc
@settings(
    max_examples=scaled(0.15), suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # ACRO: slow
@given(microdata())
def test_sums_flag_the_same_cells_as_acro_rule_by_rule(acro: ACRO, df: pd.DataFrame) -> None:
    flags = _acro_flags(acro, df, values=df.v, aggfunc="sum")
    table, _ = complete(_cells(df))
    present = [i for i, n in enumerate(table.n) if n > 0]
    at = table.coordinates
    k, p = POLICY.dominance_k, POLICY.p_percent
    nk = {
        at[i]
        for i in present
        if dominated(table.top[i] or [], abs(table.value[i] or 0), POLICY.dominance_n, k)
    }
    pp = {at[i] for i in present if p_percent_sensitive(table.top[i] or [], abs(table.value[i] or 0), p)}
    assert nk == flags["NKCheck"]
    assert pp == flags["PPercentCheck"]
    ours = primary_suppression(POLICY, "sum", table.n, table.value, table.top)
    assert {at[i] for i in ours} == flags["MinimumThresholdCheck"] | flags["NKCheck"] | flags["PPercentCheck"]
