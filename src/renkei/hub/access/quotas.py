"""Download quotas (ダウンロード制限): per-user limits on files that leave the hub, enforced atomically.

An admin sets four limits for each user. ``may_download`` is off by default, so nobody downloads until an
admin allows it. The others are ``files_per_day``, ``rows_per_file`` and ``bytes_per_month``; days and months
follow the calendar in Japan. A user without a quota row has the defaults below, and so cannot download.

**Atomicity.** One conditional ``UPDATE`` adds the file to the user's counters only if every limit still
holds::

    UPDATE download_quotas SET files_today = <today's count> + 1, bytes_this_month = <month's bytes> + :size …
    WHERE user_id = :user AND may_download AND :rows <= rows_per_file
      AND <today's count> + 1 <= files_per_day AND <month's bytes> + :size <= bytes_per_month

Each database makes this statement atomic. PostgreSQL (READ COMMITTED) makes a concurrent update of the same
row wait, then evaluates the WHERE clause again against the committed row. SQLite runs one writer at a time.
As a result, concurrent requests never exceed a quota. No lock is held while Python code runs, no second lock
can deadlock against the audit log's head, and the same statement works on both databases. A refused update
changes nothing; only then does a plain read work out which limit was hit, to explain the refusal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CursorResult,
    Date,
    ForeignKey,
    Integer,
    String,
    case,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from renkei.clock import SYSTEM_CLOCK, Clock, city_today
from renkei.errors import RenkeiError
from renkei.hub.access.authz import (
    Action,
    Actor,
    Forbidden,
    Principal,
    Resource,
    ResourceType,
    Verdict,
    allow,
    check,
    deny,
    record_decision,
    rule,
)
from renkei.hub.access.grants import data_role_refusal, snapshot_verdict
from renkei.hub.access.people import User
from renkei.hub.audit import AuditLog, UTCDateTime
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import Base
from renkei.hub.settings import DEFAULTS, QuotaSettings

# The built-in starting limits (the settings quotas.*; a hub's own are hub.settings.quotas).
DEFAULT_MAY_DOWNLOAD = DEFAULTS.quotas.may_download
DEFAULT_FILES_PER_DAY = DEFAULTS.quotas.files_per_day
DEFAULT_ROWS_PER_FILE = DEFAULTS.quotas.rows_per_file
DEFAULT_BYTES_PER_MONTH = DEFAULTS.quotas.bytes_per_month  # 100 MiB


class DownloadQuota(Base):
    """A user's limits (set by an admin) and usage counters (kept by :func:`reserve_download`)."""

    __tablename__ = "download_quotas"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    may_download: Mapped[bool] = mapped_column(Boolean, default=DEFAULT_MAY_DOWNLOAD)
    files_per_day: Mapped[int] = mapped_column(Integer, default=DEFAULT_FILES_PER_DAY)
    rows_per_file: Mapped[int] = mapped_column(Integer, default=DEFAULT_ROWS_PER_FILE)
    bytes_per_month: Mapped[int] = mapped_column(BigInteger, default=DEFAULT_BYTES_PER_MONTH)
    usage_day: Mapped[dt.date | None] = mapped_column(Date, default=None)  # the day files_today counts
    files_today: Mapped[int] = mapped_column(Integer, default=0)
    usage_month: Mapped[dt.date | None] = mapped_column(Date, default=None)  # first day of the counted month
    bytes_this_month: Mapped[int] = mapped_column(BigInteger, default=0)
    set_by: Mapped[str] = mapped_column(String(128), default="")
    set_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    def files_used(self, today: dt.date) -> int:
        return self.files_today if self.usage_day == today else 0

    def bytes_used(self, today: dt.date) -> int:
        return self.bytes_this_month if self.usage_month == today.replace(day=1) else 0


