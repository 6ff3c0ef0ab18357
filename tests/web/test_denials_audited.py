"""Every denial is in the audit log (issue 12 item 2): each guard that can refuse a request or a command, made
to refuse, and its entry found — action, actor, result ``denied``, reason and object.

The guards (docs/permissions.md, "Where a request is refused"):

========================================  =====================================================================
guard                                     entry
========================================  =====================================================================
role not allowed, not the owner,          ``authz.decision`` denied (``details.access``, ``details.policy``),
another department's object               under the user, ``resource`` = the object (authorize(), every rule)
another user's release (export)           ``authz.decision`` denied, ``export``, policy ``deny:not-owner`` (404)
another user's saved table (pin)          ``dashboard.pin`` denied (404)
no active grant (none, expired, revoked)  ``authz.decision`` denied, ``snapshot.read``, policy ``deny:no-grant``,
                                          ``resource`` ``workspace`` (the workspace refuses to open)
quota exceeded                            ``authz.decision`` denied, policy ``deny:quota…``
                                          (tests/integration/test_quotas.py)
step-up missing or stale                  ``session.step_up_required`` denied, ``resource`` = the route
forced password change                    ``session.password_change_required`` denied, ``resource`` = the route
                                          (``console`` for a console login)
session on another terminal, timed out,   ``session.rejected`` under the session's user, reason
user disabled, terminal revoked           ``terminal_mismatch`` / ``idle_timeout`` / ``absolute_timeout`` /
                                          ``user_disabled`` / ``terminal_revoked`` (and tests/web/test_audit_entries.py)
CSRF check failed                         ``web.csrf`` denied: with a session, each under its user; without one,
                                          rate-limited (1st, 2nd, 4th … per source, route and window)
unknown session token                     ``session.rejected`` ``unknown``, rate-limited (test_audit_entries.py)
posing as the reverse proxy               ``web.proxy``, rate-limited (tests/web/test_terminals.py)
a login step refused, throttled           ``login.*`` denied (tests/web/test_login.py)
no session at all                         nothing: a request without any credential proves nothing about anyone
========================================  =====================================================================
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from renkei.clock import SYSTEM_CLOCK, city_today
from renkei.hub.access import totp
from renkei.hub.access.applications import ApplicationState, PartState
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role
from renkei.hub.access.sessions import SessionRecord
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.ledger import ReleaseStatus
from renkei.hub.analysis.service import console_login
from renkei.hub.audit import AuditEntry
from renkei.hub.workspace.workspace import NO_GRANT_POLICY
from renkei.web.cookies import SESSION_COOKIE
from tests.web.support import (
    OTHER,
    OWN,
    STEP_UP_STALE,
    Person,
    WebWorld,
    csrf,
    enroll,
    login_with_totp,
)
from tests.web.test_route_matrix import make_application, make_grant, make_release, make_saved_analysis


def signed_in(world: WebWorld, client: httpx.Client, person: Person) -> str:
    """A session of ``person`` in ``client``; its CSRF token."""
    token, csrf_token = world.open_session(person)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf_token


def denied(world: WebWorld, since: int, action: str) -> list[AuditEntry]:
    return [e for e in world.entries(since) if e.action == action and e.result == "denied"]


# --- authorize(): role, owner, department ------------------------------------------------------------------


def test_a_role_that_may_not_is_denied_on_the_record(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    with world.client() as client:
        signed_in(world, client, analyst)
        before = world.audit_size()
        assert client.get("/api/v1/datasets/juki/acl").status_code == 403
    [entry] = denied(world, before, "authz.decision")
    assert (entry.actor, entry.resource, entry.details["access"]) == (
        analyst.login_id,
        "dataset/juki",
        "folder.read_acl",
    )
    assert entry.details["policy"].startswith("deny:") and entry.reason and entry.details["session_id"]


def test_another_users_object_is_denied_on_the_record(world: WebWorld) -> None:
    analyst, colleague = world.person(Role.ANALYST), world.person(Role.ANALYST)
    application_id, _ = make_application(world, colleague, OWN, ApplicationState.SUBMITTED, PartState.PENDING)
    with world.client() as client:
        signed_in(world, client, analyst)
        before = world.audit_size()
        assert client.get(f"/api/v1/applications/{application_id}").status_code == 403
    [entry] = denied(world, before, "authz.decision")
    assert (entry.actor, entry.resource, entry.details["access"]) == (
        analyst.login_id,
        f"application/{application_id}",
        "application.read",
    )


def test_another_departments_object_is_denied_to_a_steward_on_the_record(world: WebWorld) -> None:
    steward, holder = world.person(Role.STEWARD), world.person(Role.ANALYST)
    grant_id = make_grant(world, holder, OTHER)
    with world.client() as client:
        token = signed_in(world, client, steward)
        before = world.audit_size()
        refused = client.post(
            f"/api/v1/grants/{grant_id}/revoke", json={"reason": "確認"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 403
    [entry] = denied(world, before, "authz.decision")
    assert (entry.actor, entry.resource, entry.details["access"]) == (
        steward.login_id,
        f"grant/{grant_id}",
        "grant.revoke",
    )


def test_another_users_release_is_not_found_and_the_refusal_is_on_the_record(world: WebWorld) -> None:
    analyst, colleague = world.person(Role.ANALYST), world.person(Role.ANALYST)
    release_id = make_release(world, colleague, OWN, ReleaseStatus.RELEASED)
    with world.client() as client:
        token = signed_in(world, client, analyst)
        before = world.audit_size()
        refused = client.post(
            "/api/v1/exports",
            json={"release_id": release_id, "format": "csv"},
            headers={"X-CSRF-Token": token},
        )
        assert refused.status_code == 404  # another's is not told from none …
    [entry] = denied(world, before, "authz.decision")  # … but the log tells them apart
    assert (entry.actor, entry.resource, entry.details["access"], entry.details["policy"]) == (
        analyst.login_id,
        f"release/{release_id}",
        "export",
        "deny:not-owner",
    )


def test_another_users_saved_analysis_is_not_pinned_and_the_refusal_is_on_the_record(world: WebWorld) -> None:
    analyst, colleague = world.person(Role.ANALYST), world.person(Role.ANALYST)
    analysis_id = make_saved_analysis(world, colleague)
    with world.client() as client:
        token = signed_in(world, client, analyst)
        before = world.audit_size()
        refused = client.post(
            "/dashboards/pin",
            data={"analysis_id": str(analysis_id), "theme": "population", "csrf_token": token},
            headers={"Accept": "text/html"},
        )
        assert refused.status_code == 404
    [entry] = denied(world, before, "dashboard.pin")
    assert (entry.actor, entry.resource, entry.reason) == (
        analyst.login_id,
        f"analysis/{analysis_id}",
        "another user's saved analysis",
    )


# --- grants ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grant", ["none", "expired", "revoked"])
def test_a_workspace_without_an_active_grant_is_denied_on_the_record(world: WebWorld, grant: str) -> None:
    analyst = world.person(Role.ANALYST)
    if grant != "none":
        grant_id = make_grant(world, analyst, OWN)
        today = city_today(world.clock)
        with world.session() as session:
            row = session.get_one(Grant, grant_id)
            if grant == "expired":
                row.valid_from, row.valid_until = today - dt.timedelta(days=60), today - dt.timedelta(days=1)
            else:
                row.revoked_at, row.revoked_by = world.clock.now(), "test"
            session.commit()
    with world.client() as client:
        token = signed_in(world, client, analyst)
        before = world.audit_size()
        refused = client.post(
            "/api/v1/query", json={"sql": "SELECT count(*) FROM juki"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 409, refused.text
    [entry] = denied(world, before, "authz.decision")
    assert (entry.actor, entry.resource, entry.details["access"], entry.details["policy"]) == (
        analyst.login_id,
        "workspace",
        "snapshot.read",
        NO_GRANT_POLICY,
    )
    assert entry.reason == "the user has no active grant"


# --- the session's guards ----------------------------------------------------------------------------------


def test_a_missing_step_up_is_denied_on_the_record(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    with world.client() as client:
        token = signed_in(world, client, analyst)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        before = world.audit_size()
        refused = client.post(
            "/api/v1/exports", json={"release_id": 1, "format": "csv"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
    [entry] = denied(world, before, "session.step_up_required")
    assert (entry.actor, entry.resource, entry.reason) == (
        analyst.login_id,
        "POST /api/v1/exports",
        "step_up_stale",
    )


def test_a_forced_password_change_is_denied_on_the_record(world: WebWorld) -> None:
    person = world.person(Role.ANALYST, must_change=True)
    with world.client() as client:
        start = world.audit_size()
        login_with_totp(world, client, person)
        opened = next(e for e in world.entries(start) if e.action == "login.totp").details["session_id"]
        before = world.audit_size()
        refused = client.get("/api/v1/applications")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "password_change_required"
    [entry] = denied(world, before, "session.password_change_required")
    assert (entry.actor, entry.resource, entry.reason, entry.terminal) == (
        person.login_id,
        "GET /api/v1/applications",
        "password_change_required",
        world.terminal.name,
    )
    assert entry.details["session_id"] == opened


def test_a_forced_password_change_at_a_console_login_is_denied_on_the_record(world: WebWorld) -> None:
    person = world.person(Role.ANALYST, must_change=True)
    hub = world.app.state.portal.hub
    code = totp.current_code(person.totp_secret, SYSTEM_CLOCK.now())  # a console login keeps the hub's time
    before = world.audit_size()
    with pytest.raises(AnalysisError, match="one-time password"):
        console_login(hub, person.login_id, world.terminal.name, person.password, code)
    [entry] = denied(world, before, "session.password_change_required")
    assert (entry.actor, entry.resource, entry.reason, entry.terminal) == (
        person.login_id,
        "console",
        "password_change_required",
        world.terminal.name,
    )


@pytest.mark.parametrize("reason", ["terminal_mismatch", "idle_timeout", "absolute_timeout", "user_disabled"])
def test_a_refused_session_is_denied_on_the_record(world: WebWorld, reason: str) -> None:
    person = world.person(Role.ANALYST)
    _, other_pem = enroll(world.engine, world.ca, world.clock, f"pc-{reason}", world.home)
    token, _ = world.open_session(person)
    if reason == "idle_timeout":
        world.clock.advance(seconds=world.app.state.portal.login.sessions.idle_timeout.total_seconds() + 60)
    elif reason == "absolute_timeout":  # the day's limit reached, however active the session was
        with world.session() as session:
            record = session.scalars(
                select(SessionRecord).where(SessionRecord.user_id == person.user.id)
            ).one()
            record.expires_at = world.clock.now()
            session.commit()
    elif reason == "user_disabled":
        world.set_disabled(person)
    before = world.audit_size()
    with world.client(other_pem if reason == "terminal_mismatch" else "") as client:
        client.cookies.set(SESSION_COOKIE, token)
        assert client.get("/api/v1/session").status_code == 401
    [entry] = denied(world, before, "session.rejected")
    assert (entry.actor, entry.resource, entry.reason) == (person.login_id, f"user/{person.login_id}", reason)
    assert entry.details["session_terminal"] == world.terminal.name


def test_a_csrf_refusal_is_on_the_record_under_the_sessions_user(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    with world.client() as client:
        signed_in(world, client, analyst)
        before = world.audit_size()
        refused = client.post("/api/v1/applications", json={}, headers={"X-CSRF-Token": "not the token"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_rejected"
    [entry] = denied(world, before, "web.csrf")
    assert (entry.actor, entry.resource, entry.reason) == (
        analyst.login_id,
        "POST /api/v1/applications",
        "csrf_mismatch",
    )
    assert entry.details["session_id"]


def test_csrf_refusals_without_a_session_are_on_the_record_without_flooding_it(world: WebWorld) -> None:
    before = world.audit_size()
    with world.client(address="10.0.0.61") as script:
        for _ in range(100):
            refused = script.post("/api/v1/session/login", json={"login_id": "x", "password": "y"})
            assert refused.status_code == 403
        assert script.post("/login", data={"login_id": "x", "password": "y"}).status_code == 403
    logged = denied(world, before, "web.csrf")
    api = [e for e in logged if e.resource == "POST /api/v1/session/login"]
    assert [e.details["occurrence"] for e in api] == [1, 2, 4, 8, 16, 32, 64]
    assert {(e.actor, e.reason, e.client_addr) for e in api} == {("unknown", "csrf_missing", "10.0.0.61")}
    assert [e.resource for e in logged if e not in api] == ["POST /login"]  # another route: counted apart
    assert len(world.entries(before)) == len(logged)  # nothing else: no login was tried


def test_a_request_without_any_session_is_refused_without_an_entry(world: WebWorld) -> None:
    """Nothing to attribute and nothing tried: the refusal (401, or a page's 303 to the login) is not logged."""
    before = world.audit_size()
    with world.client() as client:
        assert client.get("/api/v1/applications").status_code == 401
        assert client.get("/home", headers={"Accept": "text/html"}).status_code == 303
        assert client.get("/api/v1/session/csrf").status_code == 200
        token = csrf(client)
        assert (
            client.post("/api/v1/applications", json={}, headers={"X-CSRF-Token": token}).status_code == 401
        )
    assert world.entries(before) == []
