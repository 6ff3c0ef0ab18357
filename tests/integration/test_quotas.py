"""Download quotas on SQLite and PostgreSQL: every limit, the calendar in Japan, and races that never overshoot."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from renkei.clock import FakeClock
from renkei.errors import RenkeiError
from renkei.hub.access.authz import Actor, Forbidden
from renkei.hub.access.people import Role, User
from renkei.hub.access.quotas import (
    DEFAULT_BYTES_PER_MONTH,
    DEFAULT_FILES_PER_DAY,
    DEFAULT_ROWS_PER_FILE,
    DownloadQuota,
    QuotaExceeded,
    Reservation,
    reserve_download,
    reserve_export,
    set_quota,
)
from tests.integration.access_world import DATABASES, World, worlds

MARCH_2026 = dt.date(2026, 3, 31)
THREADS = 10


@pytest.fixture(scope="module", params=DATABASES)
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from worlds(request.param, tmp_path_factory.mktemp("quotas"))


@pytest.fixture
def world(shared_world: World) -> World:
    shared_world.clock = FakeClock()  # 2026-04-01 18:00 in Japan
    return shared_world


@pytest.fixture
def analyst(world: World) -> User:
    return world.user(Role.ANALYST)


def reserve(world: World, user: User, rows: int = 10, size: int = 100) -> Reservation:
    with world.session() as session:
        reservation = reserve_download(session, user, rows, size, world.clock)
        session.commit()
        return reservation


def quota(world: World, user: User) -> DownloadQuota:
    with world.session() as session:
        return session.get_one(DownloadQuota, user.id)


# --- each limit -------------------------------------------------------------------------------------------


def test_nobody_downloads_until_an_admin_allows_it(world: World, analyst: User) -> None:
    with pytest.raises(QuotaExceeded, match="not enabled"):
        reserve(world, analyst)
    world.allow_downloads(analyst)
    assert reserve(world, analyst).rows == 10


def test_files_per_day_reset_at_midnight_in_japan(world: World, analyst: User) -> None:
    world.allow_downloads(analyst, files_per_day=2)
    reserve(world, analyst)
    reserve(world, analyst)
    with pytest.raises(QuotaExceeded, match="at most 2 files a day") as refused:
        reserve(world, analyst)
    assert refused.value.http_status == 403
    world.clock.current = dt.datetime(2026, 4, 1, 14, 59, tzinfo=dt.UTC)  # 23:59 in Japan, same day
    with pytest.raises(QuotaExceeded):
        reserve(world, analyst)
    world.clock.advance(minutes=1)  # midnight in Japan
    reserve(world, analyst)
    assert (quota(world, analyst).usage_day, quota(world, analyst).files_today) == (dt.date(2026, 4, 2), 1)


def test_rows_per_file(world: World, analyst: User) -> None:
    world.allow_downloads(analyst, rows_per_file=100)
    reserve(world, analyst, rows=100)
    with pytest.raises(QuotaExceeded, match="at most 100 rows"):
        reserve(world, analyst, rows=101)
    assert quota(world, analyst).files_today == 1  # a refused file took nothing


def test_bytes_per_month_reset_with_the_month(world: World, analyst: User) -> None:
    world.allow_downloads(analyst, bytes_per_month=1000, files_per_day=100)
    reserve(world, analyst, size=600)
    with pytest.raises(QuotaExceeded, match="at most 1000 bytes a month"):
        reserve(world, analyst, size=401)
    reserve(world, analyst, size=400)
    world.clock.current = dt.datetime(2026, 4, 30, 15, 0, tzinfo=dt.UTC)  # 1 May in Japan
    reserve(world, analyst, size=1000)
    assert quota(world, analyst).bytes_this_month == 1000


def test_revoked_download_permission_stops_the_next_file(world: World, analyst: User) -> None:
    world.allow_downloads(analyst)
    reserve(world, analyst)
    with world.session() as session:
        set_quota(
            session,
            world.audit,
            Actor.cli("cli:operator"),
            analyst.login_id,
            may_download=False,
            clock=world.clock,
        )
    with pytest.raises(QuotaExceeded, match="not enabled"):
        reserve(world, analyst)


# --- races: the number of successes is exactly what the quota allows --------------------------------------


def race(attempts: list[Callable[[], int]]) -> tuple[int, list[BaseException]]:
    """Run the attempts at once (a barrier releases every thread together); add up what they reserved."""
    barrier = threading.Barrier(len(attempts))
    reserved: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def attempt(run: Callable[[], int]) -> None:
        barrier.wait()
        try:
            count = run()
        except BaseException as exc:
            with lock:
                failures.append(exc)
        else:
            with lock:
                reserved.append(count)

    threads = [threading.Thread(target=attempt, args=(a,)) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(reserved), failures


def reserve_twice(world: World, user: User, size: int) -> int:
    reserved = 0
    for _ in range(2):
        try:
            reserve(world, user, size=size)
        except QuotaExceeded:
            continue
        reserved += 1
    return reserved


@pytest.mark.parametrize(
    ("limits", "size", "allowed"), [({"files_per_day": 5}, 100, 5), ({"bytes_per_month": 1000}, 300, 3)]
)
def test_racing_threads_never_exceed_a_quota(
    world: World, analyst: User, limits: dict[str, int], size: int, allowed: int
) -> None:
    world.allow_downloads(analyst, **({"files_per_day": 100} | limits))
    reserved, failures = race([lambda: reserve_twice(world, analyst, size)] * THREADS)
    assert failures == []
    assert reserved == allowed
    with world.session() as session:
        count = session.scalar(select(func.count()).where(Reservation.user_id == analyst.id))
        assert count == allowed
    stored = quota(world, analyst)
    assert (stored.files_today, stored.bytes_this_month) == (allowed, allowed * size)


def test_racing_exports_are_decided_recorded_and_never_exceed_the_quota(world: World, analyst: User) -> None:
    world.allow_downloads(analyst, files_per_day=3)
    world.grant(analyst, [world.snapshot_id("juki", MARCH_2026)])
    actor = world.actor(analyst)
    snapshot = world.snapshot_id("juki", MARCH_2026)
    size = world.audit.size()

    def export() -> int:
        with world.session() as session:
            reserve_export(session, world.audit, actor, [snapshot], 10, 100, clock=world.clock)
        return 1

    succeeded, failures = race([export] * THREADS)
    assert succeeded == 3
    assert len(failures) == THREADS - 3
    assert all(isinstance(f, QuotaExceeded | Forbidden) for f in failures)
    decisions = [e for e in world.entries(size) if e.action == "authz.decision"]
    # Each export has its decision; one that lost the race after being allowed has a denial too.
    assert sum(e.result == "allowed" for e in decisions) >= 3
    assert sum(e.result == "denied" for e in decisions) == THREADS - 3
    assert {e.details["policy"] for e in decisions if e.result == "denied"} <= {
        "deny:quota",
        "deny:quota-files",
    }


# --- setting quotas ---------------------------------------------------------------------------------------


def test_only_admins_set_quotas_and_each_change_is_recorded(world: World, analyst: User) -> None:
    steward = world.user(Role.STEWARD)
    with world.session() as session, pytest.raises(Forbidden):
        set_quota(
            session, world.audit, world.actor(steward), analyst.login_id, may_download=True, clock=world.clock
        )
    size = world.audit.size()
    with world.session() as session:
        set_quota(
            session,
            world.audit,
            Actor.cli("cli:operator"),
            analyst.login_id,
            files_per_day=7,
            clock=world.clock,
        )
    stored = quota(world, analyst)
    assert (stored.may_download, stored.files_per_day, stored.rows_per_file, stored.bytes_per_month) == (
        False,
        7,
        DEFAULT_ROWS_PER_FILE,
        DEFAULT_BYTES_PER_MONTH,
    )
    assert [(e.action, e.result) for e in world.entries(size)] == [
        ("authz.decision", "allowed"),
        ("quota.set", "ok"),
    ]
    assert DEFAULT_FILES_PER_DAY > 0


def test_quota_input_is_checked(world: World, analyst: User) -> None:
    admin = Actor.cli("cli:operator")
    with world.session() as session, pytest.raises(RenkeiError, match="no user"):
        set_quota(session, world.audit, admin, "nobody", may_download=True, clock=world.clock)
    with world.session() as session, pytest.raises(RenkeiError, match="negative"):
        set_quota(session, world.audit, admin, analyst.login_id, files_per_day=-1, clock=world.clock)