class Reservation(Base):
    """One file's place in its user's quota, taken before the file is written."""

    __tablename__ = "download_reservations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    reserved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class QuotaExceeded(Forbidden):
    """The file would exceed a download limit, or the user may not download at all."""


def quota_refusal(
    quota: DownloadQuota | None, rows: int, size: int, today: dt.date
) -> tuple[str, str, str] | None:
    """(policy, ja, en) naming the first limit a file of ``rows`` rows and ``size`` bytes breaks, or None."""
    if quota is None or not quota.may_download:
        return (
            "deny:no-download",
            "ダウンロードは許可されていません",
            "downloads are not enabled for this user",
        )
    if rows > quota.rows_per_file:
        n = quota.rows_per_file
        return "deny:quota-rows", f"1ファイル {n:,} 行までです", f"a file may hold at most {n} rows"
    if quota.files_used(today) + 1 > quota.files_per_day:
        n = quota.files_per_day
        return "deny:quota-files", f"本日のダウンロードは {n} 件までです", f"at most {n} files a day"
    if quota.bytes_used(today) + size > quota.bytes_per_month:
        n = quota.bytes_per_month
        return "deny:quota-bytes", f"今月のダウンロードは {n:,} バイトまでです", f"at most {n} bytes a month"
    return None


def reserve_download(
    session: Session, user: User | int, rows: int, size: int, clock: Clock = SYSTEM_CLOCK
) -> Reservation:
    """Take a place for a file of ``rows`` rows and ``size`` bytes in the user's quota, atomically.

    Raises :class:`QuotaExceeded` and changes nothing when a limit would be exceeded. The reservation
    commits with ``session``.
    """
    if rows < 0 or size < 0:
        raise ValueError("rows and size must not be negative")
    user_id = user if isinstance(user, int) else user.id
    today = city_today(clock)
    month = today.replace(day=1)
    files_today = case((DownloadQuota.usage_day == today, DownloadQuota.files_today), else_=0)
    bytes_this_month = case((DownloadQuota.usage_month == month, DownloadQuota.bytes_this_month), else_=0)
    stmt = (
        update(DownloadQuota)
        .where(
            DownloadQuota.user_id == user_id,
            DownloadQuota.may_download.is_(True),
            DownloadQuota.rows_per_file >= rows,
            files_today + 1 <= DownloadQuota.files_per_day,
            bytes_this_month + size <= DownloadQuota.bytes_per_month,
        )
        .values(
            usage_day=today,
            files_today=files_today + 1,
            usage_month=month,
            bytes_this_month=bytes_this_month + size,
        )
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], session.execute(stmt)).rowcount != 1:
        quota = session.get(DownloadQuota, user_id, populate_existing=True)
        _, ja, en = quota_refusal(quota, rows, size, today) or ("", "ダウンロードできません", "quota refused")
        raise QuotaExceeded(ja, en)
    reservation = Reservation(user_id=user_id, rows=rows, bytes=size, reserved_at=clock.now())
    session.add(reservation)
    session.flush()
    return reservation


