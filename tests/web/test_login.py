"""Login, sessions, cookies and CSRF over HTTP (ASVS v5.0.0-6.3.8, 7.2.4, 7.4.1, 3.3, 3.5)."""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.routing import APIRoute

from renkei.hub.access import totp
from renkei.hub.access.people import Role
from renkei.hub.access.terminals import revoke_terminal
from renkei.web.app import route_table
from renkei.web.context import public
from renkei.web.cookies import CSRF_COOKIE, PENDING_COOKIE, SESSION_COOKIE
from tests.web.support import PASSWORD, WebWorld, csrf, enroll, login_with_totp


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    parsed = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            parsed[name] = cookie
    return parsed


def attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def without_request_id(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.json()["error"].items() if k != "request_id"}


def step1(client: httpx.Client, login_id: str, password: str) -> httpx.Response:
    return client.post(
        "/api/v1/session/login",
        json={"login_id": login_id, "password": password},
        headers={"X-CSRF-Token": csrf(client)},
    )


def foreign_certificate(name: str = "term-01") -> str:
    """A client certificate with the registered terminal's name, self-signed (not from the hub's CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# --- no enumeration ---------------------------------------------------------------------------------------


def test_unknown_user_and_wrong_password_get_the_same_answer(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        unknown = step1(client, "nobody-here", PASSWORD)
        wrong = step1(client, person.login_id, "a wrong but long password")
    assert unknown.status_code == wrong.status_code == 401
    assert without_request_id(unknown) == without_request_id(wrong)
    assert unknown.json()["error"]["code"] == "login_failed"
    assert set(unknown.headers) == set(wrong.headers)


def test_repeated_failures_are_throttled_with_retry_after(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client(address="10.0.0.66") as client:
        answers = [step1(client, person.login_id, f"wrong password number {n}") for n in range(6)]
        throttled = step1(client, person.login_id, person.password)  # even the right one waits
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "login_throttled"
    assert int(throttled.headers["retry-after"]) > 0


# --- terminals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("certificate", ["none", "foreign", "garbage"])
def test_a_login_from_an_unregistered_terminal_is_refused_and_logged(
    world: WebWorld, certificate: str
) -> None:
    person = world.person(Role.ANALYST)
    pem = {"none": None, "foreign": foreign_certificate(), "garbage": "-----BEGIN CERTIFICATE-----\nAAAA"}
    before = world.audit_size()
    with world.client(pem[certificate]) as client:
        assert client.get("/api/v1/session/csrf").json()["terminal_registered"] is False
        refused = step1(client, person.login_id, person.password)
        page = client.get("/login", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "terminal_not_registered"
    assert "この端末は登録されていません" in page.text
    logged = [e for e in world.entries(before) if e.action == "login.password"]
    assert [(e.result, e.reason, e.client_addr) for e in logged] == [
        ("denied", "unregistered_terminal", "10.0.0.7")
    ]


def test_a_session_is_refused_from_another_terminal_and_after_revocation(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    other, other_pem = enroll(world.engine, world.ca, world.clock, "term-other", world.home)
    with world.client() as client, world.client(other_pem) as elsewhere:
        login_with_totp(world, client, person)
        token = client.cookies[SESSION_COOKIE]
        elsewhere.headers["Cookie"] = f"{SESSION_COOKIE}={token}"
        assert elsewhere.get("/api/v1/session").status_code == 401  # and the session is destroyed
        assert client.get("/api/v1/session").status_code == 401
        login_with_totp(world, client, person)
        with world.session() as session:
            revoke_terminal(session, "term-01", revoked_by="test", clock=world.clock)
            session.commit()
        assert client.get("/api/v1/session").status_code == 401
    reasons = [e.reason for e in world.entries() if e.action == "session.rejected"]
    assert "terminal_mismatch" in reasons and "terminal_revoked" in reasons
    world.terminal, world.cert_pem = enroll(world.engine, world.ca, world.clock, "term-01b", world.home)
    assert other.name == "term-other"


# --- sessions and cookies ---------------------------------------------------------------------------------


def test_cookies_are_host_prefixed_secure_httponly_strict_and_rotated_at_login(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        first = client.get("/api/v1/session/csrf")
        assert attributes(first.headers["set-cookie"]) >= {"secure", "httponly", "samesite", "path"}
        pending = step1(client, person.login_id, person.password)
        world.clock.advance(seconds=30)
        code = totp.current_code(person.totp_secret, world.clock.now())
        finished = client.post(
            "/api/v1/session/totp", json={"code": code}, headers={"X-CSRF-Token": csrf(client)}
        )
        assert finished.status_code == 200
        for response, name in ((first, CSRF_COOKIE), (pending, PENDING_COOKIE), (finished, SESSION_COOKIE)):
            header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))
            assert name.startswith("__Host-")
            assert "secure" in attributes(header) and "httponly" in attributes(header)
            assert "samesite=strict" in header.lower().replace(" ", "")
            assert "path=/" in header.lower() and "domain" not in attributes(header)
        session_header = next(
            h for h in finished.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        )
        assert "max-age" not in attributes(session_header)  # the server enforces timeouts, not the browser
        old = client.cookies[SESSION_COOKIE]
        assert person.login_id not in session_header and PASSWORD not in session_header
        login_with_totp(world, client, person)  # logging in again rotates the token
        assert client.cookies[SESSION_COOKIE] != old
    with world.client() as replay:
        replay.headers["Cookie"] = f"{SESSION_COOKIE}={old}"
        assert replay.get("/api/v1/session").status_code == 401


def test_logout_ends_the_session_on_the_server(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        token = login_with_totp(world, client, person)
        cookie = client.cookies[SESSION_COOKIE]
        assert client.post("/api/v1/session/logout", headers={"X-CSRF-Token": token}).status_code == 204
        assert client.cookies.get(SESSION_COOKIE) is None
    with world.client() as replay:
        replay.headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        assert replay.get("/api/v1/session").status_code == 401
    assert (person.login_id, "logout", "ok") in [(e.actor, e.action, e.result) for e in world.entries()]


def test_idle_and_absolute_timeouts(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        login_with_totp(world, client, person)
        logged_in_at = world.clock.now()
        while client.get("/api/v1/session").status_code == 200:  # active every 29 minutes: never idle
            world.clock.advance(minutes=29)
        elapsed = world.clock.now() - logged_in_at
        assert dt.timedelta(hours=12) <= elapsed < dt.timedelta(hours=12, minutes=29)
        login_with_totp(world, client, person)
        world.clock.advance(minutes=31)
        assert client.get("/api/v1/session").status_code == 401


def test_a_disabled_users_session_ends_on_the_next_request(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        login_with_totp(world, client, person)
        assert client.get("/api/v1/datasets").status_code == 200
        world.set_disabled(person)
        assert client.get("/api/v1/datasets").status_code == 401


def test_a_password_set_by_the_admin_must_be_changed_before_anything_else(world: WebWorld) -> None:
    person = world.person(Role.ANALYST, must_change=True)
    with world.client() as client:
        token = login_with_totp(world, client, person)
        refused = client.get("/api/v1/datasets")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "password_change_required")
        assert client.get("/api/v1/session").json()["password_change_required"] is True
        weak = client.post(
            "/api/v1/session/password",
            json={"current_password": PASSWORD, "new_password": "password"},
            headers={"X-CSRF-Token": token},
        )
        assert (weak.status_code, weak.json()["error"]["code"]) == (422, "weak_password")
        changed = client.post(
            "/api/v1/session/password",
            json={"current_password": PASSWORD, "new_password": "港の見える丘で朝の珈琲を二杯"},
            headers={"X-CSRF-Token": token},
        )
        assert changed.status_code == 200, changed.text
        assert client.get("/api/v1/datasets").status_code == 200


# --- CSRF -------------------------------------------------------------------------------------------------


def unsafe_routes(world: WebWorld) -> list[tuple[str, str, bool]]:
    """(method, path, public) of every route that may change something."""
    return [
        (
            method,
            path,
            isinstance(route, APIRoute) and public in {d.call for d in route.dependant.dependencies},
        )
        for method, path, route in route_table(world.app)
        if method not in ("GET", "HEAD")
    ]


def concrete(path: str) -> str:
    return path.replace("{application_id}", "1").replace("{part_id}", "1").replace("{grant_id}", "1")


@pytest.mark.parametrize("token", ["missing", "wrong", "cross-site"])
def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(
    world: WebWorld, token: str
) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as signed_in, world.client() as anonymous:
        good = login_with_totp(world, signed_in, person)
        pre_login = csrf(anonymous)
        headers = {
            "missing": {},
            "wrong": {
                "X-CSRF-Token": ("y" if good.startswith("x") else "x") + good[1:]
            },  # never the good one
            "cross-site": {"X-CSRF-Token": good, "Sec-Fetch-Site": "cross-site"},
        }[token]
        pre_login_headers = {**headers, "X-CSRF-Token": pre_login} if token == "cross-site" else headers
        before = world.audit_size()
        routes = unsafe_routes(world)
        for method, path, is_public in routes:
            callers = [(signed_in, headers)] + ([(anonymous, pre_login_headers)] if is_public else [])
            for client, sent in callers:
                response = client.request(method, concrete(path), headers=sent, data={"csrf_token": ""})
                assert response.status_code == 403, (method, path, response.text)
                assert response.json()["error"]["code"] == "csrf_rejected", (method, path)
        refusals = [e for e in world.entries(before) if e.action == "web.csrf"]
        assert len(refusals) == len(routes) + sum(is_public for _, _, is_public in routes)
        assert {e.actor for e in refusals} == {person.login_id, "unknown"}
        # Nothing happened: no application was made, no session ended.
        assert signed_in.get("/api/v1/applications").json() == []
        assert signed_in.get("/api/v1/session").status_code == 200


def test_the_form_field_carries_the_token_for_pages(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        token = login_with_totp(world, client, person)
        assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/api/v1/session").status_code == 401
