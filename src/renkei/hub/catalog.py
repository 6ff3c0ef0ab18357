"""The hub's catalog: departments, registered datasets, senders, imported packages and snapshots.

The catalog describes what the vault holds; it never holds data values. A snapshot row is written in the same
transaction as its import's audit entry, and only after the vault holds the complete encrypted files.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base

if TYPE_CHECKING:  # the spec model loads pyarrow; listing the catalog needs neither
    from renkei.spec import DatasetSpec


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Department(Base):
    """A department of the city (所管課 when it owns datasets)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    datasets: Mapped[list[Dataset]] = relationship(back_populates="owner")


class Dataset(Base):
    """A registered source dataset: one vault folder, the unit of access control."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    columns: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[Department] = relationship(back_populates="datasets")
    snapshots: Mapped[list[Snapshot]] = relationship(back_populates="dataset", order_by="Snapshot.period")

    def dataset_spec(self) -> DatasetSpec:
        from renkei.spec import DatasetSpec  # noqa: PLC0415 (lazy: see the imports)

        return DatasetSpec.model_validate(self.spec)


class Sender(Base):
    """A sending system (共通基盤) whose packages the hub accepts, by its Ed25519 public key."""

    __tablename__ = "senders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PackageState(enum.StrEnum):
    STORING = (
        "storing"  # version reserved, vault write in progress; if interrupted, the next import recovers it
    )
    IMPORTED = "imported"


class Package(Base):
    """Every package the hub accepted, so that a second import is a no-op and a replay is caught.

    A row in state ``storing`` is the reservation of its (dataset, period, version): the unique key makes two
    imports unable to reserve the same version, whatever the database. It carries what the snapshot row will
    need (rows, bytes, spec hash), so that an import interrupted after the vault write can be finished from the
    vault alone (``renkei.hub.importer``).
    """

    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("dataset_id", "period", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[str] = mapped_column(String(32), unique=True)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    period: Mapped[dt.date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[PackageState] = mapped_column(Enum(PackageState, native_enum=False, length=16))
    # None only on rows reserved before these were recorded (revision 2f7c4e9a1d35)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    spec_hash: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sender: Mapped[Sender] = relationship()


class Snapshot(Base):
    """One (dataset, period, version), stored once in the vault and never changed."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("dataset_id", "period", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    period: Mapped[dt.date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    spec_hash: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[int] = mapped_column(ForeignKey("senders.id"))
    package_id: Mapped[str] = mapped_column(String(32))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="snapshots")
    sender: Mapped[Sender] = relationship()

    @property
    def resource(self) -> str:
        return f"{self.dataset.name}/{self.period.isoformat()}/v{self.version}"


def get_or_create_department(session: Session, name: str) -> Department:
    dept = session.scalar(select(Department).where(Department.name == name))
    if dept is None:
        dept = Department(name=name)
        session.add(dept)
        session.flush()
    return dept


def register_dataset(session: Session, spec: DatasetSpec) -> Dataset:
    """Register a dataset from its spec, or update its description when the spec is unchanged."""
    existing = session.scalar(select(Dataset).where(Dataset.name == spec.dataset))
    owner = get_or_create_department(session, spec.owner)
    values = {
        "title": spec.title,
        "description": spec.description,
        "owner": owner,
        "spec_hash": spec.spec_hash,
        "spec": spec.model_dump(mode="json"),
        "columns": spec.column_dictionary(),
    }
    if existing is None:
        existing = Dataset(name=spec.dataset, **values)
        session.add(existing)
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    session.flush()
    return existing
