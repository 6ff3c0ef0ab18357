"""Exports, the steward's table review and step-up (issue 10): the pages and the API over HTTP.

Releases are made with the hub's own ledger function (:func:`record_release`), over snapshots the analyst
holds a grant on; the quota is set as an admin sets it (:func:`set_quota`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from renkei.clock import city_today
from renkei.hub.access import totp
from renkei.hub.access.applications import (
    Application,
    ApplicationItem,
    ApplicationPart,
    ApplicationState,
    PartState,
)
from renkei.hub.access.authz import Actor
from renkei.hub.access.grants import Grant
from renkei.hub.access.people import Role
from renkei.hub.access.quotas import set_quota
from renkei.hub.access.step_up import PROTECTED
from renkei.hub.analysis.dashboards import snapshots_key
from renkei.hub.analysis.ledger import DashboardTile, Release, ReleaseKind, ReleaseStatus
from renkei.hub.analysis.releases import record_release
from renkei.hub.analysis.saved import save_analysis
from renkei.hub.catalog import Department, Snapshot
from renkei.hub.tables.display import ShownTable
from renkei.hub.tables.request import Category, TableRequest
from renkei.web.context import local_path
from tests.web.support import (
    OTHER,
    OWN,
    STEP_UP_STALE,
    Person,
    WebWorld,
    login_with_card,
    login_with_totp,
    step_up_with_totp,
)
from tests.web.test_flow import enroll_card
from tests.web.test_pages import ceremony_options, form_token, page_login
from tests.web.test_route_matrix import ROUTES

PERIOD = dt.date(2026, 3, 31)
PURPOSE = "子育て世帯の転入傾向の分析"


def grant(world: WebWorld, holder: Person, dataset: str = "juki") -> int:
    """An approved application of ``holder`` and its grant on ``dataset``'s 2026 snapshot; the snapshot id."""
    today = city_today(world.clock)
    snapshot_id = world.snapshot_id(dataset, PERIOD)
    with world.session() as session:
        department = OWN if dataset == "juki" else OTHER
        department_id = session.query(Department.id).filter(Department.name == department).scalar()
        part = ApplicationPart(
            department_id=department_id,
            state=PartState.APPROVED,
            items=[ApplicationItem(snapshot_id=snapshot_id)],
        )
        application = Application(
            applicant_id=holder.user.id, purpose=PURPOSE, outputs="集計表", use_start=today,
            use_end=today + dt.timedelta(days=90), row_level=False, state=ApplicationState.APPROVED,
            submitted_at=world.clock.now(), applied_on=today, created_at=world.clock.now(),
            updated_at=world.clock.now(), parts=[part],
        )  # fmt: skip
        session.add(application)
        session.flush()
        snapshot = session.get_one(Snapshot, snapshot_id)
        session.add(
            Grant(
                application_id=application.id, part_id=part.id, user_id=holder.user.id,
                dataset_id=snapshot.dataset_id, row_level=False, valid_from=today,
                valid_until=today + dt.timedelta(days=90), issued_at=world.clock.now(), snapshots=[snapshot],
            )
        )  # fmt: skip
        session.commit()
    return snapshot_id


def release(
    world: WebWorld,
    requester: Person,
    snapshot_id: int,
    status: ReleaseStatus = ReleaseStatus.RELEASED,
    *,
    title: str = "区別の人数",
    reason: str = "",
    chart: dict[str, Any] | None = None,
) -> int:
    """A protected table in the ledger, as the builder records one (with its chart spec, if given)."""
    shown = ShownTable(
        ["住所_ward", "人数"], [["中央区", 120], ["北区", "X"]], [], ["X: 秘匿 (suppressed)"], chart or {}
    )
    with world.session() as session:
        recorded = record_release(
            session, Actor.for_user(requester.user), kind=ReleaseKind.TABLE, title=title, definition={},
            sql="SELECT 住所_ward, count(*) FROM juki GROUP BY ALL", snapshot_ids=[snapshot_id],
            datasets=["juki"], shown=shown, record={"rules": ["threshold"]}, status=status,
            clock=world.clock, true_counts=[], review_reason=reason,
        )  # fmt: skip
        session.commit()
        return recorded.id


def allow_downloads(world: WebWorld, person: Person, files_per_day: int = 1) -> None:
    with world.session() as session:
        set_quota(
            session, world.app.state.portal.hub.audit, Actor.cli("cli:test"), person.login_id,
            may_download=True, files_per_day=files_per_day, clock=world.clock,
        )  # fmt: skip


