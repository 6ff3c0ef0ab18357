"""A small hub for the access tests: two departments, three snapshots, users made on demand.

Imported by test_applications.py, test_quotas.py and test_authz.py.
Creating the schema costs about a second on PostgreSQL, so each test module shares one world per database
(:func:`worlds`); tests stay independent by making their own users, applications and grants, and by counting
audit entries from the log's size before they act.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, select
from sqlalchemy.orm import Session

import renkei.hub.models  # noqa: F401  (every table on Base.metadata)
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
from renkei.hub.access.quotas import DownloadQuota
from renkei.hub.audit import AuditEntry, AuditLog
from renkei.hub.catalog import Dataset, Department, Sender, Snapshot
from renkei.hub.db import Base, make_engine
from tests.conftest import _postgres_schema_url

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

OWN = "市民課"  # owns juki
OTHER = "保険年金課"  # owns kokuho
PERIODS = {"juki": [dt.date(2025, 3, 31), dt.date(2026, 3, 31)], "kokuho": [dt.date(2026, 3, 31)]}
OWNERS = {"juki": OWN, "kokuho": OTHER}


def worlds(database: str, directory: Path) -> Iterator[World]:
    """One world on SQLite (in ``directory``) or on a fresh PostgreSQL schema, disposed of afterwards."""
    if database == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{directory / 'catalog.db'}"])
    else:
        urls = _postgres_schema_url()
    for url in urls:
        world = World(url)
        try:
            yield world
        finally:
            world.dispose()


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    """Commits without waiting for the disk: these tests are about decisions, not durability."""
    cursor = dbapi_connection.cursor()
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor.execute("PRAGMA synchronous=OFF")
    else:
        cursor.execute("SET synchronous_commit = off")
    cursor.close()


class World:
    def __init__(self, url: str, **engine_options: Any) -> None:
        self.engine = make_engine(url, **engine_options)
        event.listen(self.engine, "connect", _no_fsync)
        Base.metadata.create_all(self.engine, checkfirst=False)  # always a new, empty database
        self.audit = AuditLog(self.engine, Ed25519PrivateKey.generate())
        self.clock = FakeClock()
        self._numbers = itertools.count(1)
        with self.session() as session:
            departments = {name: Department(name=name) for name in (OWN, OTHER)}
            sender = Sender(name="kyotsu", public_key="-")
            for name, periods in PERIODS.items():
                dataset = Dataset(
                    name=name,
                    title=name,
                    owner=departments[OWNERS[name]],
                    spec_hash="0" * 64,
                    spec={},
                    columns=[],
                )
                for period in periods:
                    session.add(self._snapshot(dataset, sender, period, 1))
            session.commit()
            self.department_ids = {name: d.id for name, d in departments.items()}

    def _snapshot(self, dataset: Dataset, sender: Sender, period: dt.date, version: int) -> Snapshot:
        return Snapshot(
            dataset=dataset,
            period=period,
            version=version,
            rows=100,
            bytes=4096,
            content_sha256="0" * 64,
            spec_hash="0" * 64,
            sender=sender,
            package_id=f"pkg{next(self._numbers)}",
        )

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def today(self) -> dt.date:
        return city_today(self.clock)

    # --- people

    def user(self, role: Role, department: str = OWN, *, disabled: bool = False) -> User:
        number = next(self._numbers)
        with self.session() as session:
            user = User(
                login_id=f"{role}{number}",
                display_name=f"職員{number}",
                role=role,
                department_id=self.department_ids[department],
                disabled=disabled,
            )
            session.add(user)
            session.commit()
            return user

    def actor(self, user: User) -> Actor:
        return Actor.for_user(user, terminal="term-01", client_addr="10.0.0.5", session_id="s-1")

    def set_role(self, user: User, role: Role) -> None:
        with self.session() as session:
            session.get_one(User, user.id).role = role
            session.commit()

    def allow_downloads(self, user: User, **limits: int) -> None:
        with self.session() as session:
            session.add(DownloadQuota(user_id=user.id, may_download=True, **limits))
            session.commit()

    # --- catalog

    def snapshot_id(self, dataset: str, period: dt.date, version: int = 1) -> int:
        with self.session() as session:
            found = session.scalar(
                select(Snapshot.id)
                .join(Dataset)
                .where(Dataset.name == dataset, Snapshot.period == period, Snapshot.version == version)
            )
            assert found is not None
            return found

    def add_snapshot(self, dataset: str, period: dt.date, version: int = 1) -> int:
        with self.session() as session:
            ds = session.scalars(select(Dataset).where(Dataset.name == dataset)).one()
            snapshot = self._snapshot(ds, session.scalars(select(Sender)).one(), period, version)
            session.add(snapshot)
            session.commit()
            return snapshot.id

    # --- applications and grants, written directly (the workflow's own tests go through its functions)

    def application(
        self,
        applicant: User,
        state: ApplicationState,
        departments: tuple[str, ...] = (OWN, OTHER),
        part_state: PartState = PartState.PENDING,
    ) -> tuple[int, dict[str, int]]:
        """An application in ``state`` with a part per department; returns its id and the parts' ids."""
        datasets = {OWN: "juki", OTHER: "kokuho"}
        now = self.clock.now()
        with self.session() as session:
            parts = {
                dept: ApplicationPart(
                    department_id=self.department_ids[dept],
                    state=part_state,
                    items=[
                        ApplicationItem(snapshot_id=self.snapshot_id(datasets[dept], dt.date(2026, 3, 31)))
                    ],
                )
                for dept in departments
            }
            application = Application(
                applicant_id=applicant.id,
                purpose="目的",
                outputs="集計表",
                use_start=self.today,
                use_end=self.today + dt.timedelta(days=90),
                row_level=False,
                state=state,
                submitted_at=None if state is ApplicationState.DRAFT else now,
                applied_on=self.today,
                created_at=now,
                updated_at=now,
                parts=list(parts.values()),
            )
            session.add(application)
            session.commit()
            return application.id, {dept: part.id for dept, part in parts.items()}

    def grant(
        self,
        user: User,
        snapshot_ids: list[int],
        *,
        starts: int = -1,
        ends: int = 30,
        row_level: bool = False,
        revoked: bool = False,
    ) -> int:
        """A grant on the snapshots (one dataset), valid from today+starts to today+ends days."""
        with self.session() as session:
            snapshots = [session.get_one(Snapshot, s) for s in snapshot_ids]
            owner = snapshots[0].dataset.owner_id
            department = next(name for name, id_ in self.department_ids.items() if id_ == owner)
            application_id, parts = self.application(
                user, ApplicationState.APPROVED, (department,), PartState.APPROVED
            )
            grant = Grant(
                application_id=application_id,
                part_id=parts[department],
                user_id=user.id,
                dataset_id=snapshots[0].dataset_id,
                row_level=row_level,
                valid_from=self.today + dt.timedelta(days=starts),
                valid_until=self.today + dt.timedelta(days=ends),
                issued_at=self.clock.now(),
                revoked_at=self.clock.now() if revoked else None,
                snapshots=snapshots,
            )
            session.add(grant)
            session.commit()
            return grant.id

    # --- the audit log

    def last_decision(self) -> AuditEntry:
        with self.session() as session:
            query = select(AuditEntry).where(AuditEntry.action == "authz.decision")
            return session.scalars(query.order_by(AuditEntry.seq.desc()).limit(1)).one()

    def entries(self, since: int = 0) -> list[AuditEntry]:
        with self.session() as session:
            return list(
                session.scalars(select(AuditEntry).where(AuditEntry.seq >= since).order_by(AuditEntry.seq))
            )
