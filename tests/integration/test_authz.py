"""The choke point on SQLite and PostgreSQL: the whole authorization matrix, deny by default, every decision logged."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import select

from renkei.clock import FakeClock
from renkei.hub.access.applications import ApplicationState, PartState
from renkei.hub.access.authz import (
    RULE_MODULES,
    RULES,
    Action,
    Actor,
    Forbidden,
    InvalidTransition,
    Resource,
    ResourceType,
    Rule,
    authorize,
    authorize_each,
    can,
    check,
    check_read_snapshot,
    rules,
)
from renkei.hub.access.grants import folder_acl
from renkei.hub.access.people import Role, User
from renkei.hub.access.quotas import DownloadQuota
from renkei.hub.analysis.ledger import Release, ReleaseStatus
from renkei.hub.audit import AuditEntry
from renkei.hub.catalog import Dataset, Snapshot
from tests.integration.access_world import DATABASES, OTHER, OWN, World, worlds
from tests.unit.test_cli import NOT_FOR_CATALOG_LIST

MARCH_2025 = dt.date(2025, 3, 31)
MARCH_2026 = dt.date(2026, 3, 31)
MATRIX: dict[str, Any] = YAML(typ="safe").load(
    (resources.files("renkei.hub.access") / "authz_matrix.yaml").read_text(encoding="utf-8")
)
OUTCOMES = {"allow", "deny"}


@pytest.fixture(scope="module", params=DATABASES)
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from worlds(request.param, tmp_path_factory.mktemp("authz"))


@pytest.fixture
def world(shared_world: World) -> World:
    shared_world.clock = FakeClock()
    return shared_world


# --- the matrix file --------------------------------------------------------------------------------------


def test_the_matrix_lists_every_action_every_role_and_only_known_resource_types() -> None:
    assert set(MATRIX["actions"]) == {str(a) for a in Action}
    assert set(MATRIX["roles"]) == {str(r) for r in Role}
    assert isinstance(MATRIX["routes"], dict)  # the web layer's routes go here
    for name, spec in MATRIX["actions"].items():
        assert ResourceType(spec["resource"]) in rules()[Action(name)].resource_types, name
        for relation, outcomes in spec["cases"].items():
            assert set(outcomes) == set(MATRIX["roles"]), (name, relation)
            assert set(outcomes.values()) <= OUTCOMES, (name, relation)


def test_every_action_has_exactly_one_rule() -> None:
    assert set(rules()) == set(Action)


def test_a_catalog_decision_loads_no_rule_module(tmp_path: Path) -> None:
    """``renkei catalog list`` starts fast: the roles' rules decide it, so the rule modules stay unloaded, and
    the run loads none of the heavy modules it does not need (the vault, DuckDB, pyarrow, …: issue 7)."""
    home = tmp_path / "hub"
    subprocess.run([sys.executable, "-m", "renkei.cli.main", "hub", "init", "--home", str(home)], check=True,
                   capture_output=True)  # fmt: skip
    probe = (
        "import sys\n"
        "from renkei.cli.main import app\n"
        f"sys.argv = ['renkei', 'catalog', 'list', '--home', {str(home)!r}]\n"
        "try:\n    app()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        f"print(sorted(set({RULE_MODULES!r}) & set(sys.modules)))\n"
        f"print(sorted(m for m in sys.modules if m.startswith({NOT_FOR_CATALOG_LIST!r})))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    assert loaded.stdout.strip().splitlines()[-2:] == ["[]", "[]"]
    assert set(rules()) == set(Action)  # and in a full process every rule is still there


# --- building what each relation means (see the comments in authz_matrix.yaml) ----------------------------


def build(world: World, action: str, relation: str, role: Role) -> tuple[Actor, Resource]:
    spec = MATRIX["actions"][action]
    user = world.user(role, OWN)
    kind = ResourceType(spec["resource"])
    if kind in (ResourceType.APPLICATION, ResourceType.APPLICATION_PART) and relation != "any":
        relation, _, state = relation.partition("/")
        return world.actor(user), application_case(
            world, user, kind, relation, ApplicationState(state or spec["state"])
        )
    if kind is ResourceType.RELEASE:
        relation, _, status = relation.partition("/")
        return world.actor(user), release_case(world, user, relation, ReleaseStatus(status or spec["state"]))
    builders: dict[ResourceType, Callable[[], Resource]] = {
        ResourceType.SNAPSHOT: lambda: snapshot_case(world, user, relation),
        ResourceType.EXPORT: lambda: export_case(world, user, relation),
        ResourceType.GRANT: lambda: grant_case(world, user, relation),
        ResourceType.DATASET: lambda: dataset_case(world, relation),
    }
    build_resource = builders.get(kind, lambda: Resource.of(kind))
    return world.actor(user), build_resource()


def dataset_case(world: World, relation: str) -> Resource:
    with world.session() as session:
        name = "kokuho" if relation == "other" else "juki"
        return Resource.dataset(session.scalars(select(Dataset).where(Dataset.name == name)).one())


def application_case(
    world: World, user: User, kind: ResourceType, relation: str, state: ApplicationState
) -> Resource:
    applicant = user if relation == "applicant" else world.user(Role.ANALYST)
    departments = (OTHER,) if relation == "other" else (OWN, OTHER)
    part_state = PartState.APPROVED if state is ApplicationState.APPROVED else PartState.PENDING
    application_id, parts = world.application(applicant, state, departments, part_state)
    if kind is ResourceType.APPLICATION:
        return Resource.of(kind, application_id)
    return Resource.of(kind, parts[OTHER if relation == "other" else OWN])


def release_case(world: World, user: User, relation: str, status: ReleaseStatus) -> Resource:
    """A table in the release ledger: requested by the actor (applicant) or another analyst, over the
    actor's department's dataset (applicant, owning) or the other department's (other)."""
    requester = user if relation == "applicant" else world.user(Role.ANALYST)
    dataset = "kokuho" if relation == "other" else "juki"
    with world.session() as session:
        release = Release(
            user_id=requester.id, kind="table", definition={}, sql="SELECT 1", snapshot_ids=[],
            datasets=[dataset], cells=[], shown={}, record={}, record_sha256="0" * 64, status=status,
            created_at=world.clock.now(),
        )  # fmt: skip
        session.add(release)
        session.commit()
        return Resource(ResourceType.RELEASE.value, release.id, f"release/{release.id}")


