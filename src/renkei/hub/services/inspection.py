"""The monthly inspection (点検) of the audit log: what an auditor checks each month, computed in one place.

個人情報の適正管理について点検を行う (the city's design, ../shared/seed): for one calendar month of the city
(JST), the report says whether the audit log verifies against its signed Merkle checkpoints, who logged in and
who was refused, what came from an unregistered or revoked terminal, who read which dataset (aggregates and
個票閲覧), which files left the hub with their SHA-256 and each user's monthly quota, the approvals,
rejections and revocations, the administrators' changes, every denial, and what looks unusual: activity
outside working hours (``audit.working_hours_start`` – ``audit.working_hours_end``) and a user refused
``audit.repeated_denials`` times or more in one day.

Reading it is ``audit.read`` (auditors and admins): one decision per report, itself on the record. The web
page, its PDF and ``renkei audit inspection --month`` all call :func:`monthly_inspection`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from renkei.clock import JST, SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.access.people import User
from renkei.hub.access.quotas import DownloadQuota
from renkei.hub.audit import AuditCheckpointRow, AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from renkei.hub.services.decisions import require

MONTH = re.compile(r"(\d{4})-(\d{2})")
LOGIN_STEPS = (AuditAction.LOGIN_PASSWORD, AuditAction.LOGIN_CARD, AuditAction.LOGIN_TOTP)
SECOND_STEPS = {AuditAction.LOGIN_CARD.value, AuditAction.LOGIN_TOTP.value}  # a login ends with one of these
TERMINAL_REFUSALS = {"unregistered_terminal", "terminal_revoked"}
DATA_ACCESSES = {Action.SNAPSHOT_READ.value, Action.SNAPSHOT_READ_ROWS.value}
DECISIONS = {  # the workflow's decisions, in the report's section "approvals and revocations"
    AuditAction.APPLICATION_APPROVE.value,
    AuditAction.APPLICATION_REJECT.value,
    AuditAction.APPLICATION_REVOKE.value,
    AuditAction.APPLICATION_EXPIRE.value,
    AuditAction.GRANT_REVOKE.value,
    AuditAction.RELEASE_REVIEW.value,
}
LISTED = 500  # at most this many rows in a listed section (the counts are always complete)


def parse_month(text: str) -> dt.date:
    """``YYYY-MM`` → the month's first day."""
    match = MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise RenkeiError(
            f"月は YYYY-MM の形で指定してください（例: 2026-04）: {text[:20]!r}",
            f"Give the month as YYYY-MM (e.g. 2026-04), not {text[:20]!r}",
        )
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    size: int  # entries in the whole log
    covered: int  # entries covered by a signed checkpoint whose root matched
    checkpoints_checked: int
    checkpoints_in_month: int
    first_bad_seq: int | None
    message_ja: str
    message_en: str
    # Not None: entries from seq full_size on were verified now, the earlier ones in full at full_at
    full_size: int | None = None
    full_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class LoginCount:
    actor: str
    logins: int  # completed logins (the second step succeeded)
    refused: int  # refused steps (password, card, TOTP)


@dataclass(frozen=True, slots=True)
class Listed:
    """One audit entry as a section lists it."""

    seq: int
    at: dt.datetime
    actor: str
    terminal: str
    client_addr: str
    action: str
    resource: str
    result: str
    reason: str


@dataclass(frozen=True, slots=True)
class DataAccess:
    actor: str
    dataset: str
    reads: int  # allowed snapshot.read decisions
    row_reads: int  # allowed snapshot.read_rows decisions (個票閲覧)


@dataclass(frozen=True, slots=True)
class ExportRow:
    seq: int
    at: dt.datetime
    actor: str
    resource: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class QuotaUse:
    actor: str
    files: int
    bytes: int  # exported this month, from the log
    bytes_per_month: int | None  # the user's limit now (None: no quota row, the defaults apply)


@dataclass(frozen=True, slots=True)
class DenialCount:
    actor: str
    access: str  # the decided access, or the action of a refused step
    count: int


@dataclass(frozen=True, slots=True)
class Unusual:
    kind: str  # off_hours | repeated_denials
    actor: str
    day: dt.date
    count: int
    first_seq: int


