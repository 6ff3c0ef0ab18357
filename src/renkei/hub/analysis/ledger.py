"""The release ledger (公表台帳): every table that left the sandbox, the exports made of it, and reviews.

A release row keeps what the differencing check needs (the definition, and each cell's coordinates with its
true person count, which never leaves the hub) and the machine-readable record of the rules it passed. An
export row keeps the file's SHA-256, never its content; a table that failed the automatic checks waits in
``review`` for a steward of the owning department, who is never the requester.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base


class ReleaseKind(enum.StrEnum):
    TABLE = "table"  # the table builder
    SQL = "sql"  # an SQL aggregate controlled by rule 6


class ReleaseStatus(enum.StrEnum):
    RELEASED = "released"  # passed the automatic checks
    REVIEW = "review"  # failed them; waits for a steward
    APPROVED = "approved"  # a steward approved it
    REJECTED = "rejected"


class Release(Base):
    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200), default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)  # the builder request or {"sql": …}
    sql: Mapped[str] = mapped_column(Text)
    snapshot_ids: Mapped[list[int]] = mapped_column(JSON)
    datasets: Mapped[list[str]] = mapped_column(JSON)
    cells: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"c": coordinates, "n": true count}]
    shown: Mapped[dict[str, Any]] = mapped_column(JSON)  # the protected table as shown: header, rows, notes
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    record_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    review_reason: Mapped[str] = mapped_column(Text, default="")  # why the automatic checks sent it to review
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    review_comment: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    format: Mapped[str] = mapped_column(String(8))
    file_name: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SavedAnalysis(Base):
    """A saved builder request or SQL text, re-run on new periods; never its results."""

    __tablename__ = "saved_analyses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    theme: Mapped[str] = mapped_column(String(64), default="")  # a dashboard page: 人口, 子育て, 介護 …
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DashboardTile(Base):
    """A saved table's latest run on a dashboard: the release it made, for the snapshots it ran on.

    ``snapshots_key`` is the SHA-256 of the definition and of the granted snapshots (ids and versions) the table
    would read now; a new period imported (or a grant ending) changes it, and the table is run again through the
    builder's disclosure control (:mod:`renkei.hub.analysis.dashboards`). Only the release's protected cells
    are shown."""

    __tablename__ = "dashboard_tiles"

    analysis_id: Mapped[int] = mapped_column(
        ForeignKey("saved_analyses.id", ondelete="CASCADE"), primary_key=True
    )
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    snapshots_key: Mapped[str] = mapped_column(String(64))
    refreshed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
