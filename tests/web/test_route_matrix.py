"""The routes section of authz_matrix.yaml, held against the app (ASVS v5.0.0-8.1.1, 8.2.1, 8.2.2).

- Every route the app serves is in the matrix, and every route in the matrix is served, with the same guard.
- Every cell (route × relation × caller) is sent through HTTP against a fresh object: the status must match,
  and every authorization decision the request made must be for one of the route's declared actions — so a
  route cannot quietly skip authorize() or ask it about something else (the datasette-style hook monitor);
  and every refusal (403, 409, 401 of a caller who sent a session, 404 of another user's object) must have left
  a ``denied`` entry in the audit log (docs/permissions.md, "Where a request is refused").
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from ruamel.yaml import YAML
from sqlalchemy import delete, select

from renkei.clock import city_today
from renkei.hub.access.applications import (
    Application,
    ApplicationItem,
    ApplicationPart,
    ApplicationState,
    PartState,
)
from renkei.hub.access.authz import Action
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role
from renkei.hub.access.throttle import ThrottleRecord
from renkei.hub.analysis.ledger import Release, ReleaseKind, ReleaseStatus, SavedAnalysis
from renkei.hub.catalog import Department, Snapshot
from renkei.web.app import check_guards, route_table
from renkei.web.context import Public, SignedIn, public, signed_in, signed_in_any_password, stepped_up
from renkei.web.cookies import SESSION_COOKIE
from tests.web.support import OTHER, OWN, PASSWORD, Person, WebWorld, csrf, enroll, world_on

MATRIX: dict[str, Any] = YAML(typ="safe").load(
    (resources.files("renkei.hub.access") / "authz_matrix.yaml").read_text(encoding="utf-8")
)
ROUTES: dict[str, dict[str, Any]] = MATRIX["routes"]
CALLERS = ("anonymous", "admin", "steward", "analyst", "auditor", "disabled")
RELATIONS = {"any", "own", "owning", "other"}
GUARD_NAMES = {
    public: "public",
    signed_in: "signed_in",
    signed_in_any_password: "signed_in",
    stepped_up: "stepped_up",
}
DATASET_OF = {OWN: "juki", OTHER: "kokuho"}
PERIOD = dt.date(2026, 3, 31)

CELLS = [
    pytest.param(route, relation, caller, id=f"{route} {relation} {caller}")
    for route, spec in ROUTES.items()
    for relation in spec["cases"]
    for caller in CALLERS
]


# --- the matrix and the app -------------------------------------------------------------------------------


def test_the_matrix_lists_exactly_the_routes_the_app_serves(shared_world: WebWorld) -> None:
    served = {f"{method} {path}": route for method, path, route in route_table(shared_world.app)}
    assert sorted(set(served) - set(ROUTES)) == [], "routes missing from authz_matrix.yaml"
    assert sorted(set(ROUTES) - set(served)) == [], "routes in authz_matrix.yaml that the app does not serve"
    for key, route in served.items():
        if isinstance(route, APIRoute):
            guards = {GUARD_NAMES[d.call] for d in route.dependant.dependencies if d.call in GUARD_NAMES}
            assert guards == {ROUTES[key]["guard"]}, key


def test_a_route_without_exactly_one_guard_stops_the_start() -> None:
    unguarded, guarded_twice = FastAPI(), FastAPI()

    @unguarded.get("/open")
    def open_route() -> dict[str, str]:
        return {}

    @guarded_twice.get("/twice")
    def twice(a: Public, b: SignedIn) -> dict[str, str]:
        return {}

    for app, path in ((unguarded, "/open"), (guarded_twice, "/twice")):
        with pytest.raises(RuntimeError, match=f"GET {path}"):
            check_guards(app)


def test_every_cell_names_known_actions_relations_and_callers() -> None:
    for key, spec in ROUTES.items():
        assert set(spec.get("actions", [])) <= {str(a) for a in Action}, key
        assert {relation.partition("/")[0] for relation in spec["cases"]} <= RELATIONS, key
        for relation, statuses in spec["cases"].items():
            assert tuple(statuses) == CALLERS, (key, relation)
            assert all(isinstance(s, int) and 200 <= s < 600 for s in statuses.values()), (key, relation)
        if set(spec["cases"]) - {"any"}:
            assert "object" in spec, key


# --- driving every cell -----------------------------------------------------------------------------------


@dataclass
class Staff:
    world: WebWorld
    people: dict[str, Person]
    colleague: Person  # another analyst of the callers' department: applicant and holder of others' objects
    client: httpx.Client  # one browser for all cells; its cookies are cleared before each


@pytest.fixture(scope="module")
def staff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staff]:
    directory: Path = tmp_path_factory.mktemp("matrix")
    with world_on(f"sqlite:///{directory / 'catalog.db'}", directory) as world:
        people = {role.value: world.person(role, OWN) for role in Role}
        people["disabled"] = world.person(Role.ANALYST, OWN)
        world.set_disabled(people["disabled"])
        with world.client(address="10.0.0.20") as client:
            yield Staff(world, people, world.person(Role.ANALYST, OWN), client)


@dataclass
class Target:
    """What a cell's path names: the ids to put into it."""

    application_id: int = 0
    part_id: int = 0
    grant_id: int = 0
    release_id: int = 999_999  # by default no such release
    analysis_id: int = 999_999  # nor saved analysis
    dataset: str = "juki"
    login_id: str = "nobody-at-all"
    terminal: str = "no-such-terminal"

    def path(self, template: str) -> str:
        values = {
            "application_id": self.application_id,
            "part_id": self.part_id,
            "grant_id": self.grant_id,
            "release_id": self.release_id,
            "name": self.dataset,
            "login_id": self.login_id,
            "terminal": self.terminal,
            "path": "renkei.css",
            "theme": "population",
        }
        return re.sub(r"\{([a-z_]+)\}", lambda m: str(values[m.group(1)]), template)


