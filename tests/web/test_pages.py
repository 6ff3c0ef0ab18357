"""The HTML pages, as a browser uses them: forms with CSRF fields, redirects after posts, escaped user text."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import httpx

from renkei.clock import JST
from renkei.hub.access import totp
from renkei.hub.access.people import Role
from tests.support.webauthn_authenticator import SoftwareAuthenticator
from tests.web.support import ORIGIN, OWN, Person, WebWorld

XSS = "<script>alert('x')</script>"


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def ceremony_options(page: httpx.Response) -> str:
    found = re.search(r'data-options="([^"]+)"', page.text)
    assert found, page.text[:2000]
    return html.unescape(found.group(1))


def page_login(world: WebWorld, client: httpx.Client, person: Person) -> httpx.Response:
    """ID and password on the login page, then the code on the TOTP page; returns the final redirect."""
    world.clock.advance(seconds=30)
    form = client.get("/login")
    second = client.post(
        "/login",
        data={"login_id": person.login_id, "password": person.password, "csrf_token": form_token(form)},
    )
    assert second.status_code == 200 and 'action="/login/totp"' in second.text, second.text[:2000]
    code = totp.current_code(person.totp_secret, world.clock.now())
    return client.post("/login/totp", data={"code": code, "csrf_token": form_token(second)})


def test_login_pages_with_totp_then_card_enrollment_and_card(world: WebWorld) -> None:
    person = world.person(Role.ANALYST)
    with world.client() as client:
        wrong = client.post(
            "/login",
            data={
                "login_id": person.login_id,
                "password": "wrong password",
                "csrf_token": form_token(client.get("/login")),
            },
        )
        assert wrong.status_code == 401 and "利用者IDまたはパスワードが正しくありません" in wrong.text
        assert f'value="{person.login_id}"' in wrong.text  # the id is kept, the password is not
        done = page_login(world, client, person)
        assert (done.status_code, done.headers["location"]) == (303, "/home")
        assert person.login_id in client.get("/applications").text

        enroll = client.get("/cards/enroll")
        ceremony = client.post(
            "/cards/enroll",
            data={
                "login_id": person.login_id,
                "password": person.password,
                "ticket": world.card_ticket(person),
                "csrf_token": form_token(enroll),
            },
        )
        assert ceremony.status_code == 200 and 'data-webauthn="create"' in ceremony.text
        card = SoftwareAuthenticator(origin=ORIGIN)
        registration = json.dumps(card.create(ceremony_options(ceremony)))
        finished = client.post(
            "/cards/enroll/finish", data={"registration": registration, "csrf_token": form_token(ceremony)}
        )
        assert finished.status_code == 200 and "職員証を登録しました" in finished.text

        form = client.get("/login")
        card_page = client.post(
            "/login",
            data={"login_id": person.login_id, "password": person.password, "csrf_token": form_token(form)},
        )
        assert (
            'data-webauthn="get"' in card_page.text and '<script src="/static/webauthn.js">' in card_page.text
        )
        assertion = json.dumps(card.get(ceremony_options(card_page)))
        signed_in = client.post(
            "/login/card", data={"assertion": assertion, "csrf_token": form_token(card_page)}
        )
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/home")


def test_apply_review_and_revoke_through_the_pages(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    steward = world.person(Role.STEWARD, OWN)
    with world.client() as analyst_client, world.client(address="10.0.0.8") as steward_client:
        page_login(world, analyst_client, analyst)
        new = analyst_client.get("/applications/new")
        assert 'value="juki:2026-03-31"' in new.text and "申請日までの全期間" in new.text
        values = {
            "period": "juki:2026-03-31",
            "purpose": f"転出傾向の分析 {XSS}",
            "outputs": "集計表",
            "use_start": "2026-04-01",
            "use_end": "2026-06-30",
            "row_level": "on",
            "action": "submit",
            "csrf_token": form_token(new),
        }
        incomplete = analyst_client.post("/applications", data={**values, "outputs": ""})
        assert incomplete.status_code == 422 and "想定する成果物を記入してください" in incomplete.text
        assert "転出傾向の分析" in incomplete.text  # what was typed is kept, and what was ticked
        assert re.search(r'value="juki:2026-03-31"\s+checked', incomplete.text)
        created = analyst_client.post("/applications", data=values)
        assert created.status_code == 303, created.text[:2000]
        shown = analyst_client.get(created.headers["location"])
        assert "申請中" in shown.text and "&lt;script&gt;" in shown.text and XSS not in shown.text
        assert 'action="/applications/' in shown.text  # withdraw is offered to the applicant

        page_login(world, steward_client, steward)
        queue = steward_client.get("/reviews")
        part_id = re.search(r'action="/parts/(\d+)/approve"', queue.text).group(1)  # type: ignore[union-attr]
        approved = steward_client.post(
            f"/parts/{part_id}/approve", data={"comment": "承認", "csrf_token": form_token(queue)}
        )
        assert approved.status_code == 303
        assert approved.headers["location"].startswith("/reviews?done=approved&id=")
        confirmed = steward_client.get(approved.headers["location"]).text
        assert "を承認しました" in confirmed and "審査待ちの申請はありません" in confirmed

        grants = analyst_client.get("/grants")
        assert "juki" in grants.text and "有効" in grants.text
        department = steward_client.get("/grants")
        grant_id = re.search(r'action="/grants/(\d+)/revoke"', department.text).group(1)  # type: ignore[union-attr]
        revoked = steward_client.post(
            f"/grants/{grant_id}/revoke", data={"reason": "目的外利用", "csrf_token": form_token(department)}
        )
        assert revoked.status_code == 303
        assert "取消し" in analyst_client.get("/grants").text


def test_a_rejection_needs_a_reason_and_shows_it(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    steward = world.person(Role.STEWARD, OWN)
    with world.client() as analyst_client, world.client(address="10.0.0.8") as steward_client:
        page_login(world, analyst_client, analyst)
        new = analyst_client.get("/applications/new")
        created = analyst_client.post(
            "/applications",
            data={
                "all_periods": "juki",
                "purpose": "目的",
                "outputs": "集計表",
                "use_start": "2026-04-01",
                "use_end": "2026-05-31",
                "action": "submit",
                "csrf_token": form_token(new),
            },
        )
        location = created.headers["location"]
        page_login(world, steward_client, steward)
        application = steward_client.get(location)
        part_id = re.search(r'action="/parts/(\d+)/reject"', application.text).group(1)  # type: ignore[union-attr]
        token = form_token(application)
        assert (
            steward_client.post(
                f"/parts/{part_id}/reject", data={"comment": "", "csrf_token": token}
            ).status_code
            == 422
        )
        rejected = steward_client.post(
            f"/parts/{part_id}/reject", data={"comment": "目的が曖昧", "csrf_token": token}
        )
        assert rejected.status_code == 303
        shown = analyst_client.get(location)
        assert "却下" in shown.text and "目的が曖昧" in shown.text
        assert "2025-03-31" in shown.text and "2026-03-31" in shown.text  # every period up to the day


def test_a_forbidden_action_is_an_html_error_page(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    auditor = world.person(Role.AUDITOR)
    with world.client() as client:
        page_login(world, client, auditor)
        new = client.get("/applications/new")
        refused = client.post(
            "/applications",
            data={
                "period": "juki:2026-03-31",
                "purpose": "p",
                "outputs": "o",
                "use_start": "2026-04-01",
                "use_end": "2026-04-30",
                "csrf_token": form_token(new),
            },
            headers={"Accept": "text/html"},
        )
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
        assert (
            "申請できるのは分析担当だけです" in refused.text
            and refused.headers["x-request-id"] in refused.text
        )
    assert analyst.login_id


def test_an_admin_set_password_is_changed_first(world: WebWorld) -> None:
    person = world.person(Role.ANALYST, must_change=True)
    with world.client() as client:
        done = page_login(world, client, person)
        assert done.headers["location"] == "/password"
        assert client.get("/applications", headers={"Accept": "text/html"}).status_code == 403
        form = client.get("/password")
        assert "パスワードの変更が必要です" in form.text
        weak = client.post(
            "/password",
            data={
                "current_password": person.password,
                "new_password": "12345678",
                "csrf_token": form_token(form),
            },
        )
        assert weak.status_code == 422
        changed = client.post(
            "/password",
            data={
                "current_password": person.password,
                "new_password": "坂の上の図書館で雨宿りをした午後",
                "csrf_token": form_token(form),
            },
        )
        assert changed.status_code == 200 and "パスワードを変更しました" in changed.text
        assert client.get("/applications").status_code == 200


def test_validation_errors_name_the_field_in_the_users_language(world: WebWorld) -> None:
    """Issue 10, item 7: no raw pydantic English ("unable to parse string as an integer", "less than or equal")."""
    analyst = world.person(Role.ANALYST)
    with world.client() as client:
        page_login(world, client, analyst)
        html = {"Accept": "text/html"}
        word = client.get("/applications/abc", headers=html)
        large = client.get("/applications/99999999999", headers=html)
        english = client.get("/applications/abc?lang=en", headers=html)
        api = client.get("/api/v1/grants/0")
    assert word.status_code == large.status_code == english.status_code == api.status_code == 422
    assert "「申請番号」は整数で指定してください" in word.text
    assert "「申請番号」は 2147483647 以下にしてください" in large.text
    assert "Application number must be a whole number (path.application_id)" in english.text
    assert (
        api.json()["error"]["message_ja"]
        == "入力内容に誤りがあります：「利用承認の番号」は 1 以上にしてください"
    )
    for text in (word.text, large.text, api.text):
        assert "unable to parse" not in text and "less than or equal" not in text


def test_the_audit_log_page_searches_by_user_action_result_and_the_citys_dates(world: WebWorld) -> None:
    auditor = world.person(Role.AUDITOR)
    analyst = world.person(Role.ANALYST)
    html = {"Accept": "text/html"}
    with world.client() as client, world.client(address="10.0.0.9") as other:
        page_login(world, other, analyst)
        assert other.get("/audit", headers=html).status_code == 403  # not an analyst's page
        page_login(world, client, auditor)
        first = min(e.at for e in world.entries() if e.actor == analyst.login_id)  # the log's own clock
        today = first.astimezone(JST).date()

        def actions(query: str) -> list[str]:
            shown = client.get(f"/audit?actor={analyst.login_id}&{query}", headers=html)
            assert shown.status_code == 200, shown.text[:500]
            return re.findall(r"<td class=\"nowrap\"><code>([^<]+)</code>", shown.text)

        assert set(actions("action=login&since=&until=")) == {"login.password", "login.totp"}
        assert "authz.decision" in actions("result=denied")  # the refused /audit above
        assert set(actions("result=denied")) == {"authz.decision"}
        assert actions(f"since={today.isoformat()}&until={today.isoformat()}")
        assert actions(f"until={(today - dt.timedelta(days=1)).isoformat()}") == []
        wrong = client.get("/audit?since=2026-13-01", headers=html)
        assert wrong.status_code == 422 and "「開始日」は日付" in wrong.text