def reserve_export(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    snapshot_ids: Iterable[int],
    rows: int,
    size: int,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Reservation:
    """Decide an export (grants, may_download, quota) and reserve its place atomically; commits at once.

    Call it before the file is written, with a session that has not written yet. The place stays taken if the
    export then fails, so that a failure cannot be used to go past a limit. Log the written file (its hash)
    with the reservation's id. If a concurrent download takes the last place between the decision and the
    reservation, the refusal is recorded as a second, denied decision.
    """
    resource = Resource.export(snapshot_ids, rows, size)
    check(session, audit, actor, Action.EXPORT, resource, clock=clock)
    assert actor.user_id is not None  # the export rule admits analysts only
    try:
        reservation = reserve_download(session, actor.user_id, rows, size, clock)
    except QuotaExceeded as exc:
        session.rollback()
        record_decision(audit, actor, Action.EXPORT.value, resource, deny("deny:quota", exc.ja, exc.en))
        raise
    session.commit()
    return reservation


def set_quota(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    login_id: str,
    *,
    may_download: bool | None = None,
    files_per_day: int | None = None,
    rows_per_file: int | None = None,
    bytes_per_month: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
    defaults: QuotaSettings = DEFAULTS.quotas,
) -> DownloadQuota:
    """An admin sets a user's limits (the ones not given stay as they are, or start from ``defaults``, the
    hub's settings ``quotas.*``); commits."""
    limits = {
        "files_per_day": files_per_day,
        "rows_per_file": rows_per_file,
        "bytes_per_month": bytes_per_month,
    }
    for name, value in limits.items():
        if value is not None and value < 0:
            raise RenkeiError(f"{name} は 0 以上にしてください", f"{name} must not be negative")
    user = session.scalar(select(User).where(User.login_id == login_id))
    if user is None:
        raise RenkeiError(f"利用者 {login_id} はいません", f"no user {login_id!r}")
    check(
        session,
        audit,
        actor,
        Action.ADMIN_QUOTAS,
        Resource(ResourceType.SYSTEM.value, None, f"quota/{login_id}"),
        clock=clock,
    )
    quota = quota_for(session, user, defaults)
    changes = {"may_download": may_download, **limits}
    for name, value in changes.items():
        if value is not None:
            setattr(quota, name, value)
    quota.set_by, quota.set_at = actor.name, clock.now()
    session.add(quota)
    session.flush()
    audit.append_in(
        session,
        actor=actor.name,
        action=AuditAction.QUOTA_SET,
        resource=f"quota/{login_id}",
        terminal=actor.terminal,
        client_addr=actor.client_addr,
        details={
            "user_id": user.id,
            "may_download": quota.may_download,
            "files_per_day": quota.files_per_day,
            "rows_per_file": quota.rows_per_file,
            "bytes_per_month": quota.bytes_per_month,
        },
    )
    session.commit()
    return quota


def quota_for(session: Session, user: User, defaults: QuotaSettings = DEFAULTS.quotas) -> DownloadQuota:
    """The user's quota as it applies: the stored row, or ``defaults`` when none is stored."""
    stored = session.get(DownloadQuota, user.id)
    if stored is not None:
        return stored
    return DownloadQuota(
        user_id=user.id,
        may_download=defaults.may_download,
        files_per_day=defaults.files_per_day,
        rows_per_file=defaults.rows_per_file,
        bytes_per_month=defaults.bytes_per_month,
        files_today=0,
        bytes_this_month=0,
    )


@rule(Action.EXPORT, on=[ResourceType.EXPORT])
def _may_export(
    session: Session, principal: Principal, action: Action, resource: Resource, clock: Clock
) -> Verdict:
    refusal = data_role_refusal(principal)
    if refusal is not None:
        return refusal
    if not resource.snapshot_ids:
        return deny(
            "deny:no-source",
            "出力元のスナップショットを指定してください",
            "an export names the snapshots it comes from",
        )
    grant_ids: list[int] = []
    for snapshot_id in resource.snapshot_ids:
        verdict = snapshot_verdict(session, principal, snapshot_id, clock)
        if not verdict.allowed:
            return dataclasses.replace(
                verdict, label=""
            )  # the export is the resource; the reason names the snapshot
        grant_ids.extend(verdict.grant_ids)
    quota = session.get(DownloadQuota, principal.user_id, populate_existing=True)
    over = quota_refusal(quota, resource.rows, resource.bytes, city_today(clock))
    if over is not None:
        # The same refusal as reserve_download's, whichever finds the limit first (exporters racing for the last place)
        return deny(*over, grant_ids=tuple(grant_ids), error=QuotaExceeded)
    return allow(
        "grant+quota",
        "利用承認とダウンロード制限の範囲内です",
        "every source snapshot is granted, within the download quota",
        grant_ids=tuple(grant_ids),
    )