GRANTS: dict[str, dict[str, Any]] = {
    "active_grant": {},
    "active_grant_rows": {"row_level": True},
    "expired_grant": {"starts": -30, "ends": -1},
    "revoked_grant": {"revoked": True},
    "scheduled_grant": {"starts": 1, "ends": 30},
}


def snapshot_case(world: World, user: User, relation: str) -> Resource:
    target = world.snapshot_id("juki", MARCH_2026)
    if relation in GRANTS:
        world.grant(user, [target], **GRANTS[relation])
    elif relation == "other_period_grant":
        world.grant(user, [world.snapshot_id("juki", MARCH_2025)])
    else:
        assert relation == "no_grant"
    return Resource.of(ResourceType.SNAPSHOT, target)


def export_case(world: World, user: User, relation: str) -> Resource:
    grant, _, quota = relation.partition("_grant_")
    snapshot_case(world, user, f"{grant}_grant")
    with world.session() as session:
        session.add(DownloadQuota(user_id=user.id, may_download=quota != "no_download", rows_per_file=5))
        session.commit()
    rows = 10 if quota == "over_quota" else 5
    return Resource.export([world.snapshot_id("juki", MARCH_2026)], rows, 1000)


def grant_case(world: World, user: User, relation: str) -> Resource:
    holder = user if relation == "holder" else world.user(Role.ANALYST)
    dataset = "juki" if relation == "owning" else "kokuho"
    return Resource.of(ResourceType.GRANT, world.grant(holder, [world.snapshot_id(dataset, MARCH_2026)]))


# --- the matrix through authorize() -----------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(MATRIX["actions"]))
def test_authorization_matrix(world: World, action: str) -> None:
    mismatches: list[str] = []
    for relation, outcomes in MATRIX["actions"][action]["cases"].items():
        for role, expected in outcomes.items():
            actor, resource = build(world, action, relation, Role(role))
            size = world.audit.size()
            with world.session() as session:
                decision = authorize(session, world.audit, actor, action, resource, clock=world.clock)
            [entry] = world.entries(size)  # exactly one entry per decision, allowed or denied
            assert (entry.action, entry.result) == (
                "authz.decision",
                "allowed" if decision.allowed else "denied",
            )
            if decision.allowed != (expected == "allow"):
                verdict = decision.verdict
                mismatches.append(
                    f"{relation}/{role}: expected {expected}, {verdict.policy}: {verdict.reason_en}"
                )
    assert mismatches == []


# --- deny by default --------------------------------------------------------------------------------------


def decide(world: World, actor: Actor, action: str, resource: Resource) -> tuple[bool, str]:
    size = world.audit.size()
    with world.session() as session:
        decision = authorize(session, world.audit, actor, action, resource, clock=world.clock)
    [entry] = world.entries(size)
    assert entry.result == ("allowed" if decision.allowed else "denied")
    return decision.allowed, str(entry.details["policy"])


