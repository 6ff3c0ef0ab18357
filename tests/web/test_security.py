"""Headers on every response, one error shape for every error, limits, and what is not public."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import sys
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from renkei.hub.access.applications import Application, ApplicationPart
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role
from renkei.web import portal
from renkei.web.app import route_table
from renkei.web.security import CONTENT_SECURITY_POLICY
from tests.web.support import WebWorld, csrf, login_with_totp

ERROR_KEYS = {"code", "message_ja", "message_en", "request_id"}
LEAKS = ("Traceback", 'File "', "sqlalchemy", "SELECT", "/etc/", ".py", "RuntimeError")


@pytest.fixture
def signed_in(world: WebWorld) -> Iterator[tuple[httpx.Client, str]]:
    with world.client() as client:
        token = login_with_totp(world, client, world.person(Role.ANALYST))
        yield client, token


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in headers["content-security-policy"]
    max_age = int(re.search(r"max-age=(\d+)", headers["strict-transport-security"]).group(1))  # type: ignore[union-attr]
    assert max_age >= 365 * 24 * 3600
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert re.fullmatch(r"[0-9a-f]{16}", headers["x-request-id"])
    path = response.request.url.path
    assert headers["cache-control"] == ("no-cache" if path.startswith("/static/") else "no-store")


def assert_canonical_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert body["error"]["message_ja"] and body["error"]["message_en"]
    if code is not None:
        assert body["error"]["code"] == code
    for leak in LEAKS:
        assert leak not in response.text


def concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "1", path).replace("/static/1", "/static/renkei.css")


def test_every_route_answers_with_the_security_headers(
    world: WebWorld, signed_in: tuple[httpx.Client, str]
) -> None:
    client, token = signed_in
    with world.client() as anonymous:
        for method, path, _ in route_table(world.app):
            if path.endswith("/logout"):
                continue  # would end the session the loop uses; covered by the anonymous client
            for caller, sent in ((client, token), (anonymous, csrf(anonymous))):
                response = caller.request(method, concrete(path), headers={"X-CSRF-Token": sent})
                assert_security_headers(response)
        anonymous_logout = anonymous.post("/logout", headers={"X-CSRF-Token": csrf(anonymous)})
        assert_security_headers(anonymous_logout)


PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def test_options_and_405_name_every_method_the_path_takes(world: WebWorld) -> None:
    """Issue 9, item 10: ``Allow`` lists exactly the methods that do not answer 405, plus OPTIONS."""
    paths = sorted({concrete(path) for _, path, _ in route_table(world.app)})
    with world.client() as anonymous:  # anonymous: a probe never changes anything
        token = csrf(anonymous)
        for path in paths:
            answers = {m: anonymous.request(m, path, headers={"X-CSRF-Token": token}) for m in PROBED_METHODS}
            taken = {m for m, response in answers.items() if response.status_code != 405}
            expected = ", ".join(sorted(taken | {"OPTIONS"}))
            options = anonymous.options(path)
            assert (options.status_code, options.headers.get("allow")) == (204, expected), path
            assert_security_headers(options)
            for method in set(PROBED_METHODS) - taken:
                assert answers[method].headers["allow"] == expected, (method, path)
                if method != "HEAD":  # a HEAD answer has no body
                    assert_canonical_error(answers[method], 405, "method_not_allowed")
        assert anonymous.options("/api/v1/nothing-here").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
        ("GET", "/static/nothing.js", 404, "not_found"),
        ("GET", "/api/v1/applications/999999", 404, "not_found"),
        ("GET", "/api/v1/datasets/no_such_dataset", 404, "not_found"),
        ("DELETE", "/api/v1/datasets", 405, "method_not_allowed"),
        ("POST", "/static/renkei.css", 405, "method_not_allowed"),
        ("GET", "/api/v1/applications/not-a-number", 422, "invalid_request"),
        ("GET", "/api/v1/grants/99999999999999999999", 422, "invalid_request"),
        ("POST", "/api/v1/applications", 422, "invalid_request"),
    ],
)
def test_one_error_shape(
    signed_in: tuple[httpx.Client, str], method: str, path: str, status: int, code: str
) -> None:
    client, token = signed_in
    response = client.request(method, path, headers={"X-CSRF-Token": token}, json={"unexpected": "x"})
    assert_canonical_error(response, status, code)
    assert_security_headers(response)


def test_invalid_input_is_described_but_never_echoed(world: WebWorld) -> None:
    with world.client() as client:
        response = client.post(
            "/api/v1/session/login",
            json={"login_id": "someone", "password": "CANARY-SECRET-PASSWORD", "role": "admin"},
            headers={"X-CSRF-Token": csrf(client)},
        )
    assert_canonical_error(response, 422, "invalid_request")
    assert "body.role" in response.json()["error"]["message_en"]
    assert "CANARY-SECRET-PASSWORD" not in response.text


def test_an_internal_error_is_a_generic_500_logged_with_its_request_id(
    world: WebWorld,
    signed_in: tuple[httpx.Client, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("SELECT secret FROM keys -- /etc/renkei/kek.key")

    monkeypatch.setattr(portal, "list_datasets", broken)
    monkeypatch.setattr(portal, "my_applications", broken)
    client, _ = signed_in
    with caplog.at_level(logging.ERROR, logger="renkei.web"):
        api = client.get("/api/v1/datasets")
        page = client.get("/applications", headers={"Accept": "text/html"})
    assert_canonical_error(api, 500, "internal_error")
    assert_security_headers(api)
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-request-id"] in page.text
    for leak in LEAKS:
        assert leak not in page.text
    assert_security_headers(page)
    logged = [r for r in caplog.records if api.headers["x-request-id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log, not the response


def test_bodies_over_the_limit_are_refused(world: WebWorld) -> None:
    with world.client() as client:
        token = csrf(client)
        big = b"x" * (world.settings.max_body_bytes + 1)
        declared = client.post("/api/v1/session/login", content=big, headers={"X-CSRF-Token": token})
        assert_canonical_error(declared, 413, "payload_too_large")

        def chunks() -> Iterator[bytes]:
            for _ in range(world.settings.max_body_bytes // 4096 + 2):
                yield b"x" * 4096

        chunked = client.post(
            "/api/v1/session/login",
            content=chunks(),
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        assert_canonical_error(chunked, 413, "payload_too_large")


def test_the_api_description_is_for_signed_in_users_only(
    world: WebWorld, signed_in: tuple[httpx.Client, str]
) -> None:
    client, _ = signed_in
    described = client.get("/api/v1/openapi.json")
    assert described.status_code == 200
    assert "/api/v1/applications" in described.json()["paths"]
    error_schema = described.json()["paths"]["/api/v1/applications"]["post"]["responses"]["422"]
    assert error_schema["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    with world.client() as anonymous:
        assert_canonical_error(anonymous.get("/api/v1/openapi.json"), 401, "unauthenticated")
        for public_docs in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            assert anonymous.get(public_docs).status_code == 404


BLANKS = ["", " ", "\u3000", " \t\n\r\u3000\u00a0\u2028\x1c"]
NOT_BLANKS = ["x", " 理由 ", "\u200b", "\ufeff", "\u3000。"]  # zero-width and BOM: strip() keeps them


def test_the_schema_refuses_blank_reasons_exactly_as_the_hub_does(
    signed_in: tuple[httpx.Client, str],
) -> None:
    """Issue 9, item 10: a reason or comment the hub refuses once stripped is refused by the schema too."""
    client, token = signed_in
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    every_space = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    samples = [*BLANKS, *NOT_BLANKS, every_space, every_space + "x"]
    for model, field in (("ReasonIn", "reason"), ("RequiredCommentIn", "comment")):
        assert field in schemas[model]["required"], (model, field)
        pattern = re.compile(schemas[model]["properties"][field]["pattern"])
        for text in samples:  # the hub's rule: refused when nothing is left after str.strip()
            assert (pattern.search(text) is not None) == bool(text.strip()), (model, field, text)
    paths = {
        "reason": ("/api/v1/grants/1/revoke", "/api/v1/parts/1/revoke"),
        "comment": ("/api/v1/parts/1/reject",),
    }
    for field, targets in paths.items():
        for path, blank in itertools.product(targets, BLANKS):
            refused = client.post(path, json={field: blank}, headers={"X-CSRF-Token": token})
            assert_canonical_error(refused, 422, "invalid_request")
            assert f"body.{field}" in refused.json()["error"]["message_en"], (path, blank)


def test_pages_are_japanese_first_with_english_on_request(world: WebWorld) -> None:
    with world.client() as client:
        assert "ログイン" in client.get("/login").text
        english = client.get("/login?lang=en")
        assert "Log in" in english.text and '<html lang="en">' in english.text
        assert "Log in" in client.get("/login").text  # remembered
        assert "ログイン" in client.get("/login?lang=ja").text
    with world.client() as browser:
        assert "Log in" in browser.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text


def test_pages_use_only_vendored_assets(world: WebWorld, signed_in: tuple[httpx.Client, str]) -> None:
    client, _ = signed_in
    pages = [
        client.get(p).text
        for p in ("/home", "/datasets", "/applications", "/applications/new", "/grants", "/reviews", "/login")
    ]
    for html in pages:
        for reference in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert reference.startswith(("/", "?", "#")), reference
        assert "<script>" not in html and "style=" not in html and " on" not in re.sub(r">[^<]*<", "><", html)
    for asset in (
        "/static/renkei.css",
        "/static/webauthn.js",
        "/static/vendor/htmx/htmx.min.js",
        "/favicon.ico",
    ):
        assert client.get(asset).status_code == 200


def test_the_catalog_shows_metadata_only(signed_in: tuple[httpx.Client, str]) -> None:
    client, _ = signed_in
    detail = client.get("/api/v1/datasets/juki").json()
    assert set(detail) == {"name", "title", "description", "owner", "snapshots", "columns"}
    assert {tuple(sorted(s)) for s in detail["snapshots"]} == {
        ("imported_at", "link", "period", "risk", "version")
    }
    treatments = {c["source"]: c["treatment"] for c in detail["columns"]}
    assert treatments["個人番号"] == "deleted" and treatments["宛名番号"].endswith("→ pid")
    for hidden in ("spec_hash", "content_sha256", "package_id", "rows", "bytes"):
        assert hidden not in client.get("/api/v1/datasets/juki").text


def test_snapshot_times_carry_their_time_zone(signed_in: tuple[httpx.Client, str]) -> None:
    """Issue 9, item 10: the schema says date-time (RFC 3339), which has an offset; SQLite stores none."""
    client, _ = signed_in
    snapshots = client.get("/api/v1/datasets/juki").json()["snapshots"]
    assert snapshots
    for snapshot in snapshots:
        assert dt.datetime.fromisoformat(snapshot["imported_at"]).utcoffset() == dt.timedelta(0)
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["SnapshotView"]
    assert schema["properties"]["imported_at"]["format"] == "date-time"


def workflow_state(world: WebWorld) -> list[tuple[object, ...]]:
    """Everything a GET could wrongly change: applications, their parts, grants."""
    with world.session() as session:
        rows: list[tuple[object, ...]] = []
        for statement in (
            select(Application.id, Application.state, Application.updated_at),
            select(ApplicationPart.id, ApplicationPart.state, ApplicationPart.comment),
            select(Grant.id, Grant.revoked_at),
        ):
            rows += [tuple(row) for row in session.execute(statement)]
        return rows


def test_get_never_changes_anything(world: WebWorld) -> None:
    analyst, steward = world.person(Role.ANALYST), world.person(Role.STEWARD)
    with world.client() as analyst_client, world.client() as steward_client:
        token = login_with_totp(world, analyst_client, analyst)
        body = {
            "datasets": [{"dataset": "juki", "periods": ["2026-03-31"]}],
            "purpose": "目的",
            "outputs": "集計表",
            "use_start": "2026-04-01",
            "use_end": "2026-05-31",
        }
        created = analyst_client.post(
            "/api/v1/applications", json=body, headers={"X-CSRF-Token": token}
        ).json()
        analyst_client.post(f"/api/v1/applications/{created['id']}/submit", headers={"X-CSRF-Token": token})
        login_with_totp(world, steward_client, steward)
        before = workflow_state(world)
        gets = [path for method, path, _ in route_table(world.app) if method == "GET"]
        for client in (analyst_client, steward_client):
            for path in gets:
                concrete_path = path.replace("{application_id}", str(created["id"])).replace("{name}", "juki")
                client.get(concrete(concrete_path.replace("{part_id}", str(created["parts"][0]["id"]))))
        assert workflow_state(world) == before
