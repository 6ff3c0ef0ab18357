"""The catalog as the faces show it: datasets, their snapshots (periods and versions) and their columns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.access.people import Role, User
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.home import Hub
from renkei.hub.services.decisions import require

if TYPE_CHECKING:  # the risk and link tables (and the vault module they import): only for a dataset's detail
    from renkei.hub.assessment import SnapshotRisk


@dataclass(frozen=True, slots=True)
class CombinationRisk:
    """One combination of quasi-identifiers: shares of the records, never counts (docs/risk.md)."""

    columns: tuple[str, ...]
    sample_unique_share: float
    records_at_risk: float
    minimal_unique_share: float  # records for which this combination is a minimal sample unique


@dataclass(frozen=True, slots=True)
class RiskSummary:
    """A snapshot's re-identification risk report as the catalog shows it: shares and risks, no counts."""

    flagged: bool
    quasi_identifiers: tuple[str, ...]
    k: int
    records_at_risk: float
    sample_unique_share: float
    highest_risk: float
    average_risk: float
    class_sizes: dict[str, float]  # share of the records in classes of size 1, 2, …, ≥ k
    top_combination: tuple[str, ...]
    combinations: tuple[CombinationRisk, ...]


@dataclass(frozen=True, slots=True)
class LinkSummary:
    """The share of a snapshot's rows whose pid is in the resident register of its period, and its drift."""

    rate: float
    register_version: int
    drift: float | None  # the rate less the previous period's (its newest version); None for the first


# risk and linkage: the figures above are computed at import (renkei.hub.assessment)


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    period: dt.date
    version: int
    imported_at: dt.datetime
    rows: int
    bytes: int
    sender: str
    risk: RiskSummary | None = None  # None: not assessed (no quasi-identifiers, or imported before)
    link: LinkSummary | None = None  # None: no register snapshot of the period yet, or no pid


@dataclass(frozen=True, slots=True)
class ColumnEntry:
    """A source column, its role in the spec and the treatment it received on the sending side."""

    source: str
    role: str
    treatment: str


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    name: str
    title: str
    owner: str  # the owning department (所管課)
    periods: tuple[dt.date, ...]  # distinct, ascending
    latest: SnapshotEntry | None
    owner_has_steward: bool  # False: nobody can decide an application for it (it would wait forever)


@dataclass(frozen=True, slots=True)
class DatasetDetail:
    name: str
    title: str
    description: str
    owner: str
    snapshots: tuple[SnapshotEntry, ...]  # by period, then version
    columns: tuple[ColumnEntry, ...]