@dataclass(frozen=True, slots=True)
class InspectionReport:
    month: dt.date  # first day
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    generated_at: dt.datetime
    generated_by: str
    working_hours: tuple[int, int]
    repeated_denials: int
    entries: int  # entries in the month
    verification: Verification
    logins: list[LoginCount] = field(default_factory=list)
    terminal_refusals: list[Listed] = field(default_factory=list)
    data_access: list[DataAccess] = field(default_factory=list)
    exports: list[ExportRow] = field(default_factory=list)
    quota: list[QuotaUse] = field(default_factory=list)
    decisions: list[Listed] = field(default_factory=list)
    admin_changes: list[Listed] = field(default_factory=list)
    denials: list[DenialCount] = field(default_factory=list)
    unusual: list[Unusual] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def denial_total(self) -> int:
        return sum(d.count for d in self.denials)


def _city_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=JST).astimezone(dt.UTC)


def _listed(entry: AuditEntry) -> Listed:
    return Listed(
        entry.seq, entry.at, entry.actor, entry.terminal, entry.client_addr, entry.action, entry.resource,
        entry.result, entry.reason,
    )  # fmt: skip


def _dataset_of(resource: str) -> str:
    """``snapshot/juki/2026-03-31/v1`` → ``juki``."""
    parts = resource.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "snapshot" else resource


def monthly_inspection(
    hub: Hub, actor: Actor, month: dt.date, *, clock: Clock = SYSTEM_CLOCK, full_verification: bool = True
) -> InspectionReport:
    """The inspection report for the city's month starting at ``month`` (its first day).

    ``full_verification=False`` (the web page, shown on every view): the log is verified from the last full
    verification on (:meth:`AuditLog.verify_recent`), and the report says since when; the PDF and the CLI
    verify it in full."""
    month = month.replace(day=1)
    start, end = _city_midnight(month), _city_midnight(next_month(month))
    settings = hub.settings.audit
    hours = (settings.working_hours_start, settings.working_hours_end)
    with hub.session() as db:
        require(db, hub, actor, Action.AUDIT_READ, Resource.of(ResourceType.AUDIT_LOG), clock)
        in_month = (AuditEntry.at >= start) & (AuditEntry.at < end)
        checkpoints = db.scalar(
            select(func.count())
            .select_from(AuditCheckpointRow)
            .where(AuditCheckpointRow.at >= start, AuditCheckpointRow.at < end)
        )
        staff = set(
            db.scalars(select(User.login_id))
        )  # designated users: not the CLI, the importer, the clock
        tally = _Tally(hours, settings.repeated_denials, staff)
        query = select(AuditEntry).where(in_month).order_by(AuditEntry.seq).execution_options(yield_per=1000)
        for entry in db.scalars(query):
            tally.add(entry)
        limits = dict(
            db.execute(
                select(User.login_id, DownloadQuota.bytes_per_month).join(
                    DownloadQuota, DownloadQuota.user_id == User.id
                )
            ).all()
        )
    # The whole log: a checkpoint covers every entry before it (or the part since the last full verification).
    report = hub.audit.verify() if full_verification else hub.audit.verify_recent()
    verification = Verification(
        ok=report.ok,
        size=report.size,
        covered=report.covered,
        checkpoints_checked=report.checkpoints_checked,
        checkpoints_in_month=int(checkpoints or 0),
        first_bad_seq=report.first_bad_seq,
        message_ja=report.message_ja,
        message_en=report.message_en,
        full_size=report.full_size,
        full_at=report.full_at,
    )
    return tally.report(
        month=month, start=start, end=end, generated_at=clock.now(), generated_by=actor.name,
        verification=verification, limits=limits,
    )  # fmt: skip