def actions_since(world: WebWorld, before: int) -> list[tuple[str, str, str]]:
    return [(e.action, e.result, e.reason) for e in world.entries(before)]


# --- step-up over the API -------------------------------------------------------------------------------------


def test_an_api_export_needs_a_fresh_step_up_then_stays_within_quota(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    release_id = release(world, analyst, grant(world, analyst))
    allow_downloads(world, analyst)
    with world.client() as client:
        token = login_with_totp(world, client, analyst)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())  # the login's proof is too old now
        before = world.audit_size()
        body = {"release_id": release_id, "format": "csv"}
        refused = client.post("/api/v1/exports", json=body, headers={"X-CSRF-Token": token})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
        assert ("session.step_up_required", "denied", "step_up_stale") in actions_since(world, before)

        started = client.post("/api/v1/session/step-up", headers={"X-CSRF-Token": token})
        assert started.status_code == 200 and started.json()["factor"] == "totp"
        assert started.json()["fresh"] is False and started.json()["card_options"] is None
        wrong = client.post(
            "/api/v1/session/step-up/totp", json={"code": "000000"}, headers={"X-CSRF-Token": token}
        )
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "step_up_failed"
        step_up_with_totp(world, client, analyst, token)
        assert ("session.step_up", "denied", "totp_invalid") in actions_since(world, before)
        assert ("session.step_up", "ok", "") in actions_since(world, before)

        exported = client.post("/api/v1/exports", json=body, headers={"X-CSRF-Token": token})
        assert exported.status_code == 200, exported.text
        assert exported.headers["x-content-sha256"] == hashlib.sha256(exported.content).hexdigest()
        assert (
            exported.headers["content-disposition"]
            == f'attachment; filename="renkei-release-{release_id}.csv"'
        )
        assert "中央区" in exported.content.decode("utf-8-sig")
        over = client.post("/api/v1/exports", json=body, headers={"X-CSRF-Token": token})
        assert (
            over.status_code == 403
            and "本日のダウンロードは 1 件までです" in over.json()["error"]["message_ja"]
        )


def test_the_same_code_twice_and_a_card_step_up(world: WebWorld) -> None:
    steward = world.person(Role.STEWARD, factor="card")
    with world.client() as client:
        enroll_card(world, client, steward)
        token = login_with_card(client, steward)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        started = client.post("/api/v1/session/step-up", headers={"X-CSRF-Token": token})
        assert started.status_code == 200 and started.json()["factor"] == "card"
        assert steward.card is not None
        assertion = steward.card.get(json.dumps(started.json()["card_options"]))
        proved = client.post(
            "/api/v1/session/step-up/card", json={"assertion": assertion}, headers={"X-CSRF-Token": token}
        )
        assert proved.status_code == 200, proved.text
        again = client.post(
            "/api/v1/session/step-up/card", json={"assertion": assertion}, headers={"X-CSRF-Token": token}
        )
        assert again.status_code == 403  # the challenge was used up
        totp_instead = client.post(
            "/api/v1/session/step-up/totp", json={"code": "123456"}, headers={"X-CSRF-Token": token}
        )
        assert totp_instead.status_code == 403  # the user's factor is the card

    analyst = world.person(Role.ANALYST)
    with world.client() as client:
        token = login_with_totp(world, client, analyst)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        code = totp.current_code(analyst.totp_secret, world.clock.now())
        first = client.post(
            "/api/v1/session/step-up/totp", json={"code": code}, headers={"X-CSRF-Token": token}
        )
        assert first.status_code == 200
        reused = client.post(
            "/api/v1/session/step-up/totp", json={"code": code}, headers={"X-CSRF-Token": token}
        )
        assert reused.status_code == 403 and "使用済み" in reused.json()["error"]["message_ja"]


