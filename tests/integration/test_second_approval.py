"""Row-level viewing of a snapshot whose risk report is flagged needs two stewards' approvals (docs/risk.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from renkei.hub.access.applications import (
    Application,
    ApplicationForm,
    ApplicationState,
    DatasetRequest,
    PartState,
    SeparationOfDuties,
    approve_part,
    create_application,
    submit,
)
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role, User
from renkei.hub.assessment import SnapshotRisk
from renkei.hub.services.applications import application_detail
from tests.integration.access_world import DATABASES, OWN, World, worlds

FLAGGED, SAFE = dt.date(2025, 3, 31), dt.date(2026, 3, 31)


@pytest.fixture(scope="module", params=DATABASES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for world in worlds(request.param, tmp_path_factory.mktemp("second")):
        with world.session() as session:
            for period, flagged in ((FLAGGED, True), (SAFE, False)):
                snapshot_id = world.snapshot_id("juki", period)
                session.add(SnapshotRisk(snapshot_id=snapshot_id, records=100, flagged=flagged, report={}))
            session.commit()
        yield world


def submitted(world: World, analyst: User, period: dt.date, *, row_level: bool) -> tuple[int, int]:
    with world.session() as session:
        application = create_application(
            session,
            world.audit,
            world.actor(analyst),
            ApplicationForm(
                purpose="転出傾向の分析",
                outputs="集計表",
                use_start=world.today,
                use_end=world.today + dt.timedelta(days=30),
                row_level=row_level,
                requests=[DatasetRequest("juki", periods=(period,))],
            ),
            clock=world.clock,
        )
        submit(session, world.audit, world.actor(analyst), application.id, clock=world.clock)
        return application.id, application.parts[0].id


def approve(world: World, steward: User, part_id: int) -> Application:
    with world.session() as session:
        return approve_part(session, world.audit, world.actor(steward), part_id, clock=world.clock)


def state(world: World, application_id: int) -> tuple[ApplicationState, PartState, int]:
    with world.session() as session:
        application = session.get_one(Application, application_id)
        grants = session.scalars(select(Grant).where(Grant.application_id == application_id)).all()
        return application.state, application.parts[0].state, len(grants)


def test_row_level_over_a_flagged_snapshot_needs_a_second_steward(world: World) -> None:
    analyst, first, second = (
        world.user(Role.ANALYST),
        world.user(Role.STEWARD, OWN),
        world.user(Role.STEWARD, OWN),
    )
    application_id, part_id = submitted(world, analyst, FLAGGED, row_level=True)
    approve(world, first, part_id)
    assert state(world, application_id) == (ApplicationState.PARTIALLY_APPROVED, PartState.PENDING, 0)
    with world.session() as session:  # the steward's inbox says so, and who gave the first
        (part,) = application_detail(session.get_one(Application, application_id), world.clock).parts
        assert (part.second_approval, part.first_approved_by) == (True, first.login_id)
    with pytest.raises(SeparationOfDuties, match="another steward"):
        approve(world, first, part_id)
    assert state(world, application_id) == (ApplicationState.PARTIALLY_APPROVED, PartState.PENDING, 0)
    approve(world, second, part_id)
    assert state(world, application_id) == (ApplicationState.APPROVED, PartState.APPROVED, 1)
    approvals = [e.details.get("approval") for e in world.entries() if e.action == "application.approve"]
    assert approvals[-2:] == ["first of two", "second of two"]


@pytest.mark.parametrize(("period", "row_level"), [(FLAGGED, False), (SAFE, True)])
def test_one_approval_suffices_without_row_level_or_without_a_flag(
    world: World, period: dt.date, row_level: bool
) -> None:
    analyst, steward = world.user(Role.ANALYST), world.user(Role.STEWARD, OWN)
    application_id, part_id = submitted(world, analyst, period, row_level=row_level)
    approve(world, steward, part_id)
    assert state(world, application_id) == (ApplicationState.APPROVED, PartState.APPROVED, 1)
