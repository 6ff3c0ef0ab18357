"""Applications end to end on SQLite and PostgreSQL: apply, decide per department, grants, expiry, revocation."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from typer.testing import CliRunner

from renkei.cli.applications import register
from renkei.clock import FakeClock
from renkei.hub.access.applications import (
    Application,
    ApplicationError,
    ApplicationForm,
    ApplicationState,
    DatasetRequest,
    PartState,
    SeparationOfDuties,
    approve_part,
    create_application,
    effective_state,
    expire_due,
    reject_part,
    revoke_application,
    revoke_part,
    submit,
    withdraw,
)
from renkei.hub.access.authz import (
    Action,
    Actor,
    Forbidden,
    InvalidTransition,
    Resource,
    ResourceType,
    can,
    can_read_snapshot,
)
from renkei.hub.access.grants import Grant, GrantStatus, revoke_grant
from renkei.hub.access.people import Role, User
from renkei.hub.access.quotas import DownloadQuota
from renkei.hub.audit import create_audit_key
from renkei.hub.catalog import Snapshot
from tests.integration.access_world import DATABASES, OTHER, OWN, World, worlds

S = ApplicationState
MARCH_2025 = dt.date(2025, 3, 31)
MARCH_2026 = dt.date(2026, 3, 31)
PURPOSE = "子育て世帯の転出傾向の分析 CANARY-PURPOSE"
OUTPUTS = "区別・年齢階級別の集計表 CANARY-OUTPUTS"


@pytest.fixture(scope="module", params=DATABASES)
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from worlds(request.param, tmp_path_factory.mktemp("applications"))


@pytest.fixture
def world(shared_world: World) -> World:
    shared_world.clock = FakeClock()  # every test starts on the same day
    return shared_world


@dataclass
class Staff:
    analyst: User
    other_analyst: User
    steward: User  # of OWN, which owns juki
    other_steward: User  # of OTHER, which owns kokuho
    admin: User
    auditor: User


@pytest.fixture(scope="module")
def team(shared_world: World) -> dict[str, User]:
    """Colleagues shared by a module's tests; none of them ever holds a grant."""
    return {
        "other_analyst": shared_world.user(Role.ANALYST),
        "steward": shared_world.user(Role.STEWARD, OWN),
        "other_steward": shared_world.user(Role.STEWARD, OTHER),
        "admin": shared_world.user(Role.ADMIN),
        "auditor": shared_world.user(Role.AUDITOR),
    }


@pytest.fixture
def staff(world: World, team: dict[str, User]) -> Staff:
    return Staff(analyst=world.user(Role.ANALYST), **team)  # a new applicant: grants never carry over


def apply(
    world: World,
    user: User,
    *,
    row_level: bool = False,
    requests: list[DatasetRequest] | None = None,
    start: int = 0,
    end: int = 90,
) -> Application:
    with world.session() as session:
        return create_application(
            session,
            world.audit,
            world.actor(user),
            ApplicationForm(
                purpose=PURPOSE,
                outputs=OUTPUTS,
                use_start=world.today + dt.timedelta(days=start),
                use_end=world.today + dt.timedelta(days=end),
                row_level=row_level,
                requests=requests
                or [
                    DatasetRequest("juki", periods=(MARCH_2025, MARCH_2026)),
                    DatasetRequest("kokuho", all_periods=True),
                ],
            ),
            clock=world.clock,
        )


def run(world: World, move: Callable[..., Any], user: User | Actor, target: int, **kwargs: Any) -> Any:
    actor = user if isinstance(user, Actor) else world.actor(user)
    with world.session() as session:
        return move(session, world.audit, actor, target, clock=world.clock, **kwargs)


def parts_of(application: Application) -> dict[str, int]:
    names = {"juki": OWN, "kokuho": OTHER}
    return {names[p.items[0].snapshot.dataset.name]: p.id for p in application.parts}


def submitted(world: World, staff: Staff, **kwargs: Any) -> tuple[int, dict[str, int]]:
    application = apply(world, staff.analyst, **kwargs)
    run(world, submit, staff.analyst, application.id)
    with world.session() as session:
        return application.id, parts_of(session.get_one(Application, application.id))


def approved(world: World, staff: Staff, **kwargs: Any) -> tuple[int, dict[str, int]]:
    application_id, parts = submitted(world, staff, **kwargs)
    run(world, approve_part, staff.steward, parts[OWN])
    run(world, approve_part, staff.other_steward, parts[OTHER])
    return application_id, parts


