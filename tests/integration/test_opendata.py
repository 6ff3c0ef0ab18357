"""Open data with differential privacy: the budget per dataset and 年度 is enforced (also by racing threads on
SQLite and PostgreSQL), a preview spends nothing, the error is the library's, the file carries its record, and
every refusal is on the record."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opendp.accuracy import discrete_laplacian_scale_to_accuracy
from sqlalchemy import select

from renkei.clock import FakeClock
from renkei.hub.access.authz import Forbidden, InvalidTransition
from renkei.hub.access.people import Role, User
from renkei.hub.analysis.errors import AnalysisError
from renkei.hub.analysis.ledger import Release, ReleaseStatus
from renkei.hub.analysis.opendata import (
    PrivacyBudget,
    PrivacyBudgetExceededError,
    fiscal_year,
    preview_opendata,
    publish_opendata,
)
from renkei.hub.audit import AuditLog
from renkei.hub.catalog import Dataset, Department, Sender, Snapshot
from renkei.hub.settings import HubSettings
from renkei.hub.tables.request import Category, Link, TableRequest
from tests.integration.access_world import DATABASES, OWN, World, worlds

FY2025_END = dt.date(2026, 3, 31)  # 令和7年度
FY2025_MID = dt.date(2025, 9, 30)
FY2024_END = dt.date(2025, 3, 31)
_names = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from worlds(request.param, tmp_path_factory.mktemp("opendata"))


@pytest.fixture
def world(shared_world: World) -> World:
    shared_world.clock = FakeClock()
    return shared_world


@dataclass
class SmallHub:
    """The parts of a Hub the service uses, over the test's world."""

    world: World
    home: Path
    settings: HubSettings

    @property
    def audit(self) -> AuditLog:
        return self.world.audit

    @contextmanager
    def session(self) -> Iterator[Any]:
        with self.world.session() as session:
            yield session


def hub_for(world: World, tmp_path: Path, **opendata: Any) -> SmallHub:
    settings = HubSettings.model_validate({"opendata": {"epsilon_per_year": 1.0, **opendata}})
    return SmallHub(world, tmp_path, settings)


def dataset(world: World, periods: list[dt.date], department: str = OWN) -> tuple[str, list[int]]:
    """A fresh dataset (so a fresh budget) owned by ``department``, with a snapshot per period."""
    name = f"ds{next(_names)}"
    with world.session() as session:
        owner = session.scalars(select(Department).where(Department.name == department)).one()
        ds = Dataset(name=name, title=name, owner_id=owner.id, spec_hash="0" * 64, spec={}, columns=[])
        session.add(ds)
        sender = session.scalars(select(Sender)).one()
        snapshots = [
            Snapshot(
                dataset=ds,
                period=p,
                version=1,
                rows=100,
                bytes=1,
                content_sha256="a" * 64,
                spec_hash="0" * 64,
                sender=sender,
                package_id=f"{name}-{p}",
            )
            for p in periods
        ]
        session.add_all(snapshots)
        session.commit()
        return name, [s.id for s in snapshots]


CELLS = [
    {"c": ["中央区"], "n": 120, "s": "ok"},
    {"c": ["東灘区"], "n": 80, "s": "ok"},
    {"c": ["北区"], "n": 2, "s": "ok"},
    {"c": ["計"], "n": 202, "s": "ok"},
]


def release(
    world: World,
    requester: User,
    datasets: list[str],
    snapshot_ids: list[int],
    *,
    links: list[str] = (),  # type: ignore[assignment]
    status: ReleaseStatus = ReleaseStatus.RELEASED,
    measure: str = "persons",
) -> int:
    request = TableRequest(
        dataset=datasets[0],
        dimensions=[Category(column="住所_ward")],
        links=[Link(dataset=d) for d in links],
        measure={"kind": measure, "column": None if measure == "persons" else "x"},  # type: ignore[arg-type]
        title="区別人口",
    )
    with world.session() as session:
        row = Release(
            user_id=requester.id, kind="table", definition=request.model_dump(mode="json"), sql="SELECT 1",
            snapshot_ids=snapshot_ids, datasets=sorted(datasets), cells=CELLS,
            shown={"header": ["住所_ward", "人数"], "rows": [["中央区", 120]], "notes": []},
            record={"method": "perturbation"}, record_sha256="b" * 64, status=status,
            created_at=world.clock.now(),
        )  # fmt: skip
        session.add(row)
        session.commit()
        return row.id


