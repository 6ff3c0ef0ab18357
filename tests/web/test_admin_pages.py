"""The admin pages and the monthly inspection report, as a browser uses them: each action calls the hub's admin
service as the session's actor (decided and audited), a non-admin is refused and that refusal is on the record,
a secret a change makes is shown once on the answer to the post, and the report exists as HTML and as PDF."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from renkei.hub.access.people import Role, User
from renkei.hub.access.terminals import Terminal
from tests.web.support import OWN, WebWorld
from tests.web.test_pages import form_token, page_login

HTML = {"Accept": "text/html"}


@contextmanager
def admin_client(world: WebWorld) -> Iterator[tuple[httpx.Client, str]]:
    admin = world.person(Role.ADMIN)
    with world.client() as client:
        page_login(world, client, admin)
        yield client, admin.login_id


def test_the_admin_designates_a_user_who_gets_a_one_time_password(world: WebWorld) -> None:
    with admin_client(world) as (client, admin):
        users = client.get("/admin/users", headers=HTML)
        assert users.status_code == 200 and "職員を指名する" in users.text
        start = world.audit_size()
        made = client.post(
            "/admin/users",
            data={"login_id": "yamada", "display_name": "山田 花子", "role": "analyst", "department": OWN,
                  "csrf_token": form_token(users)},
        )  # fmt: skip
        assert made.status_code == 200 and "yamada を指名しました" in made.text
        password = re.search(r'<code class="secret">([^<]+)</code>', made.text)
        assert password and len(password.group(1)) >= 20
        logged = [(e.actor, e.action, e.resource) for e in world.entries(start)]
        assert (admin, "admin.user_add", "user/yamada") in logged
        decision = next(e for e in world.entries(start) if e.action == "authz.decision")
        assert (decision.actor, decision.details["access"], decision.result) == (
            admin,
            "admin.users",
            "allowed",
        )
        assert password.group(1) not in str([e.details for e in world.entries(start)])  # never logged

        again = client.post(
            "/admin/users",
            data={"login_id": "yamada", "display_name": "山田", "role": "analyst", "department": OWN,
                  "csrf_token": form_token(users)},
        )  # fmt: skip
        assert again.status_code == 400 and "指名済み" in again.text and 'value="山田"' in again.text
        bad = client.post(
            "/admin/users",
            data={"login_id": "Bad Id", "display_name": "x", "role": "analyst", "department": OWN,
                  "csrf_token": form_token(users)},
        )  # fmt: skip
        assert bad.status_code == 400 and "利用者IDが不正です" in bad.text
        no_role = client.post(
            "/admin/users",
            data={"login_id": "kimura", "display_name": "木村", "role": "boss", "department": OWN,
                  "csrf_token": form_token(users)},
        )  # fmt: skip
        assert no_role.status_code == 400 and "「役割」を選んでください" in no_role.text


def test_the_admin_changes_disables_enables_and_resets_a_user(world: WebWorld) -> None:
    target = world.person(Role.ANALYST)
    with admin_client(world) as (client, _):
        token = form_token(client.get("/admin/users", headers=HTML))
        base = f"/admin/users/{target.login_id}"
        changed = client.post(
            f"{base}/change", data={"role": "steward", "department": OWN, "csrf_token": token}
        )
        assert (changed.status_code, changed.headers["location"]) == (
            303,
            "/admin/users?done=user_changed&id=0",
        )
        assert "役割・所属部署を変更し" in client.get(changed.headers["location"]).text
        assert client.post(f"{base}/disable", data={"csrf_token": token}).status_code == 303
        with world.session() as session:
            user = session.scalars(select(User).where(User.login_id == target.login_id)).one()
            assert (user.role, user.disabled) == (Role.STEWARD, True)
        assert client.post(f"{base}/enable", data={"csrf_token": token}).status_code == 303
        reset = client.post(f"{base}/password", data={"csrf_token": token})
        assert reset.status_code == 200 and "パスワードを再設定しました" in reset.text
        enrolled = client.post(f"{base}/totp", data={"csrf_token": token})
        assert enrolled.status_code == 200 and "otpauth://totp/" in enrolled.text
        ticket = client.post(f"{base}/card-ticket", data={"csrf_token": token})
        assert ticket.status_code == 200 and "登録チケット" in ticket.text
        missing = client.post("/admin/users/nobody-here/disable", data={"csrf_token": token})
        assert missing.status_code == 400 and "指名されていません" in missing.text
        assert client.post(f"{base}/disable", data={}).status_code == 403  # no CSRF token
        with world.session() as session:
            user = session.scalars(select(User).where(User.login_id == target.login_id)).one()
            assert not user.disabled


def test_the_admin_registers_and_revokes_a_terminal(world: WebWorld) -> None:
    with admin_client(world) as (client, _):
        page = client.get("/admin/terminals", headers=HTML)
        assert page.status_code == 200 and world.terminal.fingerprint_sha256 in page.text
        made = client.post(
            "/admin/terminals", data={"terminal_name": "kobe-pc-7", "csrf_token": form_token(page)}
        )
        assert made.status_code == 200 and "端末 kobe-pc-7 を登録しました" in made.text
        with world.session() as session:
            terminal = session.scalars(select(Terminal).where(Terminal.name == "kobe-pc-7")).one()
        assert terminal.fingerprint_sha256 in made.text and ".p12" in made.text
        bad = client.post(
            "/admin/terminals", data={"terminal_name": "no spaces", "csrf_token": form_token(page)}
        )
        assert bad.status_code == 400 and "端末名が不正です" in bad.text
        revoked = client.post("/admin/terminals/kobe-pc-7/revoke", data={"csrf_token": form_token(page)})
        assert revoked.status_code == 303
        assert "端末を失効させ" in client.get(revoked.headers["location"]).text


def test_the_status_keys_senders_policy_and_cards_pages(world: WebWorld) -> None:
    with admin_client(world) as (client, _):
        status = client.get("/admin", headers=HTML)
        assert status.status_code == 200, status.text[:800]
        for shown in ("検証済み", "kyotsu", "disclosure.threshold", "RENKEI_DISCLOSURE_THRESHOLD", "juki"):
            assert shown in status.text, shown
        assert client.get("/admin/cards", headers=HTML).status_code == 200


@pytest.mark.parametrize("role", [Role.ANALYST, Role.STEWARD, Role.AUDITOR])
def test_others_are_refused_and_the_refusal_is_on_record(world: WebWorld, role: Role) -> None:
    person = world.person(role)
    victim = world.person(Role.ANALYST)
    with world.client() as client:
        page_login(world, client, person)
        assert "/admin" not in client.get("/home", headers=HTML).text.split("</nav>")[0]
        start = world.audit_size()
        assert client.get("/admin/users", headers=HTML).status_code == 403
        token = form_token(client.get("/home", headers=HTML))
        refused = client.post(f"/admin/users/{victim.login_id}/disable", data={"csrf_token": token})
        assert refused.status_code == 403
        denied = [e for e in world.entries(start) if e.action == "authz.decision" and e.result == "denied"]
        assert [e.details["access"] for e in denied] == ["admin.users", "admin.users"]
        assert all(e.actor == person.login_id for e in denied)
    with world.session() as session:
        assert not session.scalars(select(User.disabled).where(User.id == victim.user.id)).one()


def test_the_auditor_reads_the_inspection_as_html_and_pdf(world: WebWorld) -> None:
    auditor = world.person(Role.AUDITOR)
    with world.client() as client:
        page_login(world, client, auditor)
        nav = client.get("/home", headers=HTML).text
        assert 'href="/audit/inspection"' in nav and 'href="/admin"' not in nav
        month = f"{world.entries()[-1].at:%Y-%m}"  # the audit log's own clock
        shown = client.get(f"/audit/inspection?month={month}", headers=HTML)
        assert shown.status_code == 200 and f"監査ログ月次点検報告書（{month}）" in shown.text
        assert auditor.login_id in shown.text  # their own login is in the month's logins
        assert 'href="/static/inspection.css"' in shown.text
        english = client.get(f"/audit/inspection?month={month}&lang=en", headers=HTML)
        assert f"Monthly audit-log inspection report ({month})" in english.text
        client.get("/home?lang=ja", headers=HTML)
        bad = client.get("/audit/inspection?month=2026-13", headers=HTML)
        assert bad.status_code == 400 and "YYYY-MM" in bad.text
        pdf = client.get(f"/audit/inspection.pdf?month={month}")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["cache-control"] == "no-store"
        reader = PdfReader(io.BytesIO(pdf.content))
        assert len(reader.pages) >= 1
        text = "".join(page.extract_text() for page in reader.pages)
        assert f"監査ログ月次点検報告書（{month}）" in text and "点検の記録" in text