def state_of(world: World, application_id: int) -> ApplicationState:
    with world.session() as session:
        return session.get_one(Application, application_id).state


def grants_of(world: World, application_id: int) -> list[Grant]:
    with world.session() as session:
        query = select(Grant).where(Grant.application_id == application_id).order_by(Grant.id)
        return list(
            session.scalars(query.options(selectinload(Grant.snapshots), selectinload(Grant.dataset)))
        )


def can_read(world: World, user: User, dataset: str, period: dt.date, *, rows: bool = False) -> bool:
    with world.session() as session:
        snapshot = session.get_one(Snapshot, world.snapshot_id(dataset, period))
        return can_read_snapshot(
            session, world.audit, world.actor(user), snapshot, rows=rows, clock=world.clock
        )


def last_decision(world: World) -> dict[str, Any]:
    entry = world.last_decision()
    return {"result": entry.result, "reason": entry.reason, **entry.details}


# --- the happy path ---------------------------------------------------------------------------------------


def test_apply_each_department_approves_grants_become_active_and_reads_are_allowed(
    world: World, staff: Staff
) -> None:
    size = world.audit.size()
    application = apply(world, staff.analyst)
    assert application.state is S.DRAFT
    assert len(application.parts) == 2  # one part per owning department
    run(world, submit, staff.analyst, application.id)
    with world.session() as session:
        parts = parts_of(session.get_one(Application, application.id))

    run(world, approve_part, staff.steward, parts[OWN], comment="目的の範囲で承認")
    assert state_of(world, application.id) is S.PARTIALLY_APPROVED
    assert grants_of(world, application.id) == []  # the purpose is approved as a whole, or not at all
    assert not can_read(world, staff.analyst, "juki", MARCH_2026)

    run(world, approve_part, staff.other_steward, parts[OTHER])
    assert state_of(world, application.id) is S.APPROVED
    grants = grants_of(world, application.id)
    assert {(g.dataset.name, tuple(s.period for s in g.snapshots)) for g in grants} == {
        ("juki", (MARCH_2025, MARCH_2026)),
        ("kokuho", (MARCH_2026,)),
    }
    assert all(g.user_id == staff.analyst.id and g.status(world.today) is GrantStatus.ACTIVE for g in grants)
    assert can_read(world, staff.analyst, "juki", MARCH_2025)
    assert can_read(world, staff.analyst, "kokuho", MARCH_2026)
    assert not can_read(world, staff.analyst, "juki", MARCH_2026, rows=True)  # no row-level viewing asked
    assert not can_read(world, staff.other_analyst, "juki", MARCH_2026)  # grants are personal

    events = [e.action for e in world.entries(size) if e.action != "authz.decision"]
    assert events == [
        "application.create",
        "application.submit",
        "application.approve",
        "application.approve",
    ]


def test_row_level_viewing_is_allowed_only_when_applied_for(world: World, staff: Staff) -> None:
    approved(world, staff, row_level=True)
    assert can_read(world, staff.analyst, "juki", MARCH_2026, rows=True)


def test_grants_cover_exactly_the_snapshots_the_stewards_saw(world: World, staff: Staff) -> None:
    requests = [DatasetRequest("juki", all_periods=True)]
    application_id, _ = submitted(world, staff, requests=requests)
    correction = world.add_snapshot("juki", MARCH_2026, version=2)  # imported after the application
    with world.session() as session:
        part = session.get_one(Application, application_id).parts[0].id
    run(world, approve_part, staff.steward, part)
    assert can_read(world, staff.analyst, "juki", MARCH_2025)
    with world.session() as session:
        snapshot = session.get_one(Snapshot, correction)
        assert not can_read_snapshot(
            session, world.audit, world.actor(staff.analyst), snapshot, clock=world.clock
        )
    assert last_decision(world)["policy"] == "deny:no-grant"


# --- refusals ---------------------------------------------------------------------------------------------


def refused(world: World, error: type[Exception], attempt: Callable[[], object], application_id: int) -> str:
    """The attempt raises ``error``, changes nothing, and the refusal is the log's last entry."""
    before = state_of(world, application_id)
    size = world.audit.size()
    with pytest.raises(error) as raised:
        attempt()
    assert state_of(world, application_id) is before
    new = world.entries(size)
    assert [e.result for e in new] == ["denied"]
    return str(new[0].details["policy"]) if raised.type is not ApplicationError else ""