def test_anything_unknown_or_mismatched_is_denied_and_logged(world: World) -> None:
    admin = world.actor(world.user(Role.ADMIN))
    system = Resource.of(ResourceType.SYSTEM)
    assert decide(world, admin, "admin.users", system) == (True, "role:admin")  # the positive control
    assert decide(world, admin, "admin.everything", system) == (False, "deny:unknown-action")
    assert decide(world, admin, "admin.users", Resource("vault")) == (False, "deny:unknown-resource-type")
    assert decide(world, admin, "admin.users", Resource.of(ResourceType.SNAPSHOT, 1)) == (
        False,
        "deny:resource-type",
    )
    stranger = Actor("someone", user_id=999_999)
    assert decide(world, stranger, "catalog.read", Resource.of(ResourceType.CATALOG)) == (
        False,
        "deny:not-designated",
    )
    anonymous = Actor("anonymous")
    assert decide(world, anonymous, "catalog.read", Resource.of(ResourceType.CATALOG)) == (
        False,
        "deny:not-designated",
    )
    missing = Resource.of(ResourceType.SNAPSHOT, 999_999)
    assert decide(world, world.actor(world.user(Role.ANALYST)), "snapshot.read", missing) == (
        False,
        "deny:not-found",
    )


def test_a_disabled_user_is_denied_every_action(world: World) -> None:
    user = world.user(Role.ADMIN, disabled=True)
    for action in Action:
        kind = next(iter(RULES[action].resource_types))
        assert decide(world, world.actor(user), action, Resource.of(kind)) == (False, "deny:not-designated")


def test_an_action_without_a_rule_is_denied(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(RULES, Action.AUDIT_READ)
    auditor = world.actor(world.user(Role.AUDITOR))
    assert decide(world, auditor, "audit.read", Resource.of(ResourceType.AUDIT_LOG)) == (
        False,
        "deny:no-rule",
    )


def test_a_failing_rule_fails_the_request_and_is_logged_as_an_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> Any:
        raise LookupError("boom")

    monkeypatch.setitem(
        RULES, Action.AUDIT_READ, dataclasses.replace(RULES[Action.AUDIT_READ], decide=broken)
    )
    size = world.audit.size()
    with world.session() as session, pytest.raises(LookupError):
        authorize(
            session,
            world.audit,
            world.actor(world.user(Role.AUDITOR)),
            "audit.read",
            Resource.of(ResourceType.AUDIT_LOG),
        )
    [entry] = world.entries(size)
    assert (entry.result, entry.reason) == ("error", "LookupError")
    assert isinstance(RULES[Action.CATALOG_READ], Rule)


def test_the_console_acts_as_admin_and_is_named_in_the_log(world: World) -> None:
    console = Actor.cli("cli:operator")
    assert decide(world, console, "admin.quotas", Resource.of(ResourceType.SYSTEM)) == (True, "role:admin")
    snapshot = Resource.of(ResourceType.SNAPSHOT, world.snapshot_id("juki", MARCH_2026))
    assert decide(world, console, "snapshot.read", snapshot) == (False, "deny:role")
    assert world.audit.tail(1)[0].actor == "cli:operator"


# --- check_ and can_ --------------------------------------------------------------------------------------


def test_check_raises_forbidden_with_its_status_and_can_answers_a_bool_both_recorded(world: World) -> None:
    analyst = world.actor(world.user(Role.ANALYST))
    audit_log = Resource.of(ResourceType.AUDIT_LOG)
    size = world.audit.size()
    with world.session() as session:
        assert can(session, world.audit, analyst, Action.AUDIT_READ, audit_log, clock=world.clock) is False
        with pytest.raises(Forbidden) as refused:
            check(session, world.audit, analyst, Action.AUDIT_READ, audit_log, clock=world.clock)
    assert (refused.value.http_status, refused.value.exit_code) == (403, 6)
    assert refused.value.decision is not None and refused.value.decision.audit_seq == size + 1
    assert [e.result for e in world.entries(size)] == ["denied", "denied"]
    assert InvalidTransition.http_status == 409


# --- what a decision entry holds (Apache Ranger's fields) --------------------------------------------------


def test_a_decision_entry_says_who_from_where_what_why_and_which_grant(world: World) -> None:
    user = world.user(Role.ANALYST)
    grant_id = world.grant(user, [world.snapshot_id("juki", MARCH_2026)])
    with world.session() as session:
        snapshot = session.get_one(Snapshot, world.snapshot_id("juki", MARCH_2026))
        decision = check_read_snapshot(session, world.audit, world.actor(user), snapshot, clock=world.clock)
    entry = world.audit.tail(1)[0]
    assert (entry.actor, entry.terminal, entry.client_addr) == (user.login_id, "term-01", "10.0.0.5")
    assert (entry.action, entry.resource, entry.result) == (
        "authz.decision",
        "snapshot/juki/2026-03-31/v1",
        "allowed",
    )
    assert entry.reason == f"grant {grant_id} covers juki/2026-03-31/v1"
    assert entry.details == {
        "access": "snapshot.read",
        "resource_type": "snapshot",
        "policy": "grant",
        "policy_version": 1,
        "session_id": "s-1",
        "grant_ids": [grant_id],
        "application_id": decision.verdict.application_id,
    }
    assert entry.seq == decision.audit_seq


# --- folder access lists ----------------------------------------------------------------------------------


def test_a_folders_access_list_is_its_active_grants_of_enabled_analysts(world: World) -> None:
    juki = world.snapshot_id("juki", MARCH_2026)
    reader, rows_reader, lapsed, revoked, disabled = (world.user(Role.ANALYST) for _ in range(5))
    active = world.grant(reader, [juki])
    with_rows = world.grant(rows_reader, [juki, world.snapshot_id("juki", MARCH_2025)], row_level=True)
    world.grant(lapsed, [juki], starts=-30, ends=-1)
    world.grant(revoked, [juki], revoked=True)
    world.grant(disabled, [juki])
    with world.session() as session:
        session.get_one(User, disabled.id).disabled = True
        session.commit()
        dataset = session.scalars(select(Dataset).where(Dataset.name == "juki")).one()
        acl = folder_acl(session, dataset, world.clock)
    mine = {e.grant_id: e for e in acl.readers if e.grant_id in (active, with_rows)}
    assert {e.login_id for e in acl.readers} >= {reader.login_id, rows_reader.login_id}
    assert not {e.login_id for e in acl.readers} & {lapsed.login_id, revoked.login_id, disabled.login_id}
    assert (mine[active].row_level, mine[with_rows].row_level) == (False, True)
    assert mine[with_rows].snapshots == ("2025-03-31 v1", "2026-03-31 v1")
    assert acl.owner == OWN


# --- the decision commits on its own connection -------------------------------------------------------------


def test_authorize_refuses_to_run_after_the_session_has_written(tmp_path: Path) -> None:
    world = World(f"sqlite:///{tmp_path / 'catalog.db'}")
    analyst = world.user(Role.ANALYST)
    with world.session() as session:
        session.get_one(User, analyst.id).display_name = "変更中"
        with pytest.raises(RuntimeError, match="before changing"):
            authorize(
                session, world.audit, world.actor(analyst), "catalog.read", Resource.of(ResourceType.CATALOG)
            )
        session.flush()  # the session now holds SQLite's write lock
        with pytest.raises(RuntimeError, match="before the session writes"):
            authorize(
                session, world.audit, world.actor(analyst), "catalog.read", Resource.of(ResourceType.CATALOG)
            )
    world.dispose()


def test_one_entry_records_the_decisions_on_several_objects(world: World) -> None:
    """A query over several periods is one access: one authz.decision entry names every snapshot."""
    user = world.user(Role.ANALYST)
    with world.session() as session:
        snapshots = list(session.scalars(select(Snapshot).order_by(Snapshot.id)))
        world.grant(user, [snapshots[0].id])
        before = world.audit.size()
        decisions = authorize_each(
            session, world.audit, world.actor(user), Action.SNAPSHOT_READ,
            [Resource.snapshot(s) for s in snapshots], clock=world.clock,
        )  # fmt: skip
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.seq >= before)))
    assert len(decisions) == len(snapshots) >= 2 and len({d.audit_seq for d in decisions}) == 1
    assert [d.allowed for d in decisions] == [True] + [False] * (len(snapshots) - 1)
    assert len(entries) == 1 and entries[0].result == "denied"
    assert entries[0].details["resources"] == [Resource.snapshot(s).label for s in snapshots]
    assert len(entries[0].details["denied"]) == len(snapshots) - 1