def build_target(staff: Staff, spec: dict[str, Any], relation: str, caller: str) -> Target:
    kind, _, state = str(spec.get("object", "")).partition(":")
    relation, _, other_state = relation.partition("/")
    state = other_state or state
    owner_is_caller = relation == "own" and caller in staff.people
    holder = staff.people[caller] if owner_is_caller else staff.colleague
    department = OTHER if relation == "other" else OWN
    if kind == "dataset":
        return Target(dataset=DATASET_OF[department])
    if kind == "user":  # an admin's change lands on a fresh analyst, never on a caller
        return Target(login_id=staff.world.person(Role.ANALYST, OWN).login_id)
    if kind == "terminal":
        world = staff.world
        name = f"pc-{secrets.token_hex(4)}"
        enroll(world.engine, world.ca, world.clock, name, world.home)
        return Target(terminal=name)
    if kind == "grant":
        return Target(
            grant_id=make_grant(staff.world, holder, OTHER if relation in ("own", "other") else OWN)
        )
    if kind == "release":
        return Target(release_id=make_release(staff.world, holder, department, ReleaseStatus(state)))
    if kind == "analysis":
        return Target(analysis_id=make_saved_analysis(staff.world, holder))
    if kind in ("application", "part"):
        app_state, part_state = {
            "draft": (ApplicationState.DRAFT, PartState.PENDING),
            "submitted": (ApplicationState.SUBMITTED, PartState.PENDING),
            "pending": (ApplicationState.SUBMITTED, PartState.PENDING),
            "approved": (ApplicationState.APPROVED, PartState.APPROVED),
        }[state]
        application_id, part_id = make_application(staff.world, holder, department, app_state, part_state)
        return Target(application_id=application_id, part_id=part_id)
    return Target()


def make_application(
    world: WebWorld, applicant: Person, department: str, state: ApplicationState, part_state: PartState
) -> tuple[int, int]:
    today = city_today(world.clock)
    with world.session() as session:
        department_id = session.scalars(select(Department.id).where(Department.name == department)).one()
        part = ApplicationPart(
            department_id=department_id,
            state=part_state,
            items=[ApplicationItem(snapshot_id=world.snapshot_id(DATASET_OF[department], PERIOD))],
        )
        application = Application(
            applicant_id=applicant.user.id,
            purpose="目的",
            outputs="集計表",
            use_start=today,
            use_end=today + dt.timedelta(days=90),
            row_level=False,
            state=state,
            submitted_at=None if state is ApplicationState.DRAFT else world.clock.now(),
            applied_on=today,
            created_at=world.clock.now(),
            updated_at=world.clock.now(),
            parts=[part],
        )
        session.add(application)
        session.commit()
        return application.id, part.id


def make_release(world: WebWorld, requester: Person, department: str, status: ReleaseStatus) -> int:
    """A table in the release ledger over the department's dataset, requested by ``requester``."""
    with world.session() as session:
        release = Release(
            user_id=requester.user.id, kind="table", sql="SELECT 1", snapshot_ids=[],
            definition={"dataset": DATASET_OF[department], "dimensions": [{"kind": "column", "column": "性別"}]},
            datasets=[DATASET_OF[department]], cells=[], shown={"header": [], "rows": [], "notes": []}, record={},
            record_sha256="0" * 64, status=status, created_at=world.clock.now(),
        )  # fmt: skip
        session.add(release)
        session.commit()
        return release.id


