"""Grants as the faces show them, their revocation, and folder access lists (derived from grants)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from renkei.clock import SYSTEM_CLOCK, Clock, city_today
from renkei.hub.access.authz import Action, Actor, Resource, ResourceType, resolve_principal
from renkei.hub.access.grants import FolderAcl, Grant, GrantStatus, folder_acl, revoke_grant
from renkei.hub.access.people import Role, User
from renkei.hub.catalog import Dataset
from renkei.hub.home import Hub
from renkei.hub.services.catalog import dataset_named, dataset_resource
from renkei.hub.services.decisions import missing_as_not_found, permitted, require

MAX_LISTED = 100  # newest first; each listed object is decided, all in one audit entry


@dataclass(frozen=True, slots=True)
class GrantDetail:
    id: int
    application_id: int
    dataset: str
    holder: str  # login id
    row_level: bool
    valid_from: dt.date
    valid_until: dt.date  # inclusive
    status: GrantStatus  # on the city's date now
    snapshots: tuple[str, ...]  # "2026-03-31 v1"
    revoked_at: dt.datetime | None
    revoke_reason: str


def my_grants(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[GrantDetail]:
    """The actor's own grants, newest first, each one decided (one audit entry for the list)."""
    with hub.session() as db:
        ids = db.scalars(
            select(Grant.id).where(Grant.user_id == actor.user_id).order_by(Grant.id.desc()).limit(MAX_LISTED)
        ).all()
        visible = permitted(db, hub, actor, Action.GRANT_READ, ids, grant_resource, clock)
        grants = db.scalars(
            select(Grant)
            .where(Grant.id.in_(visible))
            .options(selectinload(Grant.snapshots), selectinload(Grant.dataset), selectinload(Grant.user))
            .order_by(Grant.id.desc())
        )
        return [grant_detail(g, clock) for g in grants]


def list_grants(
    hub: Hub, actor: Actor, *, holder: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> list[GrantDetail]:
    """Every grant (or ``holder``'s, a login id), oldest first: one decision on the resource type (operators)."""
    with hub.session() as db:
        require(db, hub, actor, Action.GRANT_READ, Resource.of(ResourceType.GRANT), clock)
        query = (
            select(Grant)
            .options(selectinload(Grant.snapshots), selectinload(Grant.dataset), selectinload(Grant.user))
            .order_by(Grant.id)
        )
        if holder is not None:
            query = query.join(User, User.id == Grant.user_id).where(User.login_id == holder)
        return [grant_detail(g, clock) for g in db.scalars(query)]


def show_grant(hub: Hub, actor: Actor, grant_id: int, *, clock: Clock = SYSTEM_CLOCK) -> GrantDetail:
    with hub.session() as db:
        require(db, hub, actor, Action.GRANT_READ, grant_resource(grant_id), clock)
        return grant_detail(db.get_one(Grant, grant_id), clock)


def revoke(hub: Hub, actor: Actor, grant_id: int, reason: str, *, clock: Clock = SYSTEM_CLOCK) -> GrantDetail:
    """Revoke one grant; it takes effect on the holder's next request."""
    with hub.session() as db, missing_as_not_found():
        grant = revoke_grant(db, hub.audit, actor, grant_id, reason=reason, clock=clock)
        return grant_detail(grant, clock)


def dataset_acl(hub: Hub, actor: Actor, name: str, *, clock: Clock = SYSTEM_CLOCK) -> FolderAcl:
    """Who may use the dataset's folder now (``folder.read_acl``); NotFoundError when there is no such dataset."""
    with hub.session() as db:
        dataset = dataset_named(db, name)
        require(db, hub, actor, Action.FOLDER_READ_ACL, dataset_resource(dataset, name), clock)
        assert dataset is not None  # a missing dataset was refused as not found
        return folder_acl(db, dataset, clock)


def department_acls(hub: Hub, actor: Actor, *, clock: Clock = SYSTEM_CLOCK) -> list[FolderAcl]:
    """The access lists of the datasets the steward's department owns, each one decided (one entry)."""
    with hub.session() as db:
        principal = resolve_principal(db, actor)
        if principal is None or principal.role is not Role.STEWARD:  # only candidates; authorize() decides
            return []
        datasets = db.scalars(
            select(Dataset).where(Dataset.owner_id == principal.department_id).order_by(Dataset.name)
        ).all()
        shown = permitted(db, hub, actor, Action.FOLDER_READ_ACL, datasets, Resource.dataset, clock)
        return [folder_acl(db, d, clock) for d in shown]


def grant_resource(grant_id: int) -> Resource:
    return Resource.of(ResourceType.GRANT, grant_id)


def grant_detail(grant: Grant, clock: Clock) -> GrantDetail:
    return GrantDetail(
        id=grant.id,
        application_id=grant.application_id,
        dataset=grant.dataset.name,
        holder=grant.user.login_id,
        row_level=grant.row_level,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        status=grant.status(city_today(clock)),
        snapshots=tuple(f"{s.period.isoformat()} v{s.version}" for s in grant.snapshots),
        revoked_at=grant.revoked_at,
        revoke_reason=grant.revoke_reason,
    )