def test_nobody_approves_their_own_application_even_after_becoming_its_steward(
    world: World, staff: Staff
) -> None:
    application_id, parts = submitted(world, staff)
    world.set_role(staff.analyst, Role.STEWARD)  # the applicant's account now stewards OWN, which owns juki
    for decide in (approve_part, reject_part):
        policy = refused(
            world,
            SeparationOfDuties,
            functools.partial(run, world, decide, staff.analyst, parts[OWN], comment="自分で判断"),
            application_id,
        )
        assert policy == "deny:separation-of-duties"


def test_only_a_steward_of_the_owning_department_approves_its_part(world: World, staff: Staff) -> None:
    application_id, parts = submitted(world, staff)
    policies = {}
    for who in ("other_steward", "admin", "analyst", "other_analyst", "auditor", "cli_admin"):
        actor = Actor.cli("cli:operator") if who == "cli_admin" else world.actor(getattr(staff, who))
        attempt = functools.partial(run, world, approve_part, actor, parts[OWN])
        policies[who] = refused(world, Forbidden, attempt, application_id)
    assert policies == {
        "other_steward": "deny:party",
        "admin": "deny:party",  # admins run the hub; they do not decide on data use
        "analyst": "deny:separation-of-duties",  # the applicant
        "other_analyst": "deny:party",
        "auditor": "deny:party",
        "cli_admin": "deny:party",
    }


def test_a_rejected_part_is_not_approved_and_the_application_stays_rejected(
    world: World, staff: Staff
) -> None:
    application_id, parts = submitted(world, staff)
    run(world, reject_part, staff.steward, parts[OWN], comment="目的に対して期間が広すぎます")
    assert state_of(world, application_id) is S.REJECTED
    with world.session() as session:
        part = session.get_one(Application, application_id).parts[0]
        assert (part.state, part.decided_by_id, part.comment) == (
            PartState.REJECTED,
            staff.steward.id,
            "目的に対して期間が広すぎます",
        )
    refused(
        world, InvalidTransition, lambda: run(world, approve_part, staff.steward, parts[OWN]), application_id
    )
    refused(
        world,
        InvalidTransition,
        lambda: run(world, approve_part, staff.other_steward, parts[OTHER]),
        application_id,
    )
    assert grants_of(world, application_id) == []


def test_a_rejection_needs_a_comment_and_is_refused_before_any_decision(world: World, staff: Staff) -> None:
    application_id, parts = submitted(world, staff)
    size = world.audit.size()
    with pytest.raises(ApplicationError):
        run(world, reject_part, staff.steward, parts[OWN], comment="  ")
    assert world.audit.size() == size
    assert state_of(world, application_id) is S.SUBMITTED


def test_a_part_is_decided_once(world: World, staff: Staff) -> None:
    application_id, parts = submitted(world, staff)
    run(world, approve_part, staff.steward, parts[OWN])
    with pytest.raises(InvalidTransition) as raised:
        run(world, approve_part, staff.steward, parts[OWN])
    assert raised.value.http_status == 409
    assert state_of(world, application_id) is S.PARTIALLY_APPROVED


def test_drafts_are_not_decided_and_withdrawn_applications_are_not_either(world: World, staff: Staff) -> None:
    application = apply(world, staff.analyst)
    with world.session() as session:
        part = parts_of(session.get_one(Application, application.id))[OWN]
    refused(world, InvalidTransition, lambda: run(world, approve_part, staff.steward, part), application.id)
    run(world, withdraw, staff.analyst, application.id, reason="計画変更")
    assert state_of(world, application.id) is S.WITHDRAWN
    refused(
        world, InvalidTransition, lambda: run(world, submit, staff.analyst, application.id), application.id
    )