def test_an_api_approval_without_a_fresh_step_up_is_refused(world: WebWorld) -> None:
    analyst, steward = world.person(Role.ANALYST), world.person(Role.STEWARD, OWN)
    release_id = release(world, analyst, grant(world, analyst), ReleaseStatus.REVIEW, reason="差分")
    with world.client() as client:
        token = login_with_totp(world, client, steward)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        body = {"approve": True, "comment": "問題ありません"}
        refused = client.post(
            f"/api/v1/releases/{release_id}/review", json=body, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "step_up_required"
        step_up_with_totp(world, client, steward, token)
        approved = client.post(
            f"/api/v1/releases/{release_id}/review", json=body, headers={"X-CSRF-Token": token}
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"


# --- the pages ------------------------------------------------------------------------------------------------


def test_the_exports_page_steps_up_downloads_shows_the_hash_and_says_when_the_quota_is_used(
    world: WebWorld,
) -> None:
    analyst = world.person(Role.ANALYST)
    snapshot_id = grant(world, analyst)
    released = release(world, analyst, snapshot_id, title="区別の人数（2026年）")
    release(
        world,
        analyst,
        snapshot_id,
        ReleaseStatus.REVIEW,
        title="審査待ちの表",
        reason="差分による少人数の特定のおそれ",
    )
    rejected = release(world, analyst, snapshot_id, ReleaseStatus.REJECTED, title="却下された表")
    with world.session() as session:
        session.get_one(Release, rejected).review_comment = "区の単位が細かすぎます"
        session.commit()
    allow_downloads(world, analyst)
    with world.client() as client:
        page_login(world, client, analyst)
        shown = client.get("/exports")
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        text = shown.text
        assert "区別の人数（2026年）" in text and "公表済み" in text and "審査中" in text and "却下" in text
        assert "差分による少人数の特定のおそれ" in text and "区の単位が細かすぎます" in text
        assert "残り 1（上限 1）" in text and text.count('action="/exports"') == 1  # only the released one
        assert "本人確認は" in text  # the login's proof still counts

        no_token = client.post("/exports", data={"release_id": released, "format": "csv"})
        assert no_token.status_code == 403  # CSRF

        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        assert "出力の前に本人確認が必要です" in client.get("/exports").text
        form = {
            "release_id": str(released),
            "format": "xlsx",
            "next": "/exports",
            "csrf_token": form_token(shown),
        }
        asked = client.post("/exports", data=form)
        assert asked.status_code == 303
        target = urlsplit(asked.headers["location"])
        assert target.path == "/step-up" and parse_qs(target.query) == {"next": ["/exports"]}
        step_up_page = client.get(asked.headers["location"])
        assert (
            'action="/step-up/totp"' in step_up_page.text
            and 'name="next" value="/exports"' in step_up_page.text
        )
        world.clock.advance(seconds=30)
        code = totp_code(world, analyst)
        back = client.post(
            "/step-up/totp", data={"code": code, "next": "/exports", "csrf_token": form_token(shown)}
        )
        assert back.status_code == 303 and back.headers["location"] == "/exports?done=stepped_up&id=0"
        assert "本人確認が済みました" in client.get(back.headers["location"]).text

        exported = client.post("/exports", data=form)
        assert exported.status_code == 200, exported.text[:1000]
        assert (
            exported.headers["content-disposition"]
            == f'attachment; filename="renkei-release-{released}.xlsx"'
        )
        assert exported.headers["cache-control"] == "no-store"
        digest = hashlib.sha256(exported.content).hexdigest()
        assert exported.headers["x-content-sha256"] == digest and exported.content[:2] == b"PK"
        after = client.get("/exports").text
        assert (
            digest in after
            and "残り 0（上限 1）" in after
            and "本日のダウンロードの上限に達しました" in after
        )

        over = client.post("/exports", data={**form, "format": "csv"})
        assert over.status_code == 403 and "本日のダウンロードは 1 件までです" in over.text
        in_review = client.post("/exports", data={**form, "release_id": str(rejected)})
        assert in_review.status_code == 422 and "出力できません" in in_review.text


def totp_code(world: WebWorld, person: Person) -> str:
    return totp.current_code(person.totp_secret, world.clock.now())


def test_the_exports_page_for_others_and_an_empty_ledger(world: WebWorld) -> None:
    steward, analyst = world.person(Role.STEWARD), world.person(Role.ANALYST)
    with world.client() as client:
        page_login(world, client, steward)
        assert "出力は分析担当が" in client.get("/exports").text
    with world.client() as client:
        page_login(world, client, analyst)
        empty = client.get("/exports").text
        assert "まだ集計表がありません" in empty and 'href="/workspace"' in empty
        assert "ダウンロードは許可されていません" in empty


def test_a_steward_reviews_a_table_with_a_required_reason_after_a_step_up(world: WebWorld) -> None:
    analyst, steward = world.person(Role.ANALYST), world.person(Role.STEWARD, OWN)
    snapshot_id = grant(world, analyst)
    first = release(
        world, analyst, snapshot_id, ReleaseStatus.REVIEW, reason="差分による少人数の特定のおそれ"
    )
    second = release(
        world, analyst, snapshot_id, ReleaseStatus.REVIEW, reason="差分による少人数の特定のおそれ"
    )
    other_steward = world.person(Role.STEWARD, OTHER)
    with world.client() as client:
        page_login(world, client, other_steward)
        theirs = client.get("/releases/review").text
        assert (
            f"集計表 {first}" not in theirs and "審査を待っている集計表はありません" in theirs
        )  # not their data
    with world.client() as client:
        page_login(world, client, steward)
        queue = client.get("/releases/review")
        text = queue.text
        assert f"集計表 {first}" in text and analyst.user.display_name in text and PURPOSE in text
        assert "差分による少人数の特定のおそれ" in text and "中央区" in text and "判断の理由（必須）" in text
        token = form_token(queue)
        blank = client.post(
            f"/releases/{first}/review", data={"decision": "approve", "comment": " ", "csrf_token": token}
        )
        assert blank.status_code == 422 and "理由を入力してください" in blank.text
        missing = client.post(f"/releases/{first}/review", data={"decision": "approve", "csrf_token": token})
        assert missing.status_code == 422

        rejected = client.post(
            f"/releases/{first}/review",
            data={"decision": "reject", "comment": "区が特定されます", "csrf_token": token},
        )
        assert (
            rejected.status_code == 303
            and rejected.headers["location"] == f"/releases/review?done=release_rejected&id={first}"
        )
        assert f"集計表 {first} を却下しました" in client.get(rejected.headers["location"]).text

        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        form = {"decision": "approve", "comment": "妥当です", "next": "/releases/review", "csrf_token": token}
        asked = client.post(f"/releases/{second}/review", data=form)
        assert asked.status_code == 303 and asked.headers["location"] == "/step-up?next=%2Freleases%2Freview"
        assert "承認の前に本人確認が必要です" in client.get("/releases/review").text
        world.clock.advance(seconds=30)
        back = client.post(
            "/step-up/totp",
            data={"code": totp_code(world, steward), "next": "/releases/review", "csrf_token": token},
        )
        assert back.status_code == 303
        approved = client.post(f"/releases/{second}/review", data=form)
        assert approved.headers["location"] == f"/releases/review?done=release_approved&id={second}"
        left = client.get("/releases/review").text
        assert f'id="release-{first}"' not in left and f'id="release-{second}"' not in left

    with world.client() as client:
        page_login(world, client, analyst)
        mine = client.get("/exports").text
        assert "区が特定されます" in mine and "承認済み" in mine
        assert "集計表の審査は" in client.get("/releases/review").text
        denied = client.post(
            f"/releases/{second}/review",
            data={"decision": "approve", "comment": "x", "csrf_token": form_token(client.get("/exports"))},
        )
        assert denied.status_code == 403


def test_a_part_approval_on_the_pages_steps_up_and_returns_to_the_page(world: WebWorld) -> None:
    analyst, steward = world.person(Role.ANALYST), world.person(Role.STEWARD, OWN)
    with world.client() as analyst_client, world.client() as client:
        page_login(world, analyst_client, analyst)
        new = analyst_client.get("/applications/new")
        values = {
            "period": "juki:2026-03-31", "purpose": PURPOSE, "outputs": "集計表", "use_start": "2026-04-01",
            "use_end": "2026-06-30", "action": "submit", "csrf_token": form_token(new),
        }  # fmt: skip
        assert analyst_client.post("/applications", data=values).status_code == 303
        page_login(world, client, steward)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        queue = client.get("/reviews")
        assert 'name="next" value="/reviews"' in queue.text
        part_id = re.search(r'action="/parts/(\d+)/approve"', queue.text).group(1)  # type: ignore[union-attr]
        data = {"comment": "承認", "next": "/reviews", "csrf_token": form_token(queue)}
        asked = client.post(f"/parts/{part_id}/approve", data=data)
        assert asked.headers["location"] == "/step-up?next=%2Freviews"
        world.clock.advance(seconds=30)
        code = totp_code(world, steward)
        client.post("/step-up/totp", data={"code": code, "next": "/reviews", "csrf_token": form_token(queue)})
        approved = client.post(f"/parts/{part_id}/approve", data=data)
        assert approved.status_code == 303 and approved.headers["location"].startswith(
            "/reviews?done=approved"
        )


@pytest.mark.parametrize(
    ("candidate", "kept"),
    [
        ("/exports", "/exports"),
        ("/releases/review?x=1", "/releases/review?x=1"),
        ("https://evil.example/", ""),
        ("//evil.example/x", ""),
        ("/\\evil.example", ""),
        ("exports", ""),
        ("/a\r\nSet-Cookie: x", ""),
        ("", ""),
    ],
)
def test_only_a_local_path_is_followed_after_a_step_up(candidate: str, kept: str) -> None:
    assert local_path(candidate) == kept


def test_the_step_up_page_ignores_a_foreign_next(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    with world.client() as client:
        page_login(world, client, analyst)
        shown = client.get("/step-up", params={"next": "https://evil.example/"})
        assert (
            shown.status_code == 200
            and "evil" not in shown.text
            and 'name="next" value="/home"' in shown.text
        )
        assert "もう一度確認する必要はありません" in shown.text
        world.clock.advance(seconds=30)
        back = client.post(
            "/step-up/totp",
            data={
                "code": totp_code(world, analyst),
                "next": "//evil.example",
                "csrf_token": form_token(shown),
            },
        )
        assert back.headers["location"] == "/home?done=stepped_up&id=0"
        wrong = client.post(
            "/step-up/totp", data={"code": "000000", "next": "/exports", "csrf_token": form_token(shown)}
        )
        assert wrong.status_code == 403 and "確認できませんでした" in wrong.text


# --- dashboards -----------------------------------------------------------------------------------------------


def test_dashboards_pin_a_saved_table_and_show_its_protected_cells(world: WebWorld) -> None:
    analyst = world.person(Role.ANALYST)
    snapshot_id = grant(world, analyst)
    hub = world.app.state.portal.hub
    request = TableRequest(dataset="juki", dimensions=[Category(column="住所_ward")])
    saved = save_analysis(hub, Actor.for_user(analyst.user), "区別の人口", request, clock=world.clock)
    save_analysis(
        hub, Actor.for_user(analyst.user), "SQL の集計", "SELECT count(*) FROM juki", clock=world.clock
    )
    with world.client() as client:
        page_login(world, client, analyst)
        overview = client.get("/dashboards")
        assert (
            overview.status_code == 200
            and "区別の人口" in overview.text
            and "SQL の集計" not in overview.text
        )
        token = form_token(overview)
        assert (
            client.post(
                "/dashboards/pin", data={"analysis_id": str(saved.id), "theme": "population"}
            ).status_code
            == 403
        )
        pinned = client.post(
            "/dashboards/pin", data={"analysis_id": str(saved.id), "theme": "population", "csrf_token": token}
        )
        assert pinned.headers["location"] == f"/dashboards/population?done=pinned&id={saved.id}"

        # The snapshots here hold no data: running the table fails, and the tile says why (nothing else shown).
        failed = client.get(pinned.headers["location"])
        assert failed.status_code == 200 and "区別の人口" in failed.text and 'class="problem"' in failed.text

        release_id = release(world, analyst, snapshot_id, title="区別の人口")
        with world.session() as session:
            key, _ = snapshots_key(session, analyst.user.id, saved.definition, world.clock)
            session.add(DashboardTile(analysis_id=saved.id, release_id=release_id, snapshots_key=key,
                                      refreshed_at=world.clock.now()))  # fmt: skip
            session.commit()
        shown = client.get("/dashboards/population").text
        assert "中央区" in shown and "X: 秘匿" in shown and f"集計表 {release_id}" in shown
        assert "基準日: 2026-03-31" in shown
        # Its chart, from the same protected cells (stored without a chart spec: bars, by its shape): 中央区 a
        # bar, 北区 (suppressed) a gap marked X, never a zero bar; its title and desc name this tile.
        assert shown.count("<svg") == 1 and f'aria-labelledby="tile-{saved.id}-chart-title' in shown
        assert f'<title id="tile-{saved.id}-chart-title">区別の人口</title>' in shown
        assert "<title>人数 中央区: 120</title>" in shown and shown.count('class="gap"') == 1
        assert "北区: " not in shown and "0 としては描きません" in shown
        assert client.get("/dashboards/weather").status_code == 404

        off = client.post(
            "/dashboards/pin", data={"analysis_id": str(saved.id), "theme": "", "csrf_token": token}
        )
        assert off.headers["location"] == f"/dashboards?done=unpinned&id={saved.id}"
        assert "このテーマにはまだ表がありません" in client.get("/dashboards/population").text
        sql_pin = client.post(
            "/dashboards/pin", data={"analysis_id": str(saved.id + 1), "theme": "care", "csrf_token": token}
        )
        assert sql_pin.status_code == 422 and "集計表の作成" in sql_pin.text
    steward = world.person(Role.STEWARD)
    with world.client() as client:
        page_login(world, client, steward)
        assert "分析担当が保存した" in client.get("/dashboards/care").text


def test_a_dashboard_draws_a_table_saved_with_the_ward_map(world: WebWorld) -> None:
    """The kind saved with the table (区の模式図) is drawn on its tile: nine wards, the suppressed one marked,
    the missing ones empty, the schematic caption, in the page's language."""
    analyst = world.person(Role.ANALYST)
    snapshot_id = grant(world, analyst)
    hub = world.app.state.portal.hub
    request = TableRequest(dataset="juki", dimensions=[Category(column="住所_ward")], chart="wardmap")
    saved = save_analysis(hub, Actor.for_user(analyst.user), "区の模式図", request, clock=world.clock)
    spec = {"kind": "wardmap", "x": "住所_ward", "categories": ["中央区", "北区"],
            "series": [{"name": "区の模式図", "values": [120.0, None]}], "series_dimension": None}  # fmt: skip
    release_id = release(world, analyst, snapshot_id, title="区の模式図", chart=spec)
    with world.session() as session:
        key, _ = snapshots_key(session, analyst.user.id, saved.definition, world.clock)
        session.add(DashboardTile(analysis_id=saved.id, release_id=release_id, snapshots_key=key,
                                  refreshed_at=world.clock.now()))  # fmt: skip
        session.commit()
    with world.client() as client:
        page_login(world, client, analyst)
        token = form_token(client.get("/dashboards"))
        client.post(
            "/dashboards/pin", data={"analysis_id": str(saved.id), "theme": "population", "csrf_token": token}
        )
        shown = client.get("/dashboards/population").text
        english = client.get("/dashboards/population?lang=en").text
    ident = f"tile-{saved.id}-chart"
    assert shown.count('<g class="ward') == 9 and shown.count("ward-missing") == 7
    assert shown.count("ward-suppressed") == 1 and f'fill="url(#{ident}-hatch)"' in shown
    assert "<title>中央区: 120" in shown and f'<title id="{ident}-title">区の模式図</title>' in shown
    assert (
        "区の模式図（区ごとの表のみ） — 模式図：区の位置関係を表したもので、実際の境界ではありません。"
        in shown
    )
    assert "Schematic ward map (tables by ward only)" in english and "not their actual boundaries" in english
    assert "no result" in english


def test_every_approval_and_export_route_is_behind_the_step_up() -> None:
    """The routes that take a PROTECTED action (as the matrix declares them) are exactly the stepped-up ones."""
    protected = {str(a) for a in PROTECTED}
    for route, spec in ROUTES.items():
        takes = set(spec.get("actions", [])) & protected
        changes = route.startswith("POST ")
        if spec["guard"] == "stepped_up":
            assert takes and set(spec["actions"]) <= protected, route
        elif changes and takes:
            raise AssertionError(f"{route} takes {takes} without the step-up")


def test_a_card_step_up_through_the_pages(world: WebWorld) -> None:
    steward = world.person(Role.STEWARD, factor="card")
    with world.client() as client:
        enroll_card(world, client, steward)
        login_with_card(client, steward)
        world.clock.advance(seconds=STEP_UP_STALE.total_seconds())
        start = client.get("/step-up", params={"next": "/reviews"})
        assert 'action="/step-up"' in start.text and "職員証で確認する" in start.text
        ceremony = client.post("/step-up", data={"next": "/reviews", "csrf_token": form_token(start)})
        assert ceremony.status_code == 200 and 'action="/step-up/card"' in ceremony.text
        assert 'name="next" value="/reviews"' in ceremony.text
        assert steward.card is not None
        assertion = json.dumps(steward.card.get(ceremony_options(ceremony)))
        data = {"assertion": assertion, "next": "/reviews", "csrf_token": form_token(start)}
        back = client.post("/step-up/card", data=data)
        assert back.status_code == 303 and back.headers["location"] == "/reviews?done=stepped_up&id=0"
        replayed = client.post("/step-up/card", data=data)
        assert replayed.status_code == 403 and "確認できませんでした" in replayed.text
