"""What the portal's export and review pages show: one's own releases, exports and quota; the steward's queue.

Read models only; the decisions stay where they are: an export is decided by ``authorize()`` (``export``) and
the quota reservation (:func:`renkei.hub.analysis.exports.export_release`), a review by ``release.review``
(:func:`renkei.hub.analysis.review.decide_review`), and the queue is :func:`in_review_for`, decided object by
object. Own releases, exports and quota are the caller's own records (by user id), never another's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock, city_today
from renkei.hub.access.applications import Application
from renkei.hub.access.authz import Actor
from renkei.hub.access.grants import Grant, grants_on_snapshot
from renkei.hub.access.people import User
from renkei.hub.access.quotas import quota_for
from renkei.hub.analysis.errors import analyst_id
from renkei.hub.analysis.ledger import Export, Release, ReleaseStatus
from renkei.hub.analysis.review import in_review_for
from renkei.hub.catalog import Department
from renkei.hub.home import Hub

EXPORTABLE = frozenset({ReleaseStatus.RELEASED, ReleaseStatus.APPROVED})


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    """One of my tables in the release ledger, as the exports page lists it."""

    id: int
    kind: str
    title: str
    datasets: list[str]
    status: str  # released, review, approved, rejected
    review_reason: str  # why the automatic checks sent it to review
    review_comment: str  # the steward's reason
    rows: int
    created_at: dt.datetime
    reviewed_at: dt.datetime | None

    @property
    def exportable(self) -> bool:
        return self.status in EXPORTABLE


@dataclass(frozen=True, slots=True)
class ExportSummary:
    id: int
    release_id: int
    format: str
    file_name: str
    rows: int
    bytes: int
    sha256: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """My download limits and what is left of them today and this month (Japan's calendar)."""

    may_download: bool
    files_per_day: int
    files_left: int
    rows_per_file: int
    bytes_per_month: int
    bytes_left: int


@dataclass(frozen=True, slots=True)
class ExportsOverview:
    releases: list[ReleaseSummary]
    exports: list[ExportSummary]
    quota: QuotaStatus


def exports_overview(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> ExportsOverview:
    """The caller's releases (newest first), the files exported of them, and the download quota left."""
    user_id = analyst_id(actor)
    with hub.session() as session:
        releases = session.scalars(
            select(Release).where(Release.user_id == user_id).order_by(Release.id.desc())
        ).all()
        exports = session.scalars(
            select(Export).where(Export.user_id == user_id).order_by(Export.id.desc())
        ).all()
        user = session.get_one(User, user_id)
        return ExportsOverview(
            [_summary(r) for r in releases],
            [
                ExportSummary(
                    e.id, e.release_id, e.format, e.file_name, e.rows, e.bytes, e.sha256, e.created_at
                )
                for e in exports
            ],
            _quota(session, hub, user, clock),
        )


def _summary(release: Release) -> ReleaseSummary:
    return ReleaseSummary(
        id=release.id,
        kind=release.kind,
        title=release.title,
        datasets=list(release.datasets),
        status=release.status,
        review_reason=release.review_reason,
        review_comment=release.review_comment,
        rows=len(release.shown.get("rows", [])),
        created_at=release.created_at,
        reviewed_at=release.reviewed_at,
    )


def _quota(session: Session, hub: Hub, user: User, clock: Clock) -> QuotaStatus:
    quota = quota_for(session, user, hub.settings.quotas)
    today = city_today(clock)
    return QuotaStatus(
        may_download=quota.may_download,
        files_per_day=quota.files_per_day,
        files_left=max(0, quota.files_per_day - quota.files_used(today)),
        rows_per_file=quota.rows_per_file,
        bytes_per_month=quota.bytes_per_month,
        bytes_left=max(0, quota.bytes_per_month - quota.bytes_used(today)),
    )


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """A table waiting for the steward: who asked, for what purpose, the table, and why it needs a person."""

    id: int
    kind: str
    title: str
    requester: str  # display name (login id)
    requester_department: str
    purposes: list[str]  # of the applications whose grants the table read
    datasets: list[str]
    sql: str
    header: list[str]
    rows: list[list[Any]]
    notes: list[str]
    failed_checks: str  # what sent it to review (the differencing check, or the requester's reason)
    created_at: dt.datetime


def review_queue(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[ReviewEntry]:
    """The tables :func:`in_review_for` lets the caller decide (one recorded decision), with their context."""
    waiting = in_review_for(hub, actor, clock=clock)
    with hub.session() as session:
        return [_entry(session, release) for release in waiting]


def _entry(session: Session, release: Release) -> ReviewEntry:
    user = session.get_one(User, release.user_id)
    department = session.get(Department, user.department_id)
    shown = release.shown
    return ReviewEntry(
        id=release.id,
        kind=release.kind,
        title=release.title,
        requester=f"{user.display_name}（{user.login_id}）",
        requester_department=department.name if department is not None else "",
        purposes=_purposes(session, release),
        datasets=list(release.datasets),
        sql=release.sql,
        header=list(shown.get("header", [])),
        rows=list(shown.get("rows", [])),
        notes=[str(n) for n in shown.get("notes", [])],
        failed_checks=release.review_reason,
        created_at=release.created_at,
    )


def _purposes(session: Session, release: Release) -> list[str]:
    """The 目的 of the requester's applications behind the snapshots the table read, oldest first."""
    grants: dict[int, Grant] = {}
    for snapshot_id in release.snapshot_ids:
        for grant in grants_on_snapshot(session, release.user_id, snapshot_id):
            grants.setdefault(grant.id, grant)
    application_ids = sorted({g.application_id for g in grants.values()})
    if not application_ids:
        return []
    found = session.scalars(
        select(Application).where(Application.id.in_(application_ids)).order_by(Application.id)
    )
    return [a.purpose for a in found]