class _Tally:
    """Counts and lists, entry by entry, in the order of the log."""

    def __init__(self, hours: tuple[int, int], repeated: int, staff: set[str]) -> None:
        self.hours, self.repeated, self.staff = hours, repeated, staff
        self.entries = 0
        self.logins: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.terminal_refusals: list[Listed] = []
        self.reads: Counter[tuple[str, str]] = Counter()
        self.row_reads: Counter[tuple[str, str]] = Counter()
        self.exports: list[ExportRow] = []
        self.export_files: Counter[str] = Counter()
        self.export_bytes: Counter[str] = Counter()
        self.decisions: list[Listed] = []
        self.admin_changes: list[Listed] = []
        self.denials: Counter[tuple[str, str]] = Counter()
        self.denials_by_day: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
        self.off_hours: dict[tuple[str, dt.date], list[int]] = defaultdict(list)

    def add(self, entry: AuditEntry) -> None:
        self.entries += 1
        action, result, actor = entry.action, entry.result, entry.actor
        details: dict[str, Any] = dict(entry.details or {})
        local = entry.at.astimezone(JST)
        day = local.date()
        if actor in self.staff and not self.hours[0] <= local.hour < self.hours[1]:
            self.off_hours[(actor, day)].append(entry.seq)
        if action in {a.value for a in LOGIN_STEPS}:
            if result == "ok" and action in SECOND_STEPS:
                self.logins[actor] += 1
            elif result == "denied":
                self.refused[actor] += 1
                if entry.reason in TERMINAL_REFUSALS:
                    _append(self.terminal_refusals, _listed(entry))
        elif action == AuditAction.SESSION_REJECTED and entry.reason in TERMINAL_REFUSALS:
            _append(self.terminal_refusals, _listed(entry))
        elif action == AuditAction.AUTHZ_DECISION:
            access = str(details.get("access", ""))
            if result == "allowed" and access in DATA_ACCESSES:
                counter = self.row_reads if access == Action.SNAPSHOT_READ_ROWS else self.reads
                counter[(actor, _dataset_of(entry.resource))] += 1
            elif result == "denied":
                self.denials[(actor, access)] += 1
        elif action == AuditAction.EXPORT_FILE and result == "ok":
            size = int(details.get("bytes", 0) or 0)
            row = ExportRow(entry.seq, entry.at, actor, entry.resource, str(details.get("sha256", "")), size)
            _append(self.exports, row)
            self.export_files[actor] += 1
            self.export_bytes[actor] += size
        elif action in DECISIONS:
            _append(self.decisions, _listed(entry))
        elif action.startswith("admin.") or action == AuditAction.QUOTA_SET:
            _append(self.admin_changes, _listed(entry))
        if result == "denied" and actor in self.staff:
            self.denials_by_day[(actor, day)].append(entry.seq)
        if result == "denied" and action in {a.value for a in LOGIN_STEPS}:
            self.denials[(actor, action)] += 1

    def report(self, *, limits: dict[str, int], verification: Verification, **head: Any) -> InspectionReport:
        users = sorted(set(self.logins) | set(self.refused))
        pairs = sorted(set(self.reads) | set(self.row_reads))
        unusual = [
            Unusual("off_hours", actor, day, len(seqs), seqs[0])
            for (actor, day), seqs in sorted(self.off_hours.items())
        ] + [
            Unusual("repeated_denials", actor, day, len(seqs), seqs[0])
            for (actor, day), seqs in sorted(self.denials_by_day.items())
            if len(seqs) >= self.repeated
        ]
        unusual.sort(key=lambda u: (u.day, u.actor, u.kind))
        return InspectionReport(
            working_hours=self.hours,
            repeated_denials=self.repeated,
            entries=self.entries,
            verification=verification,
            logins=[LoginCount(u, self.logins[u], self.refused[u]) for u in users],
            terminal_refusals=self.terminal_refusals,
            data_access=[DataAccess(a, d, self.reads[(a, d)], self.row_reads[(a, d)]) for a, d in pairs],
            exports=self.exports,
            quota=[
                QuotaUse(a, self.export_files[a], self.export_bytes[a], limits.get(a))
                for a in sorted(self.export_files)
            ],
            decisions=self.decisions,
            admin_changes=self.admin_changes,
            denials=[DenialCount(a, x, n) for (a, x), n in sorted(self.denials.items())],
            unusual=unusual,
            **head,
        )


def _append(rows: list[Any], row: Any) -> None:
    if len(rows) < LISTED:
        rows.append(row)
