"""``POST /api/v1/opendata/preview`` and ``/publish`` over HTTP: the preview spends nothing, publishing needs a
step-up, spends the budget and returns the CSV with its record, overspending answers 409."""

from __future__ import annotations

import datetime as dt

from renkei.hub.access.people import Role
from renkei.hub.analysis.ledger import Release, ReleaseStatus
from renkei.hub.tables.request import Category, TableRequest
from tests.web.support import STEP_UP_STALE, WebWorld, login_with_totp, step_up_with_totp

PERIOD = dt.date(2025, 3, 31)  # 令和6年度


def test_preview_then_publish_then_refuse_overspending(world: WebWorld) -> None:
    analyst, steward = world.person(Role.ANALYST), world.person(Role.STEWARD)
    request = TableRequest(dataset="juki", periods=[PERIOD], dimensions=[Category(column="性別")])
    with world.session() as session:
        release = Release(
            user_id=analyst.user.id, kind="table", definition=request.model_dump(mode="json"), sql="SELECT 1",
            snapshot_ids=[world.snapshot_id("juki", PERIOD)], datasets=["juki"],
            cells=[{"c": ["1"], "n": 500, "s": "ok"}, {"c": ["2"], "n": 520, "s": "ok"}],
            shown={"header": [], "rows": []}, record={}, record_sha256="0" * 64,
            status=ReleaseStatus.RELEASED, created_at=world.clock.now(),
        )  # fmt: skip
        session.add(release)
        session.commit()
        release_id = release.id
    with world.client() as client:
        token = login_with_totp(world, client, steward)
        headers = {"X-CSRF-Token": token}
        body = {"release_id": release_id, "epsilon": 0.6}
        for _ in range(2):
            preview = client.post("/api/v1/opendata/preview", json=body, headers=headers)
            assert preview.status_code == 200, preview.text
            assert preview.json()["budgets"][0] == {
                "dataset": "juki", "fiscal_year": 2024, "total": 1.0, "spent": 0.0, "left_after": 0.4,
            }  # fmt: skip
        shown = preview.json()
        world.clock.advance(
            seconds=STEP_UP_STALE.total_seconds()
        )  # publishing, like an export, needs a step-up
        stale = client.post("/api/v1/opendata/publish", json=body, headers=headers)
        assert stale.status_code == 403 and stale.json()["error"]["code"] == "step_up_required"
        step_up_with_totp(world, client, steward, token)
        assert shown["header"] == ["性別", "人数", "誤差（95%）"] and len(shown["rows"]) == 2
        assert shown["error"] == shown["record"]["differential_privacy"]["error"]
        published = client.post("/api/v1/opendata/publish", json=body, headers=headers)
        assert published.status_code == 200, published.text
        answer = published.json()
        assert answer["csv"].startswith("\ufeff性別,人数")
        assert answer["record"]["differential_privacy"]["epsilon"] == 0.6
        assert answer["budgets"][0]["left_after"] == 0.4
        refused = client.post("/api/v1/opendata/publish", json=body, headers=headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "privacy_budget_exceeded"