def test_owning_stewards_read_an_application_only_once_it_is_submitted(world: World, staff: Staff) -> None:
    """Issue 9, item 10: a draft (or a draft withdrawn) is the applicant's own, not yet the stewards'."""
    stewards = (staff.steward, staff.other_steward)

    def readable(user: User, application_id: int) -> bool:
        resource = Resource.of(ResourceType.APPLICATION, application_id)
        with world.session() as session:
            return can(session, world.audit, world.actor(user), Action.APPLICATION_READ, resource)

    draft, withdrawn_draft = apply(world, staff.analyst), apply(world, staff.analyst)
    run(world, withdraw, staff.analyst, withdrawn_draft.id, reason="計画変更")
    for application_id in (draft.id, withdrawn_draft.id):
        assert [readable(user, application_id) for user in stewards] == [False, False]
        assert last_decision(world)["policy"] == "deny:not-submitted"
        assert readable(staff.analyst, application_id) and readable(staff.auditor, application_id)
    run(world, submit, staff.analyst, draft.id)
    run(world, withdraw, staff.analyst, draft.id, reason="計画変更")  # once submitted, it stays on record
    assert [readable(user, draft.id) for user in stewards] == [True, True]


def test_only_the_applicant_submits_and_withdraws(world: World, staff: Staff) -> None:
    application = apply(world, staff.analyst)
    refused(world, Forbidden, lambda: run(world, submit, staff.other_analyst, application.id), application.id)
    run(world, submit, staff.analyst, application.id)
    refused(world, Forbidden, lambda: run(world, withdraw, staff.steward, application.id), application.id)
    refused(
        world, InvalidTransition, lambda: run(world, submit, staff.analyst, application.id), application.id
    )


def test_only_analysts_apply(world: World, staff: Staff) -> None:
    for user in (staff.steward, staff.auditor, staff.admin):
        with pytest.raises(Forbidden):
            apply(world, user)
        with world.session() as session:
            assert session.scalar(select(func.count()).where(Application.applicant_id == user.id)) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"requests": [DatasetRequest("gakko", all_periods=True)]}, "unknown dataset"),
        ({"requests": [DatasetRequest("juki", periods=(dt.date(2024, 3, 31),))]}, "no snapshot"),
        ({"requests": [DatasetRequest("juki", periods=(MARCH_2026,), all_periods=True)]}, "not both"),
        ({"requests": [DatasetRequest("juki", all_periods=True)] * 2}, "listed twice"),
        ({"start": 10, "end": 5}, "ends before it starts"),
        ({"start": -30, "end": -1}, "already ended"),
    ],
)
def test_an_application_is_checked_before_anything_is_written(
    world: World, staff: Staff, change: dict[str, Any], message: str
) -> None:
    size = world.audit.size()
    with pytest.raises(ApplicationError, match=message):
        apply(world, staff.analyst, **change)
    assert world.audit.size() == size


def test_purpose_and_outputs_are_required(world: World, staff: Staff) -> None:
    with world.session() as session, pytest.raises(ApplicationError, match="purpose is required"):
        create_application(
            session,
            world.audit,
            world.actor(staff.analyst),
            ApplicationForm(
                purpose=" ",
                outputs="表",
                use_start=world.today,
                use_end=world.today,
                row_level=False,
                requests=[DatasetRequest("juki", all_periods=True)],
            ),
            clock=world.clock,
        )


# --- time: grants start and end with the period of use ---------------------------------------------------


def test_a_grant_is_active_from_the_first_to_the_end_of_the_last_day_in_japan(
    world: World, staff: Staff
) -> None:
    application_id, _ = approved(world, staff, start=10, end=20)
    assert not can_read(world, staff.analyst, "juki", MARCH_2026)
    assert last_decision(world)["policy"] == "deny:grant-scheduled"

    world.clock.advance(days=10)
    assert can_read(world, staff.analyst, "juki", MARCH_2026)

    last_day = world.today + dt.timedelta(days=10)  # use_end
    world.clock.current = dt.datetime(last_day.year, last_day.month, last_day.day, 14, 59, tzinfo=dt.UTC)
    assert can_read(world, staff.analyst, "juki", MARCH_2026)  # 23:59 in Japan
    world.clock.advance(minutes=1)  # midnight in Japan
    assert not can_read(world, staff.analyst, "juki", MARCH_2026)
    assert last_decision(world)["policy"] == "deny:grant-expired"

    with world.session() as session:
        assert effective_state(session.get_one(Application, application_id), world.clock) is S.EXPIRED
        assert application_id in expire_due(session, world.audit, world.clock)
    assert state_of(world, application_id) is S.EXPIRED
    assert world.audit.tail(1)[0].action == "application.expire"


# --- revocation and withdrawal ----------------------------------------------------------------------------


