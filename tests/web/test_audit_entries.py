"""Issue 9, item 8: the audit entries an investigator needs, over HTTP against the real audit log.

- a refused session is logged under the session's own user (not ``unknown``), with where it was opened;
- a revoked terminal is named in the entries of what it still tried;
- an unknown or replayed session token is logged, but only at its 1st, 2nd, 4th … occurrence per source and
  window (each entry says how many so far), so that nobody can flood the log;
- one list request is one ``authz.decision`` entry naming every object it covered.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.hub.access.applications import Application, ApplicationState, PartState
from renkei.hub.access.people import Role
from renkei.hub.access.repeats import WINDOW
from renkei.hub.access.terminals import revoke_terminal
from renkei.web.cookies import SESSION_COOKIE
from tests.web.support import OTHER, OWN, WebWorld, csrf, enroll, login_with_totp
from tests.web.test_route_matrix import make_application, make_grant


def test_a_refused_session_is_logged_under_its_own_user(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    _, other_pem = enroll(world.engine, world.ca, world.clock, "term-02", world.home)
    with world.client() as client, world.client(other_pem) as elsewhere:
        start = world.audit_size()
        login_with_totp(world, client, person)
        opened = next(e for e in world.entries(start) if e.action == "login.totp")
        before = world.audit_size()
        elsewhere.headers["Cookie"] = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
        assert elsewhere.get("/api/v1/session").status_code == 401
        login_with_totp(world, client, person)
        world.set_disabled(person)
        assert client.get("/api/v1/session").status_code == 401
    # (the client still sends the destroyed session's cookie, logged as unknown tokens: not these)
    rejected = [e for e in world.entries(before) if e.action == "session.rejected" and e.reason != "unknown"]
    login = person.login_id
    assert [(e.actor, e.resource, e.reason, e.terminal, e.details["session_terminal"]) for e in rejected] == [
        (login, f"user/{login}", "terminal_mismatch", "term-02", "term-01"),  # presented at term-02
        (login, f"user/{login}", "user_disabled", "term-01", "term-01"),
    ]
    assert rejected[0].details["session_id"] == opened.details["session_id"]


def test_a_revoked_terminal_is_named_in_what_it_still_tried(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    _, pem = enroll(world.engine, world.ca, world.clock, "term-03", world.home)
    with world.client(pem) as client:
        login_with_totp(world, client, person)
        with Session(world.engine) as session:
            revoke_terminal(session, "term-03", revoked_by="test", clock=world.clock)
            session.commit()
        before = world.audit_size()
        assert client.get("/api/v1/session").status_code == 401
        refused = client.post(
            "/api/v1/session/login",
            json={"login_id": person.login_id, "password": person.password},
            headers={"X-CSRF-Token": csrf(client)},
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "terminal_not_registered"
    assert [(e.action, e.actor, e.reason, e.terminal) for e in world.entries(before)] == [
        ("session.rejected", person.login_id, "terminal_revoked", "term-03"),
        ("login.password", "unknown", "terminal_revoked", "term-03"),
    ]


def test_unknown_and_replayed_tokens_are_logged_without_flooding_the_log(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    before = world.audit_size()
    with world.client(address="10.0.0.50") as guesser:
        for _ in range(100):
            guesser.headers["Cookie"] = f"{SESSION_COOKIE}={secrets.token_urlsafe(32)}"
            assert guesser.get("/api/v1/session").status_code == 401
        world.clock.advance(seconds=WINDOW.total_seconds())  # a new window: logged afresh
        assert guesser.get("/api/v1/session").status_code == 401
    with world.client(address="10.0.0.52") as client:
        login_with_totp(world, client, person)
        ended = client.cookies[SESSION_COOKIE]
        assert (
            client.post("/api/v1/session/logout", headers={"X-CSRF-Token": csrf(client)}).status_code == 204
        )
    with world.client(address="10.0.0.52") as replay:
        replay.headers["Cookie"] = f"{SESSION_COOKIE}={ended}"
        assert replay.get("/api/v1/session").status_code == 401
    rejected = [e for e in world.entries(before) if e.action == "session.rejected"]
    assert [(e.client_addr, e.details["occurrence"]) for e in rejected] == [
        *(("10.0.0.50", n) for n in (1, 2, 4, 8, 16, 32, 64)),  # 100 requests, 7 entries: "at least 64"
        ("10.0.0.50", 1),
        ("10.0.0.52", 1),  # the token of a session that ended
    ]
    assert {(e.actor, e.reason, e.terminal, e.result) for e in rejected} == {
        ("unknown", "unknown", "term-01", "denied")
    }
    assert rejected[0].details["window_seconds"] == WINDOW.total_seconds()


def test_one_list_request_is_one_decision_naming_what_it_covered(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    steward = world.person(Role.STEWARD, OWN)
    mine = [
        make_application(world, analyst, OWN, ApplicationState.SUBMITTED, PartState.PENDING) for _ in range(3)
    ]
    grants = [make_grant(world, analyst, department) for department in (OWN, OTHER)]  # two more applications
    with world.session() as session:
        applications = session.scalars(
            select(Application.id)
            .where(Application.applicant_id == analyst.user.id)
            .order_by(Application.id.desc())
        ).all()
    assert len(applications) == 5
    lists = {
        analyst.login_id: [
            ("/api/v1/applications", [f"application/{a}" for a in applications], "application.read"),
            ("/api/v1/grants", [f"grant/{g}" for g in reversed(grants)], "grant.read"),
        ],
        steward.login_id: [
            ("/api/v1/reviews", [f"application_part/{p}" for _, p in mine], "application.approve"),
        ],
    }
    for person in (analyst, steward):
        with world.client() as client:
            login_with_totp(world, client, person)
            for path, covered, action in lists[person.login_id]:
                before = world.audit_size()
                answer = client.get(path)
                assert answer.status_code == 200 and len(answer.json()) == len(covered), answer.text
                decisions = [e for e in world.entries(before) if e.action == "authz.decision"]
                assert len(decisions) == 1, [e.resource for e in decisions]
                assert decisions[0].details["resources"] == covered
                assert (decisions[0].details["access"], decisions[0].result) == (action, "allowed")
                assert decisions[0].actor == person.login_id
    with world.client() as client:  # the steward's grants page: the department's folders, one entry
        login_with_totp(world, client, steward)
        before = world.audit_size()
        assert client.get("/grants", headers={"Accept": "text/html"}).status_code == 200
    decisions = [e for e in world.entries(before) if e.action == "authz.decision"]
    assert [(e.details["access"], e.details["resources"]) for e in decisions] == [
        ("folder.read_acl", ["dataset/juki"])
    ]