@pytest.fixture
def people(world: World) -> tuple[User, User]:
    return world.user(Role.ANALYST), world.user(Role.STEWARD)


class Case(NamedTuple):
    """What most tests start from: an analyst's released table over a fresh dataset's one snapshot (令和7年度)."""

    analyst: User
    steward: User
    hub: SmallHub
    name: str
    snapshots: list[int]
    release_id: int


@pytest.fixture
def case(world: World, tmp_path: Path, people: tuple[User, User]) -> Case:
    analyst, steward = people
    name, snapshots = dataset(world, [FY2025_END])
    hub = hub_for(world, tmp_path)
    return Case(analyst, steward, hub, name, snapshots, release(world, analyst, [name], snapshots))


def spent(world: World, name: str, year: int) -> float:
    with world.session() as session:
        value = session.scalar(
            select(PrivacyBudget.spent_micro)
            .join(Dataset, PrivacyBudget.dataset_id == Dataset.id)
            .where(Dataset.name == name, PrivacyBudget.fiscal_year == year)
        )
    return 0.0 if value is None else value / 1_000_000


def test_fiscal_year_runs_april_to_march() -> None:
    assert fiscal_year(dt.date(2025, 4, 1)) == 2025
    assert fiscal_year(dt.date(2026, 3, 31)) == 2025
    assert fiscal_year(dt.date(2025, 3, 31)) == 2024


def test_a_preview_shows_values_error_and_budget_and_spends_nothing(world: World, case: Case) -> None:
    analyst, steward, hub, name, release_id = case.analyst, case.steward, case.hub, case.name, case.release_id
    size = world.audit.size()
    for _ in range(3):
        table = preview_opendata(hub, world.actor(analyst), release_id, 0.5, clock=world.clock)
    assert spent(world, name, 2025) == 0.0
    with world.session() as session:  # no budget row was even made
        assert (
            session.scalars(
                select(PrivacyBudget)
                .join(Dataset, PrivacyBudget.dataset_id == Dataset.id)
                .where(Dataset.name == name)
            ).all()
            == []
        )
    assert [(e.action, e.result) for e in world.entries(size)] == [("authz.decision", "allowed")] * 3
    assert table.header == ["住所_ward", "人数", "誤差（95%）"]
    assert [r[0] for r in table.rows] == ["中央区", "北区", "東灘区"]  # base cells only: no 計
    assert table.epsilon == 0.5
    scale = table.record["differential_privacy"]["scale"]
    assert scale == 2.0  # sensitivity 1 (one snapshot), ε = 0.5
    assert table.error == discrete_laplacian_scale_to_accuracy(scale, 0.05)
    assert table.record["differential_privacy"]["error"] == table.error
    assert all(r[2] == "±6.5" for r in table.rows)  # 6.4296… rounded up
    [budget] = table.budgets
    assert (budget.dataset, budget.fiscal_year, budget.total, budget.spent, budget.after) == (
        name, 2025, 1.0, 0.0, 0.5
    )  # fmt: skip
    assert table.record["disclosure_control"]["threshold"] == 10
    # the requester sees no draw (repeated previews would average the noise away); the publisher sees one
    assert [r[1] for r in table.rows] == ["—"] * 3
    assert any("average the noise away" in n for n in table.notes)
    drawn = preview_opendata(hub, world.actor(steward), release_id, 0.5, clock=world.clock)
    assert all(r[1] == "X" or (isinstance(r[1], int) and r[1] >= 10) for r in drawn.rows)
    assert [r[0] for r in drawn.rows] == [r[0] for r in table.rows]