def make_saved_analysis(world: WebWorld, owner: Person) -> int:
    """A table definition ``owner`` saved from the table builder."""
    with world.session() as session:
        saved = SavedAnalysis(
            user_id=owner.user.id, name=f"保存した表 {secrets.token_hex(3)}", kind=ReleaseKind.TABLE,
            definition={"dataset": "juki", "dimensions": [{"kind": "column", "column": "住所_ward"}]},
            created_at=world.clock.now(), updated_at=world.clock.now(),
        )  # fmt: skip
        session.add(saved)
        session.commit()
        return saved.id


def make_grant(world: WebWorld, holder: Person, department: str) -> int:
    application_id, part_id = make_application(
        world, holder, department, ApplicationState.APPROVED, PartState.APPROVED
    )
    today = city_today(world.clock)
    with world.session() as session:
        snapshot = session.get_one(Snapshot, world.snapshot_id(DATASET_OF[department], PERIOD))
        grant = Grant(
            application_id=application_id,
            part_id=part_id,
            user_id=holder.user.id,
            dataset_id=snapshot.dataset_id,
            row_level=False,
            valid_from=today,
            valid_until=today + dt.timedelta(days=90),
            issued_at=world.clock.now(),
            snapshots=[snapshot],
        )
        session.add(grant)
        session.commit()
        return grant.id


def request_body(route: str, caller: str, staff: Staff, target: Target) -> dict[str, Any]:
    """A valid body for the route; for the login steps, the caller's own credentials and a wrong second factor."""
    login_id = staff.people[caller].login_id if caller in staff.people else "nobody-at-all"
    today = city_today(staff.world.clock)
    bodies: dict[str, dict[str, Any]] = {
        "session/login": {"login_id": login_id, "password": PASSWORD},
        "session/card": {"assertion": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}},
        "session/totp": {"code": "000000"},
        "session/password": {
            "current_password": "not my password at all",
            "new_password": "港町の坂道と朝霧の灯台",
        },
        "cards/enrollment": {"login_id": login_id, "password": PASSWORD, "ticket": "AAAA-BBBB-CCCC-DDDD"},
        "cards/enrollment/finish": {"response": {"id": "AAAA"}},
        "api/v1/applications": {
            "datasets": [{"dataset": "juki", "periods": [PERIOD.isoformat()]}],
            "purpose": "目的",
            "outputs": "成果物",
            "use_start": today.isoformat(),
            "use_end": (today + dt.timedelta(days=30)).isoformat(),
        },
        "api/v1/tables": {"dataset": "juki", "dimensions": [{"kind": "column", "column": "住所_ward"}]},
        "api/v1/query": {"sql": "SELECT count(*) FROM juki"},
        "api/v1/exports": {"release_id": target.release_id, "format": "csv"},
        "api/v1/opendata/preview": {"release_id": target.release_id, "epsilon": 0.5},
        "api/v1/opendata/publish": {"release_id": target.release_id, "epsilon": 0.5},
        "review": {"approve": True, "comment": "確認しました"},
        "withdraw": {"comment": "不要になった"},
        "approve": {"comment": "承認します"},
        "reject": {"comment": "目的が不明確"},
        "revoke": {"reason": "目的外利用の疑い"},
        "/login": {"login_id": login_id, "password": PASSWORD},
        "/login/card": {"assertion": "{}"},
        "/login/totp": {"code": "000000"},
        "/password": {"current_password": "not my password at all", "new_password": "港町の坂道と朝霧の灯台"},
        "/cards/enroll": {"login_id": login_id, "password": PASSWORD, "ticket": "AAAA-BBBB-CCCC-DDDD"},
        "/cards/enroll/finish": {"registration": "{}"},
        "/applications": {
            "period": f"juki:{PERIOD.isoformat()}",
            "purpose": "目的",
            "outputs": "成果物",
            "use_start": today.isoformat(),
            "use_end": (today + dt.timedelta(days=30)).isoformat(),
            "action": "save",
        },
        "edit": {
            "period": f"juki:{PERIOD.isoformat()}",
            "purpose": "目的を書き直した",
            "outputs": "成果物",
            "use_start": today.isoformat(),
            "use_end": (today + dt.timedelta(days=30)).isoformat(),
            "action": "save",
        },
        "withdraw-form": {"reason": "不要になった"},
        "session/step-up": {},
        "session/step-up/card": {
            "assertion": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
        },
        "session/step-up/totp": {"code": "000000"},
        "/step-up": {"next": "/home"},
        "/dashboards/pin": {"analysis_id": str(target.analysis_id), "theme": "population"},
        "/exports": {"release_id": str(target.release_id), "format": "csv", "next": "/exports"},
        "/releases/{release_id}/review": {"decision": "approve", "comment": "確認しました"},
        "/step-up/card": {"assertion": "{}", "next": "/home"},
        "/step-up/totp": {"code": "000000", "next": "/reviews"},
        "/workspace/table": {"dataset": "juki", "dim1": "column:住所_ward", "action": "run"},
        "/workspace/query": {"sql": "SELECT count(*) FROM juki", "action": "run"},
        "/workspace/rerun": {"name": "保存していない分析", "period": ""},
        "/admin/users": {
            "login_id": f"new-{secrets.token_hex(4)}",
            "display_name": "新任 職員",
            "role": "analyst",
            "department": OWN,
        },
        "/admin/departments": {"department_name": f"新設課 {secrets.token_hex(4)}"},
        "/admin/users/{login_id}/change": {"role": "steward", "department": OWN},
        "/admin/users/{login_id}/disable": {},
        "/admin/users/{login_id}/enable": {},
        "/admin/users/{login_id}/password": {},
        "/admin/users/{login_id}/card-ticket": {},
        "/admin/users/{login_id}/totp": {},
        "/admin/users/{login_id}/cards/revoke": {},
        "/admin/terminals": {"terminal_name": f"pc-{secrets.token_hex(4)}"},
        "/admin/terminals/{terminal}/revoke": {},
        "revoke-form": {"reason": "目的外利用の疑い"},
    }
    method, path = route.split(" ", 1)
    if method == "GET" or path.endswith("/logout") or path.endswith("/submit"):
        return {}
    is_page = not path.startswith("/api/")
    for key in (path, path.removeprefix("/api/v1/"), path.removeprefix("/")):
        if key in bodies:
            return bodies[key]
    last = path.rsplit("/", 1)[1]
    if is_page and last in ("withdraw", "revoke"):
        return bodies[f"{last}-form"]
    return bodies[last]