def test_revoking_a_grant_takes_effect_on_the_very_next_decision_in_the_same_session(
    world: World, staff: Staff
) -> None:
    approved(world, staff)
    actor = world.actor(staff.analyst)
    with world.session() as analyst_session:  # the analyst's long-lived session keeps its objects
        snapshot = analyst_session.get_one(Snapshot, world.snapshot_id("juki", MARCH_2026))
        assert can_read_snapshot(analyst_session, world.audit, actor, snapshot, clock=world.clock)
        grant_id = last_decision(world)["grant_ids"][0]
        analyst_session.commit()
        run(world, revoke_grant, staff.steward, grant_id, reason="目的外利用の疑い")
        assert not can_read_snapshot(analyst_session, world.audit, actor, snapshot, clock=world.clock)
    assert last_decision(world)["policy"] == "deny:grant-revoked"
    assert can_read(world, staff.analyst, "kokuho", MARCH_2026)  # the other department's grant stands


def test_only_the_owning_departments_steward_or_an_admin_revokes_a_grant(world: World, staff: Staff) -> None:
    application_id, _ = approved(world, staff)
    juki = next(g for g in grants_of(world, application_id) if g.dataset.name == "juki")
    for user in (staff.other_steward, staff.analyst, staff.auditor):
        with pytest.raises(Forbidden):
            run(world, revoke_grant, user, juki.id, reason="理由")
    run(world, revoke_grant, Actor.cli("cli:operator"), juki.id, reason="管理者による取消し")
    with pytest.raises(InvalidTransition):
        run(world, revoke_grant, staff.steward, juki.id, reason="二度目")


def test_a_steward_revoking_their_part_ends_the_application_and_every_grant(
    world: World, staff: Staff
) -> None:
    application_id, parts = approved(world, staff)
    run(world, revoke_part, staff.steward, parts[OWN], reason="利用条件違反")
    assert state_of(world, application_id) is S.REVOKED
    assert {g.status(world.today) for g in grants_of(world, application_id)} == {GrantStatus.REVOKED}
    assert not can_read(world, staff.analyst, "kokuho", MARCH_2026)
    with pytest.raises(InvalidTransition):
        run(world, revoke_part, staff.other_steward, parts[OTHER], reason="重ねて")


def test_an_admin_revokes_a_whole_application_pending_or_approved(world: World, staff: Staff) -> None:
    pending_id, _ = submitted(world, staff)
    approved_id, _ = approved(world, staff)
    for application_id in (pending_id, approved_id):
        run(world, revoke_application, Actor.cli("cli:operator"), application_id, reason="基盤の停止")
        assert state_of(world, application_id) is S.REVOKED
    assert not can_read(world, staff.analyst, "juki", MARCH_2026)
    with pytest.raises(Forbidden):  # a steward revokes their own part, not the whole application
        run(world, revoke_application, staff.steward, approved_id, reason="x")


def test_withdrawing_an_approved_application_ends_its_grants(world: World, staff: Staff) -> None:
    application_id, _ = approved(world, staff)
    run(world, withdraw, staff.analyst, application_id)
    assert state_of(world, application_id) is S.WITHDRAWN
    assert not can_read(world, staff.analyst, "juki", MARCH_2026)


def test_a_disabled_user_is_denied_whatever_they_hold(world: World, staff: Staff) -> None:
    approved(world, staff)
    with world.session() as session:
        session.get_one(User, staff.analyst.id).disabled = True
        session.commit()
    assert not can_read(world, staff.analyst, "juki", MARCH_2026)
    assert last_decision(world)["policy"] == "deny:not-designated"


# --- concurrency ------------------------------------------------------------------------------------------


