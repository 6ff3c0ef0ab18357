"""The analysis path end to end on a real hub: builder and SQL agree, IDs never shown, exports, review."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from renkei.cli.analysis import _write_new, build_request
from renkei.hub.access.authz import Actor, Forbidden, InvalidTransition
from renkei.hub.access.people import Role, User
from renkei.hub.access.quotas import QuotaExceeded, set_quota
from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import ExportFormat, Release, ReleaseStatus
from renkei.hub.audit import AuditEntry
from renkei.hub.catalog import Dataset, Department
from renkei.hub.tables.display import TOTAL
from renkei.hub.tables.request import AgeBand, Category, Filter, Link, TableRequest
from renkei.hub.tables.service import BuiltTable
from renkei.hub.workspace.workspace import Workspace
from renkei.web.api.analysis import QueryView
from tests.integration.workspace_world import WorkspaceWorld, make_workspace_world

LINKED = TableRequest(
    dataset="juki",
    dimensions=[Category(column="住所_ward"), AgeBand(width=10, top=80)],
    links=[Link(dataset="kaigo")],
)
LINKED_SQL = (
    'SELECT b."住所_ward", (least(b.age, 80) // 10) * 10 AS band, count(*) AS n FROM juki AS b '
    "WHERE EXISTS (SELECT 1 FROM kaigo AS l WHERE l.period = b.period AND l.pid = b.pid) GROUP BY ALL"
)


@pytest.fixture(scope="module")
def ww(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceWorld:
    return make_workspace_world(tmp_path_factory.mktemp("analysis"), residents=400)


@pytest.fixture(scope="module")
def analyst(ww: WorkspaceWorld) -> Actor:
    user, actor = ww.analyst()
    for dataset in ("juki", "kaigo"):
        ww.grant(user, dataset, ww.periods)
    return actor


@pytest.fixture
def workspace(ww: WorkspaceWorld, analyst: Actor) -> Iterator[Workspace]:
    with service.open_workspace(ww.hub, analyst, clock=ww.clock) as opened:
        yield opened


def _release(
    ww: WorkspaceWorld, workspace: Workspace, actor: Actor, request: TableRequest
) -> tuple[BuiltTable, Release]:
    protect, threshold = service.table_protector(ww.hub), service.threshold_for(ww.hub, request)
    return service.release_table(
        ww.hub, workspace, actor, request, protect, threshold=threshold, clock=ww.clock
    )


def test_builder_and_sql_give_the_same_protected_numbers(
    ww: WorkspaceWorld, analyst: Actor, workspace: Workspace
) -> None:
    built, release = _release(ww, workspace, analyst, LINKED)
    inner = {c.coordinates: c.value for c in built.shown.cells if TOTAL not in c.coordinates}
    result = service.run_sql(
        ww.hub, workspace, analyst, LINKED_SQL, service.count_protector(ww.hub), clock=ww.clock
    )
    assert result.kind == "aggregate"
    by_sql = {(row[0], row[1]): row[2] for row in result.rows}
    assert set(by_sql) <= set(inner)
    shown = {k: v for k, v in inner.items() if k in by_sql}
    assert all((by_sql[k] == "X") == (v is None) for k, v in shown.items())
    assert {k: v for k, v in by_sql.items() if v != "X"} == {
        k: int(v) for k, v in shown.items() if v is not None
    }
    assert release.status == ReleaseStatus.RELEASED and result.release_id is not None


def test_the_same_table_twice_gives_the_same_numbers(
    ww: WorkspaceWorld, analyst: Actor, workspace: Workspace
) -> None:
    first, _ = _release(ww, workspace, analyst, LINKED)
    second, _ = _release(ww, workspace, analyst, LINKED)
    assert first.shown.rows == second.shown.rows


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pid FROM juki",
        "SELECT age, min(pid) FROM juki GROUP BY age",
        "SELECT md5(household_id) AS h, count(*) FROM juki GROUP BY h",
        "WITH x AS (SELECT pid AS k FROM kaigo) SELECT k FROM x",
    ],
)
def test_ids_are_never_shown(ww: WorkspaceWorld, analyst: Actor, workspace: Workspace, sql: str) -> None:
    with pytest.raises(service.AnalysisError, match="仮名ID"):
        service.run_sql(ww.hub, workspace, analyst, sql, service.count_protector(ww.hub), clock=ww.clock)


def test_rows_need_a_row_level_grant(ww: WorkspaceWorld, analyst: Actor, workspace: Workspace) -> None:
    with pytest.raises(service.AnalysisError, match="個票閲覧"):
        service.run_sql(
            ww.hub, workspace, analyst, "SELECT age, 性別 FROM juki", service.count_protector(ww.hub)
        )


def test_rows_are_shown_capped_to_a_row_level_grant(ww: WorkspaceWorld) -> None:
    user, actor = ww.analyst()
    ww.grant(user, "juki", ww.periods, row_level=True)
    with service.open_workspace(ww.hub, actor, clock=ww.clock) as opened:
        result = service.run_sql(
            ww.hub,
            opened,
            actor,
            "SELECT j.age FROM juki j, juki k LIMIT 2000",
            service.count_protector(ww.hub),
        )
    assert result.kind == "rows" and result.release_id is None
    assert len(result.rows) == service.MAX_SHOWN_ROWS and result.truncated


def test_date_cells_are_shown_as_iso_text(ww: WorkspaceWorld, analyst: Actor, workspace: Workspace) -> None:
    """A DATE group (``period``) or a DATE row value is a cell the API can answer (it was a 500)."""
    protect = service.count_protector(ww.hub)
    grouped = service.run_sql(
        ww.hub, workspace, analyst, "SELECT period, count(*) AS n FROM juki GROUP BY period", protect
    )
    assert grouped.kind == "aggregate"
    assert sorted(row[0] for row in grouped.rows) == [p.isoformat() for p in sorted(ww.periods)]
    QueryView.model_validate(
        {"kind": grouped.kind, "header": grouped.header, "rows": grouped.rows, "notes": grouped.notes,
         "release_id": grouped.release_id, "truncated": grouped.truncated}
    )  # fmt: skip
    user, actor = ww.analyst()
    ww.grant(user, "juki", ww.periods, row_level=True)
    with service.open_workspace(ww.hub, actor, clock=ww.clock) as opened:
        rows = service.run_sql(ww.hub, opened, actor, "SELECT period FROM juki LIMIT 1", protect)
    assert rows.kind == "rows" and rows.rows[0][0] in {p.isoformat() for p in ww.periods}


def test_a_mismatched_count_is_not_shown(ww: WorkspaceWorld, analyst: Actor, workspace: Workspace) -> None:
    repeated = (
        'SELECT j."住所_ward", count(*) FROM juki j JOIN juki k ON k.household_id = j.household_id GROUP BY 1'
    )
    with pytest.raises(service.AnalysisError, match="一致しない"):
        service.run_sql(ww.hub, workspace, analyst, repeated, service.count_protector(ww.hub))


def test_export_within_quota_with_the_hash_in_the_audit_log(
    ww: WorkspaceWorld, analyst: Actor, workspace: Workspace
) -> None:
    _, release = _release(ww, workspace, analyst, LINKED)
    with pytest.raises(Forbidden):  # downloads are off by default
        service.export_release(ww.hub, analyst, release.id, ExportFormat.CSV, clock=ww.clock)
    _allow_downloads(ww, analyst, files_per_day=2)
    csv_file = service.export_release(ww.hub, analyst, release.id, ExportFormat.CSV, clock=ww.clock)
    assert csv_file.content.startswith("\ufeff".encode())
    xlsx_file = service.export_release(ww.hub, analyst, release.id, ExportFormat.XLSX, clock=ww.clock)
    book = openpyxl.load_workbook(io.BytesIO(xlsx_file.content))
    assert book.sheetnames == ["集計表", "規則"]
    with pytest.raises(QuotaExceeded, match="2 件まで"):  # the quota, decided by authorize()
        service.export_release(ww.hub, analyst, release.id, ExportFormat.CSV, clock=ww.clock)
    with ww.hub.session() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "export.file")))
    logged = [e.details for e in entries]
    assert {d["sha256"] for d in logged} >= {csv_file.sha256, xlsx_file.sha256}
    mine = [e for e in entries if e.details["sha256"] in {csv_file.sha256, xlsx_file.sha256}]
    assert {(e.terminal, e.client_addr) for e in mine} == {(analyst.terminal, analyst.client_addr)}
    assert analyst.terminal  # the entry names the terminal the file went to


def test_only_a_steward_of_the_owning_department_reviews(
    ww: WorkspaceWorld, analyst: Actor, workspace: Workspace
) -> None:
    """release.review through authorize(): the requester, other roles and other departments' stewards are
    denied, each denial recorded as an authz decision; the owning steward decides."""
    _, release = _release(ww, workspace, analyst, LINKED)
    with ww.hub.session() as session:
        session.get_one(Release, release.id).status = ReleaseStatus.REVIEW
        owner = session.scalars(select(Dataset).where(Dataset.name == "juki")).one().owner_id
        elsewhere = Department(name="総務課")  # owns none of the table's datasets
        session.add(elsewhere)
        session.flush()
        stranger_dept = elsewhere.id
        people = {
            "steward": User(
                login_id="steward-r", display_name="審査", role=Role.STEWARD, department_id=owner
            ),
            "stranger": User(
                login_id="steward-x", display_name="他課", role=Role.STEWARD, department_id=stranger_dept
            ),
            "auditor": User(
                login_id="auditor-r", display_name="監査", role=Role.AUDITOR, department_id=owner
            ),
            "admin": User(login_id="admin-r", display_name="管理", role=Role.ADMIN, department_id=owner),
        }
        session.add_all(people.values())
        session.commit()
        actors = {k: Actor.for_user(u, terminal="term-01") for k, u in people.items()}
    denials = {
        "requester": (analyst, "deny:role"),
        "stranger": (actors["stranger"], "deny:not-owner"),
        "auditor": (actors["auditor"], "deny:role"),
        "admin": (actors["admin"], "deny:role"),
    }
    for who, (actor, policy) in denials.items():
        with pytest.raises(Forbidden):
            service.decide_review(ww.hub, actor, release.id, approve=True, comment="ok", clock=ww.clock)
        decision = _last_decision(ww)
        assert (decision.result, decision.actor, decision.details["access"]) == (
            "denied", actor.name, "release.review"
        ), who  # fmt: skip
        assert decision.details["policy"] == policy and decision.resource == f"release/{release.id}", who
    assert service.in_review_for(ww.hub, analyst) == []
    assert service.in_review_for(ww.hub, actors["stranger"]) == []
    assert [r.id for r in service.in_review_for(ww.hub, actors["steward"])] == [release.id]
    reviewed = service.decide_review(ww.hub, actors["steward"], release.id, approve=True, comment="確認済み")
    assert reviewed.status == ReleaseStatus.APPROVED
    assert _last_decision(ww).details["policy"] == "owning-steward"
    with pytest.raises(InvalidTransition):  # decided once
        service.decide_review(ww.hub, actors["steward"], release.id, approve=False, comment="再審査")


def test_a_steward_never_reviews_their_own_table(
    ww: WorkspaceWorld, analyst: Actor, workspace: Workspace
) -> None:
    """Separation of duties: a steward who requested the table (here: made its requester) cannot decide it."""
    _, release = _release(ww, workspace, analyst, LINKED)
    with ww.hub.session() as session:
        owner = session.scalars(select(Dataset).where(Dataset.name == "juki")).one().owner_id
        steward = User(login_id="steward-own", display_name="本人", role=Role.STEWARD, department_id=owner)
        session.add(steward)
        session.flush()
        stored = session.get_one(Release, release.id)
        stored.status, stored.user_id = ReleaseStatus.REVIEW, steward.id
        session.commit()
        actor = Actor.for_user(steward, terminal="term-01")
    with pytest.raises(Forbidden, match="requester"):
        service.decide_review(ww.hub, actor, release.id, approve=True, comment="ok", clock=ww.clock)
    assert _last_decision(ww).details["policy"] == "deny:separation-of-duties"
    assert service.in_review_for(ww.hub, actor) == []
    with ww.hub.session() as session:
        assert session.get_one(Release, release.id).status == ReleaseStatus.REVIEW  # nothing changed


def _last_decision(ww: WorkspaceWorld) -> AuditEntry:
    with ww.hub.session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "authz.decision").order_by(AuditEntry.seq.desc())
        ).first()
        assert entry is not None
        session.expunge(entry)
        return entry


def _allow_downloads(ww: WorkspaceWorld, analyst: Actor, *, files_per_day: int) -> None:
    with ww.hub.session() as session:
        set_quota(
            session, ww.hub.audit, Actor.cli("admin-cli"), analyst.name,
            may_download=True, files_per_day=files_per_day, clock=ww.clock,
        )  # fmt: skip


def test_console_commands_parse_their_options() -> None:
    request = build_request(
        "juki", ["住所_ward", "age:5:90", "period"], "persons", ["age=65.."], ["kaigo"], [], "t"
    )
    assert request.dimensions[1] == AgeBand(width=5, top=90)
    assert request.filters[0].low == 65 and request.links[0].dataset == "kaigo"


def test_written_exports_never_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    _write_new(target, b"a")
    with pytest.raises(FileExistsError):
        _write_new(target, b"b")
    assert target.read_bytes() == b"a" and [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_two_overlapping_tables_reveal_no_small_group(ww: WorkspaceWorld) -> None:
    """A total, then the same total without the oldest: the difference would be a few persons per ward."""
    user, actor = ww.analyst()
    for dataset in ("juki", "kaigo"):
        ww.grant(user, dataset, ww.periods)
    everyone = TableRequest(
        dataset="juki", dimensions=[Category(column="住所_ward")], links=[Link(dataset="kaigo")]
    )
    but_oldest = everyone.model_copy(update={"filters": [Filter(column="age", op="between", high=94)]})
    first = service.table_for(ww.hub, actor, everyone, clock=ww.clock)
    second = service.table_for(ww.hub, actor, but_oldest, clock=ww.clock)
    assert first.status == ReleaseStatus.RELEASED and first.shown.rows
    assert second.status == ReleaseStatus.REVIEW  # the cell key noise masks it, and a steward decides
    assert second.shown.rows == [] and second.record == {}
    with pytest.raises(service.AnalysisError, match="審査中"):
        service.export_release(ww.hub, actor, second.release_id, ExportFormat.CSV, clock=ww.clock)


def test_the_workspace_outline_names_the_granted_views(ww: WorkspaceWorld, analyst: Actor) -> None:
    outline = {v.name: v for v in service.workspace_outline(ww.hub, analyst, clock=ww.clock)}
    assert set(outline) == {"juki", "kaigo"}
    assert outline["juki"].periods == sorted(ww.periods)
    assert {"pid", "age", "住所_ward", "period"} <= set(outline["juki"].columns)


def test_a_result_the_hub_cannot_protect_goes_to_review_and_out_once_approved(ww: WorkspaceWorld) -> None:
    user, analyst = ww.analyst()  # a fresh analyst: its own quota
    ww.grant(user, "juki", ww.periods)
    with service.open_workspace(ww.hub, analyst, clock=ww.clock) as workspace:
        _send_sums_for_review(ww, analyst, workspace)


def _send_sums_for_review(ww: WorkspaceWorld, analyst: Actor, workspace: Workspace) -> None:
    sums = 'SELECT "住所_ward", sum(age) AS total FROM juki GROUP BY 1'
    with pytest.raises(service.AnalysisError, match="個票閲覧"):  # not shown automatically
        service.run_sql(ww.hub, workspace, analyst, sums, service.count_protector(ww.hub))
    sent = service.run_sql(
        ww.hub, workspace, analyst, sums, service.count_protector(ww.hub), review_reason="年齢の合計を使う"
    )
    assert sent.kind == "review" and sent.rows == [] and sent.release_id is not None
    with pytest.raises(service.AnalysisError, match="仮名ID"):  # rule 3 holds for review too
        service.run_sql(ww.hub, workspace, analyst, "SELECT pid FROM juki", service.count_protector(ww.hub),
                        review_reason="x")  # fmt: skip
    with ww.hub.session() as session:
        owner = session.scalars(select(Dataset).where(Dataset.name == "juki")).one().owner_id
        steward = User(login_id="steward-sql", display_name="審査2", role=Role.STEWARD, department_id=owner)
        session.add(steward)
        session.commit()
        session.expunge(steward)
    reviewer = Actor.for_user(steward, terminal="term-01")
    waiting = service.in_review_for(ww.hub, reviewer)
    assert sent.release_id in {r.id for r in waiting}
    assert service.in_review_for(ww.hub, analyst) == []
    service.decide_review(ww.hub, reviewer, sent.release_id, approve=True, comment="集計単位が十分大きい")
    _allow_downloads(ww, analyst, files_per_day=5)
    exported = service.export_release(ww.hub, analyst, sent.release_id, ExportFormat.CSV, clock=ww.clock)
    assert "total" in exported.content.decode("utf-8-sig")


def test_a_released_builder_table_is_published_as_open_data(
    ww: WorkspaceWorld, analyst: Actor, workspace: Workspace
) -> None:
    """The real path: a builder table's base cells (no 計) get OpenDP noise, the budget of juki's 年度 is spent."""
    from renkei.hub.analysis.opendata import preview_opendata, publish_opendata  # noqa: PLC0415

    request = TableRequest(
        dataset="juki", periods=[ww.periods[-1]], dimensions=[Category(column="住所_ward")]
    )
    built, release = _release(ww, workspace, analyst, request)
    wards = [c for c in built.cells.coordinates if TOTAL not in c]
    preview = preview_opendata(ww.hub, analyst, release.id, 0.5, clock=ww.clock)
    assert [r[0] for r in preview.rows] == sorted(str(c[0]) for c in wards)
    assert preview.error is not None and 6 < preview.error < 7
    with ww.hub.session() as session:
        owner = session.scalars(select(Dataset).where(Dataset.name == "juki")).one().owner_id
        steward = User(login_id="steward-od", display_name="公開", role=Role.STEWARD, department_id=owner)
        session.add(steward)
        session.commit()
        actor = Actor.for_user(steward, terminal="term-01")
    published = publish_opendata(ww.hub, actor, release.id, 0.5, clock=ww.clock)
    assert published.content.startswith("\ufeff住所_ward,人数,誤差（95%）".encode())
    [budget] = published.table.budgets
    assert (budget.dataset, budget.spent, budget.after) == ("juki", 0.5, 0.5)
