"""The catalog as the faces show it: datasets, their snapshots (periods and versions) and their columns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.access.people import Role, User
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.home import Hub
from renkei.hub.services.decisions import require


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    period: dt.date
    version: int
    imported_at: dt.datetime
    rows: int
    bytes: int
    sender: str


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
        snapshots = db.scalars(
            select(Snapshot)
            .where(Snapshot.dataset_id == dataset.id)
            .options(selectinload(Snapshot.sender))
            .order_by(Snapshot.period, Snapshot.version)
        )
        return DatasetDetail(
            name=dataset.name,
            title=dataset.title,
            description=dataset.description,
            owner=dataset.owner.name,
            snapshots=tuple(_snapshot_entry(s) for s in snapshots),
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
