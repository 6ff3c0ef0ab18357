"""The protector end to end: requests compiled and computed by real DuckDB, protected, shown.

The invariants: the same cell gets the same noise in every table; perturbation stays within the published
bounds and keeps zeros; the same query twice gives the same numbers; differencing two tables whose
populations differ by one person yields noise; each table carries its release record.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from renkei.hub.disclosure.cellkey import magnitude_bound
from renkei.hub.disclosure.differencing import differencing_risks, release_of
from renkei.hub.disclosure.policy import DisclosurePolicy, PolicySet
from renkei.hub.disclosure.protect import DisclosureControl, datasets_of
from renkei.hub.disclosure.ptable import build_ptable
from renkei.hub.disclosure.record_keys import record_keys
from renkei.hub.tables.compile import Schema, compile_table
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.request import (
    Category,
    Filter,
    HouseholdSize,
    Link,
    Measure,
    TableRequest,
)
from renkei.hub.tables.service import build_table, read_cells

PERIOD = dt.date(2025, 1, 1)
WARDS = [f"区{i:02d}" for i in range(20)]
PTABLE = build_ptable(5, 3.0, 5)


class Workspace:
    """A real DuckDB database shaped like a workspace's control database."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        rows: dict[str, list[Any]] = {
            k: [] for k in ("pid", "household_id", "period", "age", "性別", "ward", "income")
        }
        for w, ward in enumerate(WARDS):
            for i in range(60 + 5 * w):
                age = (
                    65 if i == 0 else rng.choice([*range(0, 65), *range(66, 100)])
                )  # one 65-year-old per ward
                rows["pid"].append(f"{rng.getrandbits(128):032x}")
                rows["household_id"].append(f"{rng.getrandbits(128):032x}")
                rows["period"].append(PERIOD)
                rows["age"].append(age)
                rows["性別"].append("女" if w == 3 else rng.choice(["男", "女"]))
                rows["ward"].append(ward)
                rows["income"].append(2_000_000_000 if (w == 5 and i == 1) else rng.randint(0, 400) * 10_000)
        juki = pa.table(rows)
        keys = record_keys(
            bytes(range(32)),
            pa.concat_arrays([juki["pid"].combine_chunks(), juki["household_id"].combine_chunks()]),
        )
        self.con = duckdb.connect()
        self.con.register("juki_arrow", juki)
        self.con.execute("CREATE TABLE juki AS SELECT * FROM juki_arrow")
        ids = pa.concat_arrays([juki["pid"].combine_chunks(), juki["household_id"].combine_chunks()])
        self.con.register("keys_arrow", pa.table({"pid": ids, "rkey": keys}))
        self.con.execute("CREATE TABLE _record_keys AS SELECT * FROM keys_arrow")

    def schema(self) -> Schema:
        columns = self.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'juki'"
        )
        return {"juki": dict(columns.fetchall())}

    def unique_units(self) -> frozenset[str]:
        return frozenset()  # the deduplicating control queries, which hold for any base

    def control_query(self, sql: str, *, reusable: bool = False) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def true_cells(self, request: TableRequest) -> dict[tuple[Any, ...], int]:
        compiled = compile_table(request, self.schema())
        cells = read_cells(self.control_query(compiled.control_sql), compiled.dimensions)
        return dict(zip(cells.coordinates, cells.n, strict=True))


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return Workspace()


def _published(table: Any) -> dict[tuple[Any, ...], float | None]:
    return {c.coordinates: c.value for c in table.shown.cells}


def test_the_same_cell_gets_the_same_noise_in_every_table(workspace: Workspace) -> None:
    protect = DisclosureControl()
    by_ward = _published(
        build_table(workspace, TableRequest(dataset="juki", dimensions=[Category(column="ward")]), protect)
    )
    by_ward_sex = _published(
        build_table(
            workspace,
            TableRequest(dataset="juki", dimensions=[Category(column="ward"), Category(column="性別")]),
            protect,
        )
    )
    for ward in [*WARDS, TOTAL]:
        assert by_ward[(ward,)] == by_ward_sex[(ward, TOTAL)]
    truth = workspace.true_cells(TableRequest(dataset="juki", dimensions=[Category(column="ward")]))
    assert any(by_ward[c] != n for c, n in truth.items())  # and the noise is really there


