"""The portal keeps one workspace per login session: a second request does not open it again; logout, an
ended session, a changed grant, idleness and a full pool close it (SessionWorkspaces)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from renkei.hub.access.authz import Actor
from renkei.hub.access.cards import CardSettings
from renkei.hub.access.passwords import Passwords
from renkei.hub.access.people import Role
from renkei.hub.access.sessions import SessionRecord, token_digest
from renkei.hub.access.terminals import TerminalCA
from renkei.hub.audit import AuditEntry
from renkei.hub.workspace.pool import SessionWorkspaces
from renkei.hub.workspace.workspace import Workspace
from renkei.web.app import create_app
from renkei.web.cookies import SESSION_COOKIE
from renkei.web.settings import WebSettings
from tests.integration.workspace_world import WorkspaceWorld, make_workspace_world
from tests.support import TEST_HASHING
from tests.web.support import Person, WebWorld, enroll

COUNT = {"sql": 'SELECT "住所_ward", count(*) AS n FROM juki GROUP BY ALL'}


@dataclass
class Pooled:
    data: WorkspaceWorld  # the hub with imported snapshots, and its grants
    web: WebWorld  # the portal over the same hub home

    @property
    def pool(self) -> SessionWorkspaces:
        return self.web.app.state.portal.workspaces  # type: ignore[no-any-return]

    def analyst(self) -> tuple[Person, httpx.Client, str]:
        """A signed-in analyst with juki granted in both periods: the person, a client, the session id."""
        person = self.web.person(Role.ANALYST)
        self.data.grant(person.user, "juki", self.data.periods)
        token, csrf = self.web.open_session(person)
        client = self.web.client()
        client.headers.update({"Cookie": f"{SESSION_COOKIE}={token}", "X-CSRF-Token": csrf})
        return person, client, str(self._session_id(client))

    def _session_id(self, client: httpx.Client) -> int:
        token = client.headers["Cookie"].split("=", 1)[1]
        with self.web.session() as session:
            found = session.scalar(
                select(SessionRecord.id).where(SessionRecord.token_sha256 == token_digest(token))
            )
        assert found is not None
        return found

    def opens(self, session_id: str) -> list[AuditEntry]:
        with self.web.session() as session:
            found = session.scalars(select(AuditEntry).where(AuditEntry.action == "workspace.open"))
            return [e for e in found if e.details.get("session_id") == session_id]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pooled]:
    data = make_workspace_world(tmp_path_factory.mktemp("pooled"))
    home = data.hub.home
    settings = WebSettings(
        passwords=Passwords(TEST_HASHING), card_settings=CardSettings(), clock=data.clock, max_workspaces=2
    )
    ca = TerminalCA.load_or_create(home, data.clock)
    app = create_app(home, settings)
    terminal, cert_pem = enroll(app.state.portal.hub.engine, ca, data.clock, "term-01", home)
    portal = Pooled(data, WebWorld(home, app, data.clock, ca, terminal, cert_pem, settings))
    yield portal
    portal.pool.close_all()


@pytest.fixture(autouse=True)
def empty_pool(portal: Pooled) -> Iterator[None]:
    yield
    portal.pool.close_all("test ended")


def query(client: httpx.Client) -> int:
    response = client.post("/api/v1/query", json=COUNT)
    assert response.status_code == 200, response.text
    return len(response.json()["rows"])


def kept(portal: Pooled, session_id: str) -> Workspace:
    workspace = portal.pool.kept(session_id)
    assert workspace is not None
    return workspace


def test_one_session_opens_one_workspace_for_its_requests_and_logout_closes_it(portal: Pooled) -> None:
    _, client, session_id = portal.analyst()
    with client:
        assert query(client) > 0
        workspace = kept(portal, session_id)
        assert query(client) > 0
        table = client.post(
            "/api/v1/tables",
            json={"dataset": "juki", "dimensions": [{"kind": "column", "column": "住所_ward"}]},
        )
        assert table.status_code == 200, table.text
        assert kept(portal, session_id) is workspace and len(portal.opens(session_id)) == 1
        assert client.post("/api/v1/session/logout").status_code == 204
    assert portal.pool.kept(session_id) is None
    assert workspace.closed_reason == "logged out"
    assert workspace.worker is not None and workspace.worker.process.poll() is not None


@pytest.mark.parametrize("closer", ["sweep", "request"])
def test_a_revoked_grant_closes_the_kept_workspace(portal: Pooled, closer: str) -> None:
    person, client, session_id = portal.analyst()
    kaigo = portal.data.grant(person.user, "kaigo", portal.data.periods)
    with client:
        query(client)
        first = kept(portal, session_id)
        portal.data.revoke(kaigo)
        if closer == "sweep":  # without waiting for a request of that session
            assert portal.pool.sweep() == 1 and first.closed and "grants changed" in first.closed_reason
        query(client)  # the next request: a workspace over what is still granted, never the old one
        second = kept(portal, session_id)
        assert first.closed and second is not first and {v.dataset for v in second.views()} == {"juki"}


def test_an_ended_login_session_closes_its_workspace(portal: Pooled) -> None:
    _, client, session_id = portal.analyst()
    with client:
        query(client)
        workspace = kept(portal, session_id)
        portal.data.clock.advance(minutes=31)  # past the session's idle timeout
        try:
            assert portal.pool.sweep() == 1
        finally:
            portal.data.clock.advance(minutes=-31)
    assert workspace.closed_reason == "the login session ended" and portal.pool.kept(session_id) is None


def test_an_idle_workspace_is_closed_while_its_session_lives_on(portal: Pooled) -> None:
    _, client, session_id = portal.analyst()
    with client:
        query(client)
        workspace = kept(portal, session_id)
        portal.data.clock.advance(minutes=10)
        assert client.get("/api/v1/session").status_code == 200  # the session is used, the workspace not
        portal.data.clock.advance(minutes=6)
        try:
            assert portal.pool.sweep() == 1
        finally:
            portal.data.clock.advance(minutes=-16)
        assert workspace.closed_reason.startswith("idle for")
        assert query(client) > 0 and kept(portal, session_id) is not workspace


def test_the_pool_is_bounded_the_least_recently_used_workspace_makes_room(portal: Pooled) -> None:
    clients = [portal.analyst() for _ in range(3)]
    for number, (_, client, _) in enumerate(clients):
        query(client)
        portal.data.clock.advance(seconds=1)
        assert len(portal.pool) == min(number + 1, 2)
    oldest = portal.opens(clients[0][2])
    assert len(oldest) == 1 and portal.pool.kept(clients[0][2]) is None
    for _, client, _ in clients:
        client.close()


def test_the_pool_refuses_when_every_workspace_is_in_use(portal: Pooled) -> None:
    holders = [portal.analyst() for _ in range(2)]
    leases = []
    try:
        for person, _, session_id in holders:
            actor = _actor(person, session_id)
            lease = portal.pool.lease(actor)
            lease.__enter__()
            leases.append(lease)
        _, client, _ = portal.analyst()
        with client:
            refused = client.post("/api/v1/query", json=COUNT)
        assert refused.status_code == 503 and "in use" in refused.json()["error"]["message_en"]
    finally:
        for lease in leases:
            lease.__exit__(None, None, None)
        for _, client, _ in holders:
            client.close()


def _actor(person: Person, session_id: str) -> Actor:
    return Actor(person.login_id, person.user.id, "term-01", "10.0.0.7", session_id)
