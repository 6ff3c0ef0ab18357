"""What the importer learns of each snapshot it stores: its re-identification risk and its link rate (docs/risk.md).

:func:`assess_import` runs right after the snapshot row is committed, on the decrypted Parquet file the import
still holds. It stores, in one transaction with an ``import.assess`` audit entry:

- the **risk report** (:func:`renkei.hub.risk.risk_report`) over the quasi-identifiers the dataset's spec
  declares, judged against the thresholds of the setting ``risk.*`` in force then (the report keeps them);
  a flagged snapshot's row-level grants need a second approval (:mod:`renkei.hub.access.applications`);
- the **link rate**: the share of the snapshot's rows whose ``pid`` is among the pids of the resident register
  (the setting ``risk.population_dataset``, 住基) of the same period, its newest version. When a register
  snapshot arrives, the link rates of every snapshot of its period are computed again against it.

Linking reads the other snapshot from the vault: decrypted into a sealed memfd of the importer's process, read by
DuckDB for two counts and closed (the one reader besides the workspace gate: tests/unit/test_decrypt_callers.py).
A snapshot that an import finished after a crash (``recovered``) has no report until the next import of its
period computes the link rates again; it is not flagged (docs/risk.md, "Limits").
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from renkei.hub.audit import AuditLog, UTCDateTime
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Dataset, Snapshot, utcnow
from renkei.hub.db import Base
from renkei.hub.settings import RiskSettings
from renkei.hub.vault import SnapshotRef, Vault, memfd_path

if TYPE_CHECKING:  # the figures load DuckDB and pyarrow (through the spec): only an import computes them
    from renkei.hub.risk import RiskThresholds

# renkei.manifest.DATA_FILE; that module loads pyarrow, which the catalog's pages need not
DATA_FILE = "data.parquet"
ASSESS_LOCK = "_assess"  # the period lock of assessments: no dataset name starts with "_"


class SnapshotRisk(Base):
    """A snapshot's re-identification risk report, computed once at its import."""

    __tablename__ = "snapshot_risk"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"), primary_key=True)
    records: Mapped[int] = mapped_column(BigInteger)
    flagged: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # renkei.hub.risk.risk_report: figures, no values
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SnapshotLinkage(Base):
    """How many of a snapshot's rows link by pid to the resident register of its period (which snapshot)."""

    __tablename__ = "snapshot_linkage"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"), primary_key=True)
    register_snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"))
    rows: Mapped[int] = mapped_column(BigInteger)
    linked: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def rate(self) -> float:
        return self.linked / self.rows if self.rows else 0.0


def thresholds_of(settings: RiskSettings) -> RiskThresholds:
    from renkei.hub.risk import RiskThresholds  # noqa: PLC0415 (lazy: see the imports)

    return RiskThresholds(
        k=settings.k,
        max_records_at_risk=settings.max_records_at_risk,
        max_average_risk=settings.max_average_risk,
        max_combination_size=settings.max_combination_size,
    )


def assess_import(
    session: Session,
    vault: Vault,
    audit: AuditLog,
    snapshot: Snapshot,
    data: Path,
    settings: RiskSettings,
    staging: Path,
) -> None:
    """Risk report and link rates of a snapshot just stored, from its decrypted Parquet ``data``; commits.

    Under a lock per period (``<staging>/locks/_assess@<period>.lock``; no dataset name starts with ``_``), taken
    after the snapshot row was committed: of a register and another snapshot of one period imported at the same
    time, the one assessed second sees both rows, so the link rate is never lost to the race.
    """
    from renkei.hub.storing import period_lock  # noqa: PLC0415 (lazy: see the imports)

    with period_lock(staging, ASSESS_LOCK, snapshot.period):
        _assess(session, vault, audit, snapshot, data, settings)


def _assess(
    session: Session, vault: Vault, audit: AuditLog, snapshot: Snapshot, data: Path, settings: RiskSettings
) -> None:
    from renkei.hub.db import writing  # noqa: PLC0415
    from renkei.hub.risk import PID, link_counts, risk_report  # noqa: PLC0415 (lazy: see the imports)
    from renkei.hub.storing import IMPORTER  # noqa: PLC0415

    session.rollback()  # read what other imports committed before the lock was ours

    dataset = snapshot.dataset
    spec = dataset.dataset_spec()
    report = (
        risk_report(data, spec.quasi_identifiers, thresholds_of(settings)) if spec.quasi_identifiers else None
    )
    register: Snapshot | None
    if dataset.name == settings.population_dataset:
        links = [(other, link_counts_of(vault, other, data)) for other in _linkable(session, snapshot)]
        register = snapshot
    else:
        register = _register(session, snapshot, settings.population_dataset)
        links = []
        if register is not None and PID in spec.output_schema.names:
            with decrypted(vault, register) as register_path:
                links = [(snapshot, link_counts(data, register_path))]
    if report is None and not links:
        return
    snapshot_id, resource = snapshot.id, snapshot.resource
    register_id = register.id if register is not None else None
    counted = [(s.id, rows, linked) for s, (rows, linked) in links]
    details: dict[str, Any] = {"snapshot_id": snapshot_id}
    with writing(session):
        if report is not None:
            flagged = report["flagged"]
            session.add(
                SnapshotRisk(
                    snapshot_id=snapshot_id, records=report["records"], flagged=flagged, report=report
                )
            )
            details |= {"flagged": flagged, "records_at_risk": report["overall"]["records_at_risk"]}
        for linked_id, rows, linked in counted:
            assert register_id is not None
            _store_link(session, linked_id, register_id, rows, linked)
        if counted:
            details["linked"] = [list(each) for each in counted]  # [snapshot id, rows, rows linked]
        audit.append_in(
            session, actor=IMPORTER, action=AuditAction.IMPORT_ASSESS, resource=resource, details=details
        )