def test_the_budget_is_spent_on_publishing_and_overspending_is_refused_and_audited(
    world: World, case: Case
) -> None:
    steward, hub, name, release_id = case.steward, case.hub, case.name, case.release_id
    actor = world.actor(steward)
    publish_opendata(hub, actor, release_id, 0.6, clock=world.clock)
    assert spent(world, name, 2025) == 0.6
    size = world.audit.size()
    with pytest.raises(PrivacyBudgetExceededError, match=r"0\.4"):
        publish_opendata(hub, actor, release_id, 0.5, clock=world.clock)
    assert spent(world, name, 2025) == 0.6
    [refusal] = [e for e in world.entries(size) if e.action == "opendata.publish"]
    assert refusal.details["outcome"] == "refused"
    with pytest.raises(PrivacyBudgetExceededError):  # the preview says so too
        preview_opendata(hub, actor, release_id, 0.5, clock=world.clock)
    publish_opendata(hub, actor, release_id, 0.4, clock=world.clock)  # exactly what is left
    assert spent(world, name, 2025) == 1.0


def test_a_linked_table_spends_on_every_dataset_it_reads(
    world: World, tmp_path: Path, people: tuple[User, User]
) -> None:
    analyst, steward = people
    hub = hub_for(world, tmp_path)
    base, base_snapshots = dataset(world, [FY2024_END, FY2025_END])
    linked, linked_snapshots = dataset(world, [FY2025_END])
    release_id = release(world, analyst, [base, linked], base_snapshots + linked_snapshots, links=[linked])
    with world.session() as session:  # the link rates a linked table's release record carries (docs/risk.md)
        session.get_one(Release, release_id).record = {"linkage": [{"dataset": linked, "rate": 0.967}]}
        session.commit()
    published = publish_opendata(hub, world.actor(steward), release_id, 0.25, clock=world.clock)
    assert (spent(world, base, 2024), spent(world, base, 2025), spent(world, linked, 2025)) == (0.25,) * 3
    budgets = {(b["dataset"], b["fiscal_year"]) for b in published.table.record["budget"]}
    assert budgets == {(base, 2024), (base, 2025), (linked, 2025)}
    assert published.table.record["differential_privacy"]["l1_sensitivity"] == 1  # one snapshot per 年度
    assert json.loads(published.record_json)["linkage"] == [{"dataset": linked, "rate": 0.967}]


def test_two_snapshots_in_one_year_double_the_sensitivity(
    world: World, tmp_path: Path, people: tuple[User, User]
) -> None:
    analyst, _ = people
    name, snapshots = dataset(world, [FY2025_MID, FY2025_END])
    release_id = release(world, analyst, [name], snapshots)
    table = preview_opendata(
        hub_for(world, tmp_path), world.actor(analyst), release_id, 0.5, clock=world.clock
    )
    assert table.record["differential_privacy"]["l1_sensitivity"] == 2
    assert table.record["differential_privacy"]["scale"] == 4.0


def test_racing_publishers_never_overspend(world: World, case: Case) -> None:
    steward, hub, name, release_id = case.steward, case.hub, case.name, case.release_id
    actor = world.actor(steward)

    def publish() -> None:
        publish_opendata(hub, actor, release_id, 0.3, clock=world.clock)

    succeeded, failures = race([publish] * 6)
    assert succeeded == 3  # 3 × 0.3 ≤ 1.0 < 4 × 0.3
    assert failures and all(isinstance(f, PrivacyBudgetExceededError) for f in failures)
    assert spent(world, name, 2025) == pytest.approx(0.9)


