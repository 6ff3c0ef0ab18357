"""The whole flow over HTTP, on SQLite and PostgreSQL.

A designated analyst registers a staff card with the admin's ticket and logs in with it (software FIDO2
authenticator) and a password, from a registered terminal; applies; the owning department's steward logs in
with TOTP and approves; the analyst holds a grant, which a steward revokes (effective on the analyst's next
request) or which expires with the period of use (FakeClock).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx

from renkei.hub.access.authz import Actor, can_read_snapshot
from renkei.hub.access.people import Role
from renkei.hub.catalog import Snapshot
from tests.support.webauthn_authenticator import SoftwareAuthenticator
from tests.web.support import (
    ORIGIN,
    OWN,
    Person,
    WebWorld,
    csrf,
    login_with_card,
    login_with_totp,
)

MARCH_2025 = dt.date(2025, 3, 31)
MARCH_2026 = dt.date(2026, 3, 31)


def enroll_card(world: WebWorld, client: httpx.Client, person: Person) -> None:
    """The user, at the terminal, with the ticket the admin issued: options, then the card's answer."""
    ticket = world.card_ticket(person)
    start = client.post(
        "/api/v1/cards/enrollment",
        json={"login_id": person.login_id, "password": person.password, "ticket": ticket},
        headers={"X-CSRF-Token": csrf(client)},
    )
    assert start.status_code == 200, start.text
    person.card = SoftwareAuthenticator(origin=ORIGIN)
    registration = person.card.create(json.dumps(start.json()["options"]))
    finish = client.post(
        "/api/v1/cards/enrollment/finish",
        json={"response": registration},
        headers={"X-CSRF-Token": csrf(client)},
    )
    assert finish.status_code == 200, finish.text


def apply(world: WebWorld, client: httpx.Client, token: str, period: dt.date, days: int) -> dict[str, Any]:
    today = world.clock.now().date()
    body = {
        "datasets": [{"dataset": "juki", "periods": [period.isoformat()]}],
        "purpose": "子育て世帯の転出傾向の分析",
        "outputs": "区別・年齢階級別の集計表",
        "use_start": today.isoformat(),
        "use_end": (today + dt.timedelta(days=days)).isoformat(),
        "row_level": False,
    }
    created = client.post("/api/v1/applications", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "draft"
    application_id = created.json()["id"]
    submitted = client.post(f"/api/v1/applications/{application_id}/submit", headers={"X-CSRF-Token": token})
    assert submitted.status_code == 200, submitted.text
    result: dict[str, Any] = submitted.json()
    assert result["state"] == "submitted"
    return result


def approve_all(client: httpx.Client, token: str, application_id: int) -> None:
    queue = client.get("/api/v1/reviews")
    assert queue.status_code == 200
    parts = [item["part_id"] for item in queue.json() if item["application"]["id"] == application_id]
    assert len(parts) == 1
    approved = client.post(
        f"/api/v1/parts/{parts[0]}/approve",
        json={"comment": "目的に照らし必要な範囲"},
        headers={"X-CSRF-Token": token},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"


def may_query(world: WebWorld, person: Person, period: dt.date) -> bool:
    """What the workspace will ask authorize() before a query on the snapshot."""
    with world.session() as session:
        snapshot = session.get_one(Snapshot, world.snapshot_id("juki", period))
        return can_read_snapshot(
            session,
            world.app.state.portal.hub.audit,
            Actor.for_user(person.user),
            snapshot,
            clock=world.clock,
        )


def grant_for(client: httpx.Client, application_id: int) -> dict[str, Any]:
    grants = client.get("/api/v1/grants")
    assert grants.status_code == 200, grants.text
    found: list[dict[str, Any]] = [g for g in grants.json() if g["application_id"] == application_id]
    assert len(found) == 1
    return found[0]


def test_apply_approve_revoke_and_expire(db_world: WebWorld) -> None:
    world = db_world
    analyst = world.person(Role.ANALYST, factor="card")
    steward = world.person(Role.STEWARD, OWN)
    with world.client() as analyst_client, world.client(address="10.0.0.8") as steward_client:
        enroll_card(world, analyst_client, analyst)
        analyst_token = login_with_card(analyst_client, analyst)
        me = analyst_client.get("/api/v1/session").json()
        assert (me["login_id"], me["role"], me["terminal"]) == (analyst.login_id, "analyst", "term-01")

        first = apply(world, analyst_client, analyst_token, MARCH_2026, days=30)
        steward_token = login_with_totp(world, steward_client, steward)
        approve_all(steward_client, steward_token, first["id"])

        grant = grant_for(analyst_client, first["id"])
        assert (grant["status"], grant["snapshots"]) == ("active", ["2026-03-31 v1"])
        assert may_query(world, analyst, MARCH_2026)
        assert not may_query(world, analyst, MARCH_2025)  # only what was applied for

        # The steward revokes; the analyst's very next request sees it, in the same session.
        acl = steward_client.get("/api/v1/datasets/juki/acl").json()
        assert [r["grant_id"] for r in acl["readers"]] == [grant["id"]]
        revoked = steward_client.post(
            f"/api/v1/grants/{grant['id']}/revoke",
            json={"reason": "目的外利用の疑い"},
            headers={"X-CSRF-Token": steward_token},
        )
        assert revoked.status_code == 200, revoked.text
        assert analyst_client.get(f"/api/v1/grants/{grant['id']}").json()["status"] == "revoked"
        assert not may_query(world, analyst, MARCH_2026)

        # A second grant runs out with its period of use.
        second = apply(world, analyst_client, analyst_token, MARCH_2025, days=10)
        approve_all(steward_client, steward_token, second["id"])
        assert grant_for(analyst_client, second["id"])["status"] == "active"
        assert may_query(world, analyst, MARCH_2025)
        world.clock.advance(days=11)
        assert not may_query(world, analyst, MARCH_2025)
        assert analyst_client.get("/api/v1/grants").status_code == 401  # 11 days idle: logged out
        login_with_card(analyst_client, analyst)
        assert grant_for(analyst_client, second["id"])["status"] == "expired"
        assert analyst_client.get(f"/api/v1/applications/{second['id']}").json()["state"] == "expired"

    actions = [(e.actor, e.action, e.result) for e in world.entries()]
    for expected in [
        (analyst.login_id, "card.register", "ok"),
        (analyst.login_id, "login.card", "ok"),
        (steward.login_id, "login.totp", "ok"),
        (analyst.login_id, "application.submit", "ok"),
        (steward.login_id, "application.approve", "ok"),
        (steward.login_id, "grant.revoke", "ok"),
    ]:
        assert expected in actions, expected
    decisions = [e for e in world.entries() if e.action == "authz.decision"]
    assert {e.details["access"] for e in decisions} >= {
        "application.create",
        "application.approve",
        "grant.revoke",
    }
    assert all(e.client_addr in ("10.0.0.7", "10.0.0.8", "") for e in decisions)
