"""The audit log as the faces search it: entries by user, action, resource, result and the city's dates.

Reading the log is ``audit.read`` (auditors and admins), one decision per search or tail, itself on the record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from renkei.clock import JST, SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType
from renkei.hub.audit import AuditEntry
from renkei.hub.home import Hub
from renkei.hub.services.decisions import require

MAX_SHOWN = 200  # newest first; narrow the search to see older entries


@dataclass(frozen=True, slots=True)
class AuditSearch:
    """What to look for; empty fields match everything. Dates are the city's (JST), both inclusive."""

    actor: str = ""  # a login id (or cli:…, system:…), exactly
    action: str = ""  # an action, or its prefix before a dot ("login" finds login.password, login.totp …)
    resource: str = ""  # part of the resource ("juki" finds dataset/juki and its snapshots)
    result: str = ""  # ok | denied
    since: dt.date | None = None
    until: dt.date | None = None
    limit: int = MAX_SHOWN


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    at: dt.datetime
    actor: str
    terminal: str
    action: str
    resource: str
    result: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def search_audit(
    hub: Hub, actor: Actor, search: AuditSearch, *, clock: Clock = SYSTEM_CLOCK
) -> list[AuditRow]:
    """The newest entries matching ``search`` (at most ``search.limit``, never more than :data:`MAX_SHOWN`)."""
    with hub.session() as db:
        require(db, hub, actor, Action.AUDIT_READ, Resource.of(ResourceType.AUDIT_LOG), clock)
        query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(min(search.limit, MAX_SHOWN))
        if search.actor:
            query = query.where(AuditEntry.actor == search.actor)
        if search.action:
            prefix = search.action.rstrip(".")
            query = query.where((AuditEntry.action == prefix) | AuditEntry.action.startswith(f"{prefix}."))
        if search.resource:
            query = query.where(AuditEntry.resource.contains(search.resource, autoescape=True))
        if search.result:
            query = query.where(AuditEntry.result == search.result)
        if search.since is not None:
            query = query.where(AuditEntry.at >= _city_midnight(search.since))
        if search.until is not None:
            query = query.where(AuditEntry.at < _city_midnight(search.until + dt.timedelta(days=1)))
        return [_row(e) for e in db.scalars(query)]


def tail_audit(hub: Hub, actor: Actor, n: int, *, clock: Clock = SYSTEM_CLOCK) -> list[AuditEntry]:
    """The last ``n`` entries, oldest first (``renkei audit tail``); the last is this read's own decision."""
    with hub.session() as db:
        require(db, hub, actor, Action.AUDIT_READ, Resource.of(ResourceType.AUDIT_LOG), clock)
    return hub.audit.tail(n)


def _city_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=JST).astimezone(dt.UTC)


def _row(entry: AuditEntry) -> AuditRow:
    return AuditRow(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        terminal=entry.terminal,
        action=entry.action,
        resource=entry.resource,
        result=entry.result,
        reason=entry.reason,
        details=dict(entry.details or {}),
    )