def race(attempts: list[Callable[[], None]]) -> tuple[int, list[BaseException]]:
    barrier = threading.Barrier(len(attempts))
    done: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def attempt(run: Callable[[], None]) -> None:
        barrier.wait()
        try:
            run()
        except BaseException as exc:
            with lock:
                failures.append(exc)
        else:
            with lock:
                done.append(1)

    threads = [threading.Thread(target=attempt, args=(a,)) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(done), failures


def test_the_published_file_carries_its_release_record(world: World, case: Case) -> None:
    steward, hub, snapshots, release_id = case.steward, case.hub, case.snapshots, case.release_id
    size = world.audit.size()
    published = publish_opendata(hub, world.actor(steward), release_id, 0.5, clock=world.clock)
    text = published.content.decode("utf-8")
    assert text.startswith("\ufeff住所_ward,人数,誤差（95%）\r\n")
    record = json.loads(published.record_json)
    assert published.record_name in text
    assert hashlib.sha256(published.record_json).hexdigest() in text
    dp = record["differential_privacy"]
    assert (dp["mechanism"], dp["library"], dp["epsilon"], dp["delta"]) == (
        "discrete_laplace",
        "opendp",
        0.5,
        0.0,
    )
    assert dp["library_version"]
    assert record["disclosure_control"]["threshold"] == 10
    assert record["source"]["snapshots"][0]["snapshot"] == snapshots[0]
    assert record["source"]["release"] == release_id
    assert record["budget_after"][0]["left_after"] == 0.5
    # every published count is either suppressed or at least the threshold
    for row in published.table.rows:
        assert row[1] == "X" or int(row[1]) >= 10
    [entry] = [e for e in world.entries(size) if e.action == "opendata.publish"]
    assert entry.details["sha256"] == published.sha256
    assert entry.details["outcome"] == "published"


def test_who_may_publish_and_every_denial_is_recorded(world: World, case: Case) -> None:
    analyst, steward, hub, name, snapshots, release_id = (
        case.analyst,
        case.steward,
        case.hub,
        case.name,
        case.snapshots,
        case.release_id,
    )
    for user in (analyst, world.user(Role.ADMIN), world.user(Role.STEWARD, "保険年金課")):
        size = world.audit.size()
        with pytest.raises(Forbidden):
            publish_opendata(hub, world.actor(user), release_id, 0.1, clock=world.clock)
        [decision] = [e for e in world.entries(size) if e.action == "authz.decision"]
        assert decision.result == "denied"
        assert decision.details["access"] == "opendata.publish"
    # a steward cannot publish a table reading another department's data too
    other, other_snapshots = dataset(world, [FY2025_END], "保険年金課")
    linked = release(world, analyst, [name, other], snapshots + other_snapshots, links=[other])
    with pytest.raises(Forbidden):
        publish_opendata(hub, world.actor(steward), linked, 0.1, clock=world.clock)
    in_review = release(world, analyst, [name], snapshots, status=ReleaseStatus.REVIEW)
    with pytest.raises(InvalidTransition):
        publish_opendata(hub, world.actor(steward), in_review, 0.1, clock=world.clock)
    # A release that does not exist and one the caller may not see get the same answer (no oracle on ids),
    # each a recorded denial.
    outsider = world.actor(world.user(Role.STEWARD, "保険年金課"))
    answers = []
    for release_id_ in (999_999, release_id):
        for call in (preview_opendata, publish_opendata):
            size = world.audit.size()
            with pytest.raises(Forbidden) as refused:
                call(hub, outsider, release_id_, 0.1, clock=world.clock)
            answers.append(str(refused.value).replace(str(release_id_), "N"))
            [decision] = [e for e in world.entries(size) if e.action == "authz.decision"]
            assert decision.result == "denied"
    assert answers[:2] == answers[2:]
    assert spent(world, name, 2025) == 0.0


def test_what_cannot_be_published_with_differential_privacy(
    world: World, tmp_path: Path, people: tuple[User, User]
) -> None:
    analyst, steward = people
    hub = hub_for(world, tmp_path)
    name, snapshots = dataset(world, [FY2025_END])
    actor = world.actor(steward)
    means = release(world, analyst, [name], snapshots, measure="mean")
    with pytest.raises(AnalysisError, match="person counts"):
        preview_opendata(hub, actor, means, 0.1, clock=world.clock)
    counts = release(world, analyst, [name], snapshots)
    for epsilon in (0.0, 1.5):
        with pytest.raises(AnalysisError, match="epsilon must be"):
            preview_opendata(hub, actor, counts, epsilon, clock=world.clock)
    with pytest.raises(AnalysisError, match="requires differential privacy"):
        preview_opendata(hub, actor, counts, None, clock=world.clock)
    # a policy without differential privacy publishes the protected table as it is, spending nothing
    as_is = publish_opendata(
        hub_for(world, tmp_path, differential_privacy=False), actor, counts, None, clock=world.clock
    )
    assert as_is.table.rows == [["中央区", 120]]
    assert json.loads(as_is.record_json)["differential_privacy"] is None
    assert spent(world, name, 2025) == 0.0
