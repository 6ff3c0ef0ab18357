"""A real hub with imported juki and kaigo snapshots (two periods each), analysts and grants, for workspaces.

Built once per test module (about a few seconds): the sending side extracts and seals a tiny synthetic city,
the hub imports the packages into its vault. Users and grants are written directly, as in access_world.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from renkei.clock import FakeClock, city_today
from renkei.hub.access.applications import (
    Application,
    ApplicationItem,
    ApplicationPart,
    ApplicationState,
    PartState,
)
from renkei.hub.access.authz import Actor
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role, User
from renkei.hub.catalog import Dataset, Snapshot
from renkei.hub.home import Hub
from tests.integration.hub_world import World, make_world

DATASETS = ("juki", "kaigo")


@dataclass
class WorkspaceWorld:
    world: World
    periods: list[dt.date]
    clock: FakeClock = field(default_factory=FakeClock)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def hub(self) -> Hub:
        return self.world.hub

    def snapshot(self, dataset: str, period: dt.date) -> Snapshot:
        with self.hub.session() as session:
            found = session.scalars(
                select(Snapshot)
                .join(Dataset)
                .where(Dataset.name == dataset, Snapshot.period == period)
                .options(joinedload(Snapshot.dataset))
            ).one()
            session.expunge_all()
            return found

    def analyst(self) -> tuple[User, Actor]:
        number = next(self._numbers)
        with self.hub.session() as session:
            department = session.scalars(select(Dataset.owner_id)).first()
            user = User(login_id=f"analyst{number}", display_name=f"分析{number}", role=Role.ANALYST,
                        department_id=department)  # fmt: skip
            session.add(user)
            session.commit()
            session.expunge(user)
        return user, Actor.for_user(user, terminal="term-01", client_addr="10.0.0.5", session_id="s-1")

    def grant(
        self, user: User, dataset: str, periods: list[dt.date], *, row_level: bool = False, ends: int = 30
    ) -> int:
        today = city_today(self.clock)
        now = self.clock.now()
        with self.hub.session() as session:
            snapshots = [
                session.scalars(
                    select(Snapshot).join(Dataset).where(Dataset.name == dataset, Snapshot.period == p)
                ).one()
                for p in periods
            ]
            owner = snapshots[0].dataset.owner_id
            part = ApplicationPart(department_id=owner, state=PartState.APPROVED,
                                   items=[ApplicationItem(snapshot_id=s.id) for s in snapshots])  # fmt: skip
            application = Application(
                applicant_id=user.id, purpose="目的", outputs="集計表", use_start=today,
                use_end=today + dt.timedelta(days=ends), row_level=row_level, state=ApplicationState.APPROVED,
                applied_on=today, created_at=now, updated_at=now, parts=[part],
            )  # fmt: skip
            session.add(application)
            session.flush()
            grant = Grant(
                application_id=application.id, part_id=part.id, user_id=user.id,
                dataset_id=snapshots[0].dataset_id, row_level=row_level, valid_from=today - dt.timedelta(days=1),
                valid_until=today + dt.timedelta(days=ends), issued_at=now, snapshots=snapshots,
            )  # fmt: skip
            session.add(grant)
            session.commit()
            return grant.id

    def revoke(self, grant_id: int) -> None:
        with self.hub.session() as session:
            session.get_one(Grant, grant_id).revoked_at = self.clock.now()
            session.commit()


def make_workspace_world(root: Path, residents: int = 300) -> WorkspaceWorld:
    world = make_world(root, residents=residents, years=2)
    periods = sorted(world.raw)
    for period in periods:
        for dataset in DATASETS:
            world.import_(world.extract(dataset, period, out=f"out-{dataset}-{period}"))
    return WorkspaceWorld(world, periods)