def test_the_builder_default_perturbs_every_count_within_the_published_bounds(workspace: Workspace) -> None:
    request = TableRequest(dataset="juki", dimensions=[Category(column="ward"), Category(column="性別")])
    built = build_table(workspace, request, DisclosureControl())
    truth = workspace.true_cells(request)
    for cell in built.shown.cells:
        assert cell.status == "perturbed" and cell.value is not None
        true = truth.get(cell.coordinates, 0)
        assert abs(cell.value - true) <= PTABLE.max_noise
        assert cell.value >= 0 and not 0 < cell.value < PTABLE.small_cells
        if true == 0:
            assert cell.value == 0  # zeros stay zeros (the 区03 男 cell is empty)
    assert ("区03", "男") in {c.coordinates for c in built.shown.cells}
    record = built.record
    rules = {r["rule"]: r for r in record["rules"]}
    assert rules["cell_key_perturbation"]["applied"] and not rules["secondary_suppression"]["applied"]
    assert rules["cell_key_perturbation"]["parameters"]["ptable"]["sha256"] == PTABLE.sha256
    assert {"renkei", "duckdb", "pyarrow"} <= set(record["versions"])
    assert record["cells"]["perturbed"] == len(built.shown.cells) and record["datasets"] == ["juki"]
    assert record["standard"] == "SATRE 3.3.09" and record["request"] == request.model_dump(mode="json")


def test_the_same_query_twice_gives_the_same_numbers(workspace: Workspace) -> None:
    request = TableRequest(
        dataset="juki", dimensions=[Category(column="ward")], measure=Measure(kind="mean", column="income")
    )
    first = build_table(workspace, request, DisclosureControl())
    second = build_table(workspace, request, DisclosureControl())
    assert first.shown == second.shown
    assert {k: v for k, v in first.record.items() if k != "created"} == {
        k: v for k, v in second.record.items() if k != "created"
    }


def test_a_dominated_sum_is_suppressed_and_the_rest_moves_within_its_bound(workspace: Workspace) -> None:
    request = TableRequest(
        dataset="juki", dimensions=[Category(column="ward")], measure=Measure(kind="sum", column="income")
    )
    built = build_table(workspace, request, DisclosureControl())
    cells = read_cells(workspace.control_query(built.compiled.control_sql), built.compiled.dimensions)
    truth = {
        c: (v, n, t) for c, v, n, t in zip(cells.coordinates, cells.value, cells.n, cells.top, strict=True)
    }
    shown = {c.coordinates: c for c in built.shown.cells}
    assert shown[("区05",)].value is None  # one resident holds most of the ward's income
    assert sum(c.value is None for c in shown.values()) == 2  # and one complement: the total stays
    pct = DisclosurePolicy().perturbation.magnitude_pct
    for coords, cell in shown.items():
        if cell.value is not None:
            value, n, top = truth[coords]
            assert value is not None and top is not None
            assert abs(cell.value - value) <= magnitude_bound("sum", value, n, top, pct) + 1e-6


def test_a_suppression_policy_per_dataset_publishes_exact_values(workspace: Workspace) -> None:
    policies = PolicySet(datasets={"juki": DisclosurePolicy(method="suppression")})
    request = TableRequest(dataset="juki", dimensions=[Category(column="ward"), Category(column="性別")])
    built = build_table(workspace, request, DisclosureControl(policies))
    truth = workspace.true_cells(request)
    shown = {c.coordinates: c for c in built.shown.cells}
    assert shown[("区03", "男")].value == 0 and shown[("区03", "男")].status == "ok"  # zeros shown by default
    assert shown[("区03", "女")].value == truth[("区03", "女")]  # 75 women: no rule applies
    assert all(c.value == truth.get(k, 0) for k, c in shown.items() if c.value is not None)
    assert built.record["method"] == "suppression"


def test_differencing_two_tables_one_person_apart_yields_noise(workspace: Workspace) -> None:
    def request(high: int) -> TableRequest:
        return TableRequest(
            dataset="juki",
            dimensions=[Category(column="ward")],
            filters=[Filter(column="age", op="between", high=high)],
        )

    wide, narrow = (build_table(workspace, request(h), DisclosureControl()) for h in (65, 64))
    wide_true, narrow_true = workspace.true_cells(request(65)), workspace.true_cells(request(64))
    assert all(wide_true[(w,)] - narrow_true[(w,)] == 1 for w in WARDS)
    differences = [_published(wide)[(w,)] - _published(narrow)[(w,)] for w in WARDS]  # type: ignore[operator]
    assert sum(d != 1 for d in differences) >= 8  # most differences are not the person
    ledger = [release_of("t1", request(65), wide_true, wide.shown.cells)]
    risks = differencing_risks(release_of("t2", request(64), narrow_true, narrow.shown.cells), ledger, 10)
    assert {r.smaller[1] for r in risks} >= {(w,) for w in WARDS}
    assert {r.action for r in risks} == {"review"}  # perturbed: flagged for a steward, not refused


def test_linked_and_household_tables_read_the_strictest_policy() -> None:
    request = TableRequest(
        dataset="kaigo",
        dimensions=[HouseholdSize()],
        links=[Link(dataset="kosodate", level="household")],
    )
    assert datasets_of(request) == {"kaigo", "kosodate", "juki"}
    policies = PolicySet(datasets={"kosodate": DisclosurePolicy(threshold=30)})
    assert policies.for_datasets(datasets_of(request)).threshold == 30