def list_datasets(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[DatasetEntry]:
    """Every dataset, by name (``catalog.read`` on the catalog)."""
    with hub.session() as db:
        require(db, hub, actor, Action.CATALOG_READ, Resource.of(ResourceType.CATALOG), clock)
        datasets = db.scalars(
            select(Dataset)
            .options(
                selectinload(Dataset.owner), selectinload(Dataset.snapshots).selectinload(Snapshot.sender)
            )
            .order_by(Dataset.name)
        )
        staffed = departments_with_steward(db)
        return [_entry(d, d.owner_id in staffed) for d in datasets]


def dataset_detail(hub: Hub, actor: Actor, name: str, *, clock: Clock = SYSTEM_CLOCK) -> DatasetDetail:
    """One dataset (``catalog.read`` on it; NotFoundError when there is none of that name)."""
    with hub.session() as db:
        dataset = dataset_named(db, name)
        require(db, hub, actor, Action.CATALOG_READ, dataset_resource(dataset, name), clock)
        assert dataset is not None  # a missing dataset was refused as not found
        snapshots = list(
            db.scalars(
                select(Snapshot)
                .where(Snapshot.dataset_id == dataset.id)
                .options(selectinload(Snapshot.sender))
                .order_by(Snapshot.period, Snapshot.version)
            )
        )
        return DatasetDetail(
            name=dataset.name,
            title=dataset.title,
            description=dataset.description,
            owner=dataset.owner.name,
            snapshots=_assessed_entries(db, snapshots),
            columns=tuple(ColumnEntry(c["source"], c["role"], c["treatment"]) for c in dataset.columns),
        )


def dataset_named(db: Session, name: str) -> Dataset | None:
    return db.scalar(select(Dataset).where(Dataset.name == name))


def dataset_resource(dataset: Dataset | None, name: str) -> Resource:
    """The dataset as authorize() judges it; a name that matches none is decided (and logged) as not found."""
    if dataset is not None:
        return Resource.dataset(dataset)
    return Resource(ResourceType.DATASET.value, None, f"dataset/{name[:63]}")


def departments_with_steward(db: Session) -> set[int]:
    """Ids of the departments with at least one steward who is not disabled (who can decide applications)."""
    return set(
        db.scalars(
            select(User.department_id).where(User.role == Role.STEWARD, User.disabled.is_(False)).distinct()
        )
    )


def _entry(dataset: Dataset, owner_has_steward: bool) -> DatasetEntry:
    ordered = sorted(dataset.snapshots, key=lambda s: (s.period, s.version))
    return DatasetEntry(
        name=dataset.name,
        title=dataset.title,
        owner=dataset.owner.name,
        periods=tuple(sorted({s.period for s in ordered})),
        latest=_snapshot_entry(ordered[-1]) if ordered else None,
        owner_has_steward=owner_has_steward,
    )


def _snapshot_entry(snapshot: Snapshot) -> SnapshotEntry:
    return SnapshotEntry(
        period=snapshot.period,
        version=snapshot.version,
        imported_at=snapshot.imported_at,
        rows=snapshot.rows,
        bytes=snapshot.bytes,
        sender=snapshot.sender.name,
    )


def _assessed_entries(db: Session, snapshots: list[Snapshot]) -> tuple[SnapshotEntry, ...]:
    """Each snapshot with its risk report and its link rate; the drift is against the previous period's newest
    version that has a link rate."""
    from renkei.hub.assessment import linkage_by_snapshot, risk_by_snapshot  # noqa: PLC0415 (see the imports)

    ids = [s.id for s in snapshots]
    risks, links = risk_by_snapshot(db, ids), linkage_by_snapshot(db, ids)
    registers = [link.register_snapshot_id for link in links.values()]
    found = db.execute(select(Snapshot.id, Snapshot.version).where(Snapshot.id.in_(registers)))
    versions = {snapshot_id: version for snapshot_id, version in found}
    newest = {s.period: links[s.id].rate for s in snapshots if s.id in links}  # by version: the last wins
    entries = []
    for snapshot in snapshots:
        link, risk = links.get(snapshot.id), risks.get(snapshot.id)
        summary = None
        if link is not None:
            earlier = [p for p in sorted(newest) if p < snapshot.period]
            drift = link.rate - newest[earlier[-1]] if earlier else None
            summary = LinkSummary(link.rate, versions.get(link.register_snapshot_id, 0), drift)
        entry = _snapshot_entry(snapshot)
        entries.append(replace(entry, risk=_risk_summary(risk) if risk is not None else None, link=summary))
    return tuple(entries)


def _risk_summary(risk: SnapshotRisk) -> RiskSummary:
    report = risk.report
    records = max(int(report["records"]), 1)
    overall = report["overall"]
    k = int(report["thresholds"]["k"])
    shares = {size: int(size) * n / records for size, n in overall["sizes"].items() if size.isdigit()}
    shares[f">={k}"] = max(0.0, 1.0 - sum(shares.values()))
    return RiskSummary(
        flagged=risk.flagged,
        quasi_identifiers=tuple(report["quasi_identifiers"]),
        k=k,
        records_at_risk=overall["records_at_risk"],
        sample_unique_share=overall["sample_unique_share"],
        highest_risk=overall["highest_risk"],
        average_risk=overall["average_risk"],
        class_sizes=shares,
        top_combination=tuple(report["top_combination"]),
        combinations=tuple(
            CombinationRisk(
                tuple(c["columns"]),
                c["sample_unique_share"],
                c["records_at_risk"],
                c["minimal_uniques"] / records,
            )
            for c in report["combinations"]
        ),
    )
