"""Each imported snapshot gets a risk report and, once the resident register of its period is in, a link rate;
the figures agree with plain DuckDB over the sending side's own Parquet, and the catalog shows them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from renkei.hub.access.authz import Actor
from renkei.hub.assessment import SnapshotLinkage, SnapshotRisk
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.services.catalog import dataset_detail
from renkei.manifest import DATA_FILE
from renkei.sending.extract import extract
from renkei.spec import bundled_specs, load_spec
from tests.integration.hub_world import World, make_world

FIRST, SECOND = dt.date(2024, 1, 1), dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("assess"), residents=300, years=2, as_of=SECOND)


def extracted(world: World, dataset: str, as_of: dt.date) -> tuple[Path, Path]:
    """The package and the plain Parquet the sending side wrote beside it."""
    out = world.root / f"out-{dataset}-{as_of}"
    result = extract(
        load_spec(bundled_specs()[dataset]), world.raw[as_of][dataset], as_of, out, world.sender_home
    )
    assert result.package is not None
    return result.package, result.directory / DATA_FILE


def stored(world: World, dataset: str, period: dt.date) -> tuple[SnapshotRisk | None, SnapshotLinkage | None]:
    with world.hub.session() as session:
        snapshot = session.scalars(
            select(Snapshot).join(Dataset).where(Dataset.name == dataset, Snapshot.period == period)
        ).one()
        risk, link = session.get(SnapshotRisk, snapshot.id), session.get(SnapshotLinkage, snapshot.id)
        session.expunge_all()
        return risk, link


def test_reports_and_link_rates_arrive_with_the_register_and_agree_with_plain_duckdb(world: World) -> None:
    kokuho_package, kokuho = extracted(world, "kokuho", FIRST)
    world.import_(kokuho_package)
    risk, link = stored(world, "kokuho", FIRST)
    assert risk is not None and link is None  # no register of the period yet
    qis = risk.report["quasi_identifiers"]
    assert qis == ["age", "住所_ward", "住所_town", "household_size"]
    # the pair (age, ward) by plain group-bys over the sending side's file
    sizes = [
        r[0]
        for r in duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{kokuho}') GROUP BY age, \"住所_ward\""
        ).fetchall()
    ]
    pair = next(c for c in risk.report["combinations"] if c["columns"] == ["age", "住所_ward"])
    assert (pair["classes"], pair["sample_uniques"]) == (len(sizes), sizes.count(1))
    assert risk.records == sum(sizes)

    juki_package, juki = extracted(world, "juki", FIRST)
    world.import_(juki_package)  # the register arrives: kokuho's link rate is computed now
    _, link = stored(world, "kokuho", FIRST)
    assert link is not None
    rows, linked = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE pid IN (SELECT pid FROM read_parquet('{juki}'))) "
        f"FROM read_parquet('{kokuho}')"
    ).fetchall()[0]
    assert (link.rows, link.linked) == (rows, linked)
    juki_risk, juki_link = stored(world, "juki", FIRST)
    assert juki_risk is not None and juki_link is None  # the register is not linked to itself

    world.import_(extracted(world, "juki", SECOND)[0])  # the register first, this time
    world.import_(extracted(world, "kokuho", SECOND)[0])
    second_risk, second_link = stored(world, "kokuho", SECOND)
    assert second_risk is not None and second_link is not None

    detail = dataset_detail(world.hub, Actor.cli("test"), "kokuho")
    first, second = detail.snapshots
    assert first.link is not None and second.link is not None and second.risk is not None
    assert first.link.drift is None
    assert second.link.drift == pytest.approx(second.link.rate - first.link.rate)
    assert first.link.rate == pytest.approx(linked / rows)
    assert second.risk.records_at_risk == second_risk.report["overall"]["records_at_risk"]
    assert sum(second.risk.class_sizes.values()) == pytest.approx(1.0)
    assessed = [e for e in world.hub.audit.tail(20) if e.action == "import.assess"]
    assert len(assessed) == 4 and all("linked" in e.details or "flagged" in e.details for e in assessed)