def test_two_stewards_approving_at_once_approve_the_application_once(world: World, staff: Staff) -> None:
    application_id, parts = submitted(world, staff)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def decide(user: User, part: int) -> None:
        try:
            barrier.wait()
            run(world, approve_part, user, part)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=decide, args=(staff.steward, parts[OWN])),
        threading.Thread(target=decide, args=(staff.other_steward, parts[OTHER])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert state_of(world, application_id) is S.APPROVED
    assert len(grants_of(world, application_id)) == 2


# --- the record -------------------------------------------------------------------------------------------


def test_each_move_writes_one_decision_and_one_event_and_a_refusal_one_decision(
    world: World, staff: Staff
) -> None:
    application = apply(world, staff.analyst)
    size = world.audit.size()
    run(world, submit, staff.analyst, application.id)
    assert [(e.action, e.result) for e in world.entries(size)] == [
        ("authz.decision", "allowed"),
        ("application.submit", "ok"),
    ]
    size = world.audit.size()
    with pytest.raises(Forbidden):
        run(world, withdraw, staff.other_analyst, application.id)
    assert [(e.action, e.result) for e in world.entries(size)] == [("authz.decision", "denied")]


def test_the_audit_log_holds_ids_and_decisions_never_the_purpose_or_data(world: World, staff: Staff) -> None:
    size = world.audit.size()
    approved(world, staff)
    can_read(world, staff.analyst, "juki", MARCH_2026)
    assert not [e.seq for e in world.entries() if "CANARY" in repr(e.fields())]
    decisions = [e for e in world.entries(size) if e.action == "authz.decision"]
    allowed_keys = {
        "access",
        "resource_type",
        "policy",
        "policy_version",
        "session_id",
        "grant_ids",
        "application_id",
        "snapshot_ids",
        "rows",
        "bytes",
    }
    assert all(set(e.details) <= allowed_keys for e in decisions)
    assert all((e.terminal, e.client_addr) == ("term-01", "10.0.0.5") for e in decisions)


# --- the CLI ----------------------------------------------------------------------------------------------


@pytest.fixture
def hub_home(tmp_path: Path) -> Iterator[tuple[Path, World]]:
    home = tmp_path / "hub"
    create_audit_key(home)
    world = World(f"sqlite:///{home / 'catalog.db'}")
    world.clock.current = dt.datetime.now(dt.UTC)  # the CLI runs on the system clock
    yield home, world
    world.dispose()


def everyone(world: World) -> Staff:
    return Staff(
        analyst=world.user(Role.ANALYST),
        other_analyst=world.user(Role.ANALYST),
        steward=world.user(Role.STEWARD, OWN),
        other_steward=world.user(Role.STEWARD, OTHER),
        admin=world.user(Role.ADMIN),
        auditor=world.user(Role.AUDITOR),
    )


def cli(home: Path, *args: str) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    return result.exit_code, result.output


def test_cli_lists_shows_revokes_sets_quotas_and_shows_folder_acls(hub_home: tuple[Path, World]) -> None:
    home, world = hub_home
    staff = everyone(world)
    application_id, _ = approved(world, staff)
    juki = next(g for g in grants_of(world, application_id) if g.dataset.name == "juki")
    login = staff.analyst.login_id

    code, output = cli(home, "application", "list")
    assert code == 0 and login in output and "approved" in output
    code, output = cli(home, "application", "show", str(application_id))
    assert code == 0 and "CANARY-PURPOSE" in output
    code, output = cli(home, "grant", "list", "--user", login)
    assert code == 0 and login in output
    code, output = cli(home, "folder", "acl", "juki")
    assert code == 0 and login in output and staff.steward.login_id in output

    code, output = cli(home, "grant", "revoke", str(juki.id), "--reason", "目的外利用の疑い")
    assert code == 0
    code, output = cli(home, "folder", "acl", "juki")
    assert code == 0 and login not in output
    code, output = cli(home, "grant", "revoke", str(juki.id), "--reason", "again")
    assert code == InvalidTransition.exit_code

    code, output = cli(home, "quota", "set", login, "--may-download", "--files-per-day", "3")
    assert code == 0
    with world.session() as session:
        quota = session.get_one(DownloadQuota, staff.analyst.id)
        assert (quota.may_download, quota.files_per_day) == (True, 3)
    code, output = cli(home, "quota", "set", "nobody", "--no-may-download")
    assert code == 2 and "nobody" in output

    actors = {e.actor for e in world.entries() if e.action in ("authz.decision", "grant.revoke", "quota.set")}
    assert any(a.startswith("cli:") for a in actors)


def test_each_cli_list_is_one_decision(hub_home: tuple[Path, World]) -> None:
    """Issue 9 item 8: a list, on any face, is one authz.decision entry."""
    home, world = hub_home
    staff = everyone(world)
    approved(world, staff)
    for command in (("application", "list"), ("grant", "list"), ("folder", "acl", "juki")):
        before = world.audit.size()
        code, output = cli(home, *command)
        assert code == 0, output
        decisions = [e for e in world.entries(before) if e.action == "authz.decision"]
        assert [(e.result, e.actor.startswith("cli:")) for e in decisions] == [("allowed", True)], command