def link_counts_of(vault: Vault, snapshot: Snapshot, register_data: Path) -> tuple[int, int]:
    from renkei.hub.risk import link_counts  # noqa: PLC0415 (lazy: see the imports)

    with decrypted(vault, snapshot) as path:
        return link_counts(path, register_data)


def _store_link(session: Session, snapshot_id: int, register_id: int, rows: int, linked: int) -> None:
    row = session.get(SnapshotLinkage, snapshot_id)
    if row is None:
        session.add(
            SnapshotLinkage(
                snapshot_id=snapshot_id, register_snapshot_id=register_id, rows=rows, linked=linked
            )
        )
    else:
        row.register_snapshot_id, row.rows, row.linked, row.computed_at = register_id, rows, linked, utcnow()


def _register(session: Session, snapshot: Snapshot, population: str) -> Snapshot | None:
    """The newest version of the resident register's snapshot of the same period, if it has arrived."""
    return session.scalar(
        select(Snapshot)
        .join(Dataset, Snapshot.dataset_id == Dataset.id)
        .where(Dataset.name == population, Snapshot.period == snapshot.period)
        .order_by(Snapshot.version.desc())
        .limit(1)
    )


def _linkable(session: Session, register: Snapshot) -> list[Snapshot]:
    """Every other dataset's snapshot of the register's period that has a pid column."""
    others = session.scalars(
        select(Snapshot).where(Snapshot.period == register.period, Snapshot.dataset_id != register.dataset_id)
    ).all()
    return [s for s in others if "pid" in s.dataset.dataset_spec().output_schema.names]


@contextmanager
def decrypted(vault: Vault, snapshot: Snapshot) -> Iterator[str]:
    """The snapshot's Parquet, decrypted into a sealed memfd of this process, as a path DuckDB reads."""
    ref = SnapshotRef(snapshot.dataset.name, snapshot.period, snapshot.version)
    fd = vault.decrypt_to_memfd(ref, DATA_FILE)
    try:
        yield memfd_path(fd)
    finally:
        os.close(fd)


# --- what the faces show ----------------------------------------------------------------------------------


def risk_by_snapshot(session: Session, snapshot_ids: list[int]) -> dict[int, SnapshotRisk]:
    if not snapshot_ids:
        return {}
    rows = session.scalars(select(SnapshotRisk).where(SnapshotRisk.snapshot_id.in_(snapshot_ids)))
    return {r.snapshot_id: r for r in rows}


def linkage_by_snapshot(session: Session, snapshot_ids: list[int]) -> dict[int, SnapshotLinkage]:
    if not snapshot_ids:
        return {}
    rows = session.scalars(select(SnapshotLinkage).where(SnapshotLinkage.snapshot_id.in_(snapshot_ids)))
    return {r.snapshot_id: r for r in rows}


def flagged_snapshots(session: Session, snapshot_ids: list[int]) -> set[int]:
    """Which of these snapshots' risk reports are flagged (a snapshot with no report is not)."""
    return {i for i, r in risk_by_snapshot(session, snapshot_ids).items() if r.flagged}


def link_rates_for(session: Session, request: Any, opened: Sequence[Any]) -> list[dict[str, Any]] | None:
    """For a linked builder table's release record: the link rate of each snapshot it reads (its base dataset's
    and every linked dataset's, in its periods), as shares only; None for a table with no link."""
    if not request.links:
        return None
    used = {request.dataset, *(link.dataset for link in request.links)}
    periods = set(request.periods)
    ids = [o.snapshot_id for o in opened if o.dataset in used and (not periods or o.period in periods)]
    found = linkage_by_snapshot(session, ids)
    names = {o.snapshot_id: o.resource for o in opened}
    registers = (
        {
            s.id: s.resource
            for s in session.scalars(
                select(Snapshot).where(Snapshot.id.in_([r.register_snapshot_id for r in found.values()]))
            )
        }
        if found
        else {}
    )
    return [
        {
            "snapshot": names[i],
            "register": registers.get(found[i].register_snapshot_id, "") if i in found else None,
            "link_rate": round(found[i].rate, 6) if i in found else None,
        }
        for i in sorted(set(ids))
    ]
