"""The dataset page and GET /api/v1/datasets/{name} show each snapshot's risk report and link rate, as shares
only (docs/risk.md), Japanese first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from renkei.hub.access.people import Role
from renkei.hub.assessment import SnapshotLinkage, SnapshotRisk
from renkei.hub.risk import RiskThresholds, risk_report
from tests.web.support import WebWorld, login_with_totp

PERIOD = dt.date(2026, 3, 31)


def seed(world: WebWorld, tmp_path: Path) -> None:
    """kokuho's snapshot: ages 30 ×3, 40 ×1 (a unique); 3 of its 4 rows link to juki of the period."""
    path = tmp_path / "kokuho.parquet"
    pq.write_table(pa.table({"age": [30, 30, 30, 40], "住所_ward": ["北区"] * 4}), path)
    report = risk_report(path, ("age", "住所_ward"), RiskThresholds(k=3, max_combination_size=1))
    kokuho, juki = world.snapshot_id("kokuho", PERIOD), world.snapshot_id("juki", PERIOD)
    with Session(world.engine) as session:
        if session.get(SnapshotRisk, kokuho) is None:
            session.add(SnapshotRisk(snapshot_id=kokuho, records=4, flagged=report["flagged"], report=report))
            session.add(SnapshotLinkage(snapshot_id=kokuho, register_snapshot_id=juki, rows=4, linked=3))
            session.commit()


def test_the_api_gives_shares_and_rates_never_counts(world: WebWorld, tmp_path: Path) -> None:
    seed(world, tmp_path)
    with world.client() as client:
        login_with_totp(world, client, world.person(Role.ANALYST))
        response = client.get("/api/v1/datasets/kokuho")
    (snapshot,) = response.json()["snapshots"]
    risk, link = snapshot["risk"], snapshot["link"]
    assert risk["flagged"] is True
    assert risk["sample_unique_share"] == 0.25 and risk["records_at_risk"] == 0.25
    assert risk["class_sizes"] == {"1": 0.25, "2": 0.0, ">=3": 0.75}
    assert risk["top_combination"] == ["age"]
    assert link == {"rate": 0.75, "register_version": 1, "drift": None}
    for hidden in ("rows", "bytes", 'records"', "classes", 'sample_uniques"'):
        assert hidden not in response.text


def test_the_page_shows_the_flag_and_the_link_rate_in_japanese_then_english(
    world: WebWorld, tmp_path: Path
) -> None:
    seed(world, tmp_path)
    with world.client() as client:
        login_with_totp(world, client, world.person(Role.ANALYST))
        ja = client.get("/datasets/kokuho").text
        en = client.get("/datasets/kokuho?lang=en").text
        unassessed = client.get("/datasets/juki?lang=ja").text
    assert "再識別リスクとリンク率" in ja and "要注意" in ja and "75.0%" in ja and "25.0%" in ja
    assert "Flagged" in en and "Link rate to the register" in en
    assert "未評価" in unassessed