def test_a_list_too_long_for_one_entry_is_split_never_cut(world: World) -> None:
    """Every object of a long list is recorded, in as few entries as fit (an entry's details hold 8 KiB)."""
    user = world.user(Role.ANALYST)
    resources = [
        Resource(ResourceType.SNAPSHOT.value, 10_000 + n, f"snapshot/{'長' * 60}/{n}") for n in range(120)
    ]
    with world.session() as session:
        before = world.audit.size()
        decisions = authorize_each(
            session, world.audit, world.actor(user), Action.SNAPSHOT_READ, resources, clock=world.clock
        )
        entries = list(
            session.scalars(select(AuditEntry).where(AuditEntry.seq >= before).order_by(AuditEntry.seq))
        )
    assert 1 < len(entries) < len(resources)
    assert [e.details["resources"] for e in entries] == [
        [r.label for r, d in zip(resources, decisions, strict=True) if d.audit_seq == e.seq] for e in entries
    ]
    assert sum(len(e.details["resources"]) for e in entries) == len(resources)
    assert [(e.details["batch"], e.details["batches"]) for e in entries] == [
        (n, len(entries)) for n in range(1, len(entries) + 1)
    ]
    assert all(
        e.result == "denied" and len(e.details["denied"]) == len(e.details["resources"]) for e in entries
    )