def send(staff: Staff, route: str, caller: str, target: Target) -> tuple[httpx.Response, int]:
    """The request, as the caller's browser or script would send it; returns it and the audit size before."""
    world = staff.world
    method, template = route.split(" ", 1)
    client = staff.client
    client.cookies.clear()
    if caller != "anonymous":
        session_token, _ = world.open_session(staff.people[caller])
        client.cookies.set(SESSION_COOKIE, session_token)
    before = world.audit_size()  # (a disabled caller's session is refused, and logged, at the token's fetch)
    token = csrf(client)
    body = request_body(route, caller, staff, target)
    if template.startswith("/api/"):
        response = client.request(
            method, target.path(template), json=body or None, headers={"X-CSRF-Token": token}
        )
    else:
        form = {**body, "csrf_token": token} if method == "POST" else None
        response = client.request(method, target.path(template), data=form, headers={"Accept": "text/html"})
    return response, before


@pytest.mark.parametrize(("route", "relation", "caller"), CELLS)
def test_cell(staff: Staff, route: str, relation: str, caller: str) -> None:
    world = staff.world
    spec = ROUTES[route]
    with world.session() as session:  # each cell starts with no failed logins on record
        session.execute(delete(ThrottleRecord))
        session.commit()
    target = build_target(staff, spec, relation, caller)
    response, before = send(staff, route, caller, target)
    assert response.status_code == spec["cases"][relation][caller], response.text[:500]

    logged = world.entries(before)
    decisions = [e for e in logged if e.action == "authz.decision"]
    refused = response.status_code in (403, 409) or (response.status_code == 404 and "object" in spec)
    if refused or (response.status_code == 401 and caller != "anonymous"):
        # every refusal is on the record, another's object "not found" too (a caller without any session is
        # not: docs/permissions.md)
        assert [e for e in logged if e.result == "denied"], "a refusal without a denied audit entry"
    declared = set(spec.get("actions", []))
    assert {e.details["access"] for e in decisions} <= declared, "a decision about an undeclared action"
    if caller in ("anonymous", "disabled"):
        assert decisions == []  # refused before anything was decided
    elif declared and not spec.get("lists"):
        assert decisions, "the route did not ask authorize()"
