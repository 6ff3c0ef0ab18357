"""The workspace on a real hub with imported snapshots: exactly the granted views, audited queries, grants
re-checked on every query, the wall-clock limit (interrupt, then kill), and workspaces that do not disturb
each other. The hostile probes are in test_workspace_escape.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from renkei.hub.audit import AuditEntry
from renkei.hub.disclosure.record_keys import RECORD_KEY_FILE
from renkei.hub.home import Hub
from renkei.hub.vault import SnapshotRef
from renkei.hub.workspace import lockdown, process
from renkei.hub.workspace.errors import (
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    WorkspaceClosed,
    WorkspaceError,
)
from renkei.hub.workspace.gate import SnapshotCache
from renkei.hub.workspace.reuse import ControlResults
from renkei.hub.workspace.slots import QuerySlots, WorkspaceBusy
from renkei.hub.workspace.workspace import Workspace, WorkspaceLimits
from renkei.manifest import DATA_FILE
from tests.integration.hub_world import store_without_record_keys
from tests.integration.workspace_world import WorkspaceWorld, make_workspace_world

LIMITS = WorkspaceLimits(memory_mib=256, control_memory_mib=128, threads=1, timeout=1.5, grace=1.0)
ENDLESS = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceWorld:
    return make_workspace_world(tmp_path_factory.mktemp("workspace"))


@pytest.fixture
def workspace(world: WorkspaceWorld) -> Iterator[Workspace]:
    """juki in both periods, kaigo in the first only."""
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods)
    world.grant(user, "kaigo", world.periods[:1])
    with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:
        yield ws


def entries(world: WorkspaceWorld, action: str, resource: str | None = None) -> list[AuditEntry]:
    with world.hub.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        if resource is not None:
            query = query.where(AuditEntry.resource == resource)
        return list(session.scalars(query))


def test_views_and_periods_are_exactly_the_granted_ones(world: WorkspaceWorld, workspace: Workspace) -> None:
    first, second = (f"{p:%Y%m%d}" for p in world.periods)
    assert {v.name for v in workspace.views()} == {
        "juki",
        "kaigo",
        f"juki_{first}",
        f"juki_{second}",
        f"kaigo_{first}",
    }
    assert set(workspace.schema()) == {"juki", "kaigo"}
    assert workspace.schema()["juki"]["period"] == "DATE"
    assert "period" not in workspace.views()[2].columns  # per-period views are the snapshot as stored
    periods = workspace.query("SELECT DISTINCT period FROM kaigo ORDER BY 1")["period"].to_pylist()
    assert periods == world.periods[:1]
    counts = workspace.query("SELECT period, count(*) AS n FROM juki GROUP BY 1 ORDER BY 1").to_pylist()
    assert counts == [{"period": p, "n": world.snapshot("juki", p).rows} for p in world.periods]
    with pytest.raises(QueryFailed, match="CatalogException"):
        workspace.query(f"SELECT count(*) FROM kaigo_{second}")  # stored in the vault, not granted
    opened = entries(world, "workspace.open", f"workspace/{workspace.id}")
    assert len(opened) == 1
    assert sorted(opened[0].details["snapshots"]) == sorted(o.resource for o in workspace.opened)


def test_opening_is_authorized_and_row_level_grants_use_read_rows(world: WorkspaceWorld) -> None:
    user, actor = world.analyst()
    world.grant(user, "kaigo", world.periods, row_level=True)
    with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:
        assert all(v.row_level for v in ws.views())
        assert {o.action for o in ws.opened} == {"snapshot.read_rows"}
    decisions = [e for e in entries(world, "authz.decision") if e.actor == actor.name]
    assert decisions and {e.details["access"] for e in decisions} == {"snapshot.read_rows"}


def test_a_user_without_grants_gets_no_workspace(world: WorkspaceWorld) -> None:
    _, actor = world.analyst()
    with pytest.raises(WorkspaceError, match="no active grant"):
        Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS)


def test_only_one_select_passes_the_first_filter(world: WorkspaceWorld, workspace: Workspace) -> None:
    for sql in [
        "SELECT 1; SELECT 2",
        "PRAGMA version",
        "CREATE TABLE t AS SELECT 1",
        "UPDATE EXTENSIONS",
        "DROP VIEW juki",
    ]:
        with pytest.raises(QueryRefused):
            workspace.query(sql)
    refused = entries(world, "workspace.query", f"workspace/{workspace.id}")
    assert [e.result for e in refused] == ["rejected"] * 5
    assert workspace.query("SELECT count(*) AS n FROM juki")["n"].to_pylist() == [sum(
        world.snapshot("juki", p).rows for p in world.periods)]  # fmt: skip


def test_queries_are_audited_with_text_snapshots_and_rows_never_values(
    world: WorkspaceWorld, workspace: Workspace
) -> None:
    first = f"{world.periods[0]:%Y%m%d}"
    pids = workspace.query(f"SELECT pid FROM juki_{first} ORDER BY pid LIMIT 3")["pid"].to_pylist()
    entry = entries(world, "workspace.query", f"workspace/{workspace.id}")[-1]
    assert entry.details["sql"] == [f"SELECT pid FROM juki_{first} ORDER BY pid LIMIT 3"]
    assert entry.details["snapshots"] == [world.snapshot("juki", world.periods[0]).resource]
    assert entry.details["rows"] == 3 and entry.actor == workspace.actor.name
    assert not any(pid in json.dumps(entry.details) for pid in pids)
    with pytest.raises(QueryFailed):
        workspace.query("SELECT pid::INTEGER FROM juki")  # the conversion error would name a pid
    failed = entries(world, "workspace.query", f"workspace/{workspace.id}")[-1]
    assert failed.result == "error" and not any(pid[:8] in json.dumps(failed.details) for pid in pids)
    with pytest.raises(QueryFailed) as caught:
        workspace.query("SELECT pid::INTEGER FROM juki")
    assert "withheld" in caught.value.en and pids[0] not in str(caught.value)


def test_max_rows_caps_the_result(workspace: Workspace) -> None:
    assert workspace.query("SELECT * FROM range(100000)", max_rows=7).num_rows == 7


def test_revocation_closes_the_workspace_on_the_next_query(world: WorkspaceWorld) -> None:
    user, actor = world.analyst()
    grant = world.grant(user, "juki", world.periods[:1])
    ws = Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS)
    assert ws.query("SELECT 1 AS x").num_rows == 1
    world.revoke(grant)
    with pytest.raises(WorkspaceClosed, match="revoked"):
        ws.query("SELECT 1 AS x")  # even a query that reads no snapshot
    assert ws.closed and ws.worker is not None and ws.worker.process.poll() is not None
    with pytest.raises(WorkspaceClosed):
        ws.control_query("SELECT 1")
    closed = entries(world, "workspace.closed", f"workspace/{ws.id}")
    assert len(closed) == 1 and "revoked" in closed[0].details["reason"]


def test_expiry_closes_the_workspace(world: WorkspaceWorld) -> None:
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods[:1], ends=3)
    ws = Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS)
    try:
        world.clock.advance(days=5)
        with pytest.raises(WorkspaceClosed, match="expired"):
            ws.query("SELECT count(*) FROM juki")
    finally:
        world.clock.advance(days=-5)
        ws.close()


def test_the_wall_clock_limit_interrupts_and_the_workspace_survives(workspace: Workspace) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as caught:
        workspace.query(ENDLESS)
    assert not caught.value.closed and time.monotonic() - started < LIMITS.timeout + LIMITS.grace + 1
    assert workspace.query("SELECT 42 AS x")["x"].to_pylist() == [42]


def test_a_worker_that_ignores_the_interrupt_is_killed_and_the_workspace_closed(
    world: WorkspaceWorld, workspace: Workspace
) -> None:
    assert workspace.worker is not None
    os.kill(workspace.worker.pid, signal.SIGSTOP)  # it can no longer answer, not even the interrupt
    with pytest.raises(QueryTimeout) as caught:
        workspace.query("SELECT 1")
    assert caught.value.closed and workspace.closed
    assert workspace.worker.process.returncode == -signal.SIGKILL
    with pytest.raises(WorkspaceClosed):
        workspace.query("SELECT 1")


def test_a_killed_worker_closes_its_workspace_only(world: WorkspaceWorld, workspace: Workspace) -> None:
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods[:1])
    with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as other:
        assert workspace.worker is not None
        os.kill(workspace.worker.pid, signal.SIGKILL)
        with pytest.raises(WorkspaceClosed, match="worker"):
            workspace.query("SELECT 1")
        assert other.query("SELECT count(*) AS n FROM juki")["n"].to_pylist()[0] > 0


def test_a_second_workspace_answers_while_one_runs_a_heavy_query(
    world: WorkspaceWorld, workspace: Workspace
) -> None:
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods[:1])
    heavy = Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run_catching(heavy, ENDLESS, outcome))
    thread.start()
    try:
        time.sleep(0.3)  # the heavy query is running
        started = time.monotonic()
        assert workspace.query("SELECT count(*) AS n FROM juki")["n"].to_pylist()[0] > 0
        assert time.monotonic() - started < 1.0
        assert thread.is_alive()
    finally:
        thread.join()
        heavy.close()
    assert isinstance(outcome[0], QueryTimeout)


def _run_catching(ws: Workspace, sql: str, into: list[BaseException]) -> None:
    try:
        ws.query(sql)
    except BaseException as e:
        into.append(e)


def test_control_queries_see_record_keys_user_queries_do_not(
    world: WorkspaceWorld, workspace: Workspace
) -> None:
    keys = workspace.control_query(
        "SELECT count(*) AS n, count(DISTINCT pid) AS d FROM _record_keys"
    ).to_pylist()
    ids = workspace.control_query(
        "SELECT count(DISTINCT id) AS n FROM (SELECT pid AS id FROM juki UNION SELECT household_id FROM juki "
        "UNION SELECT pid FROM kaigo)"
    ).to_pylist()
    assert keys[0]["n"] == keys[0]["d"] == ids[0]["n"]
    with pytest.raises(QueryFailed, match="_record_keys"):
        workspace.query("SELECT * FROM _record_keys")


def test_the_record_keys_are_read_from_the_vault_not_made_from_the_hub_key(world: WorkspaceWorld) -> None:
    """The keys are made once, at import: a workspace needs neither the hub-held key nor the data for them."""
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods)
    key_file = world.hub.home / RECORD_KEY_FILE
    hidden = key_file.rename(key_file.with_name("record_key.key.hidden"))
    try:
        with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:
            assert ws.query("SELECT count(*) AS n FROM juki").num_rows == 1  # the first query …
            stored = ws.control_query("SELECT count(*) AS n FROM _record_keys").to_pylist()  # … then the keys
            ids = ws.control_query(
                "SELECT count(DISTINCT id) AS n FROM (SELECT pid AS id FROM juki UNION SELECT household_id FROM juki)"
            ).to_pylist()
    finally:
        hidden.rename(key_file)
    assert stored == ids and stored[0]["n"] > 0


def test_a_snapshot_stored_without_record_keys_refuses_control_but_not_queries(
    world: WorkspaceWorld, tmp_path: Path
) -> None:
    first = world.snapshot("juki", world.periods[0])
    legacy = dt.date(2030, 1, 1)
    store_without_record_keys(
        world.hub, SnapshotRef("juki", first.period, first.version), SnapshotRef("juki", legacy, 1), tmp_path
    )
    user, actor = world.analyst()
    world.grant(user, "juki", [world.periods[0], legacy])
    with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:
        assert ws.query("SELECT count(*) AS n FROM juki").to_pylist() == [{"n": 2 * first.rows}]
        for _ in range(2):  # the refusal stays the same; the workspace stays open
            with pytest.raises(WorkspaceError, match="no stored record keys") as refused:
                ws.control_query("SELECT count(*) FROM _record_keys")
            assert "juki/2030-01-01/v1" in refused.value.en and not ws.closed
        assert ws.query("SELECT 1 AS x").num_rows == 1
        assert ws.unique_units() == {"juki"}  # known without the record keys (a kept table needs no keys)


def test_lockdown_that_does_not_read_back_refuses_to_open(
    world: WorkspaceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods[:1])
    wrong = tuple(
        (n, v, True) if n == "enable_external_access" else (n, v, e)
        for n, v, e in lockdown.FIXED_BEFORE_LIMITS
    )
    monkeypatch.setattr(lockdown, "FIXED_BEFORE_LIMITS", wrong)
    with pytest.raises(WorkspaceError, match="enable_external_access reads back False"):
        Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS)
    unknown = (*wrong[1:], ("a_setting_this_duckdb_lacks", "false", False))
    monkeypatch.setattr(lockdown, "FIXED_BEFORE_LIMITS", unknown)
    with pytest.raises(WorkspaceError, match="cannot apply sandbox setting a_setting_this_duckdb_lacks"):
        Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS)
    assert not [e for e in entries(world, "workspace.open") if e.actor == actor.name]


def test_a_hub_not_running_as_root_refuses_unless_same_user_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(WorkspaceError, match="RENKEI_WORKSPACE_SAME_USER"):
        process.isolation(allow_same_user=False)


def test_the_worker_runs_as_nobody_with_nothing_inherited(workspace: Workspace, tmp_path: Path) -> None:
    assert workspace.worker is not None
    status = Path(f"/proc/{workspace.worker.pid}/status").read_text()
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status.splitlines()}
    assert fields["Uid"] == ["65534"] * 4 and fields["Gid"] == ["65534"] * 4 and fields["Groups"] == []
    assert fields["NoNewPrivs"] == ["1"]
    assert Path(f"/proc/{workspace.worker.pid}/environ").read_bytes() == b""
    proc = Path(f"/proc/{workspace.worker.pid}")
    assert (proc / "cwd").readlink() == Path("/")
    limits = Path(f"/proc/{workspace.worker.pid}/limits").read_text()
    assert "Max file size             0" in limits and "Max core file size        0" in limits
    memfds = {int(fd.name) for fd in (proc / "fd").iterdir() if str(fd.readlink()).startswith("/memfd:")}
    assert memfds == {o.fd for o in workspace.opened}  # the record keys come as Arrow bytes, not as a memfd


@contextlib.contextmanager
def nobody_tasks(count: int) -> Iterator[None]:
    """``count`` more tasks of the workers' user (sleeping processes), as other workspaces' workers would be."""
    sleepers = [
        subprocess.Popen(["sleep", "120"], user=process.NOBODY, group=process.NOBODY, extra_groups=[])
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


TINY_NPROC = LIMITS.model_copy(update={"max_processes": 8})  # the lowest the setting allows


@pytest.mark.skipif(os.geteuid() != 0, reason="the workers run as nobody only under a root hub")
def test_a_workspace_refused_at_the_process_limit_says_so_and_names_the_setting(
    world: WorkspaceWorld,
) -> None:
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods)
    with nobody_tasks(8), pytest.raises(process.WorkerGone) as refused:  # nobody at its limit already
        Workspace.open(world.hub, actor, clock=world.clock, limits=TINY_NPROC)
    assert "process limit workspace.max_processes = 8" in refused.value.en
    assert (
        "RENKEI_WORKSPACE_MAX_PROCESSES" in refused.value.en and "workspace.max_processes" in refused.value.ja
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the workers run as nobody only under a root hub")
def test_a_worker_dying_at_open_under_the_process_limit_says_the_limit_was_reached(
    world: WorkspaceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker starts (below the limit), then dies without a word at open, as one does when it cannot create
    its libraries' threads; the parent finds its user at the limit and says so instead of "stopped answering".

    The death and the count are staged (the worker is killed as it starts; nobody's tasks are reported near the
    limit): whether the kernel stops a thread at RLIMIT_NPROC depends on what else runs as nobody on the machine."""
    from renkei.hub.workspace import workspace as module  # noqa: PLC0415

    def dying(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        started = process.spawn(*args, **kwargs)  # type: ignore[arg-type]
        started.kill()
        return started

    counted: list[int] = []

    def near_the_limit(uid: int) -> int:
        counted.append(uid)
        return 0 if len(counted) == 1 else TINY_NPROC.max_processes - process.WORKER_TASKS

    monkeypatch.setattr(module, "spawn", dying)
    monkeypatch.setattr(process, "user_tasks", near_the_limit)
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods)
    with pytest.raises(process.WorkerGone) as gone:
        Workspace.open(world.hub, actor, clock=world.clock, limits=TINY_NPROC)
    assert counted == [process.NOBODY, process.NOBODY]  # before the start, and after the death
    assert "reached its process limit workspace.max_processes = 8" in gone.value.en
    assert "stopped answering" not in gone.value.en
    monkeypatch.undo()
    with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:  # the default limit: opens
        assert ws.worker is not None


def test_a_worker_dying_at_open_far_below_the_limit_is_not_blamed_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "user_tasks", lambda uid: 0)  # nobody has no other tasks
    candidate = process.Isolation("python", (), process.NOBODY, process.NOBODY)
    assert process.process_limit_check(candidate, 128, died=True) is None
    assert process.process_limit_check(candidate, 128, died=False) is None
    assert process.process_limit_check(candidate, 20, died=True) is not None
    same_user = process.Isolation("python", (), None, None)
    assert process.process_limit_check(same_user, 8, died=True) is None  # same-user workers set no limit


def worker_memfds(workspace: Workspace) -> dict[int, int]:
    """The worker's memfd descriptors → their inodes (one inode is one plaintext copy)."""
    assert workspace.worker is not None
    proc = Path(f"/proc/{workspace.worker.pid}/fd")
    return {
        int(fd.name): fd.stat().st_ino for fd in proc.iterdir() if str(fd.readlink()).startswith("/memfd:")
    }


def test_workspaces_over_the_same_snapshots_share_one_decryption(
    world: WorkspaceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SnapshotCache(world.hub.vault, idle=0)
    monkeypatch.setattr(world.hub, "snapshot_cache", cache)
    first_period = world.periods[:1]
    user_a, actor_a = world.analyst()
    world.grant(user_a, "juki", world.periods)
    user_b, actor_b = world.analyst()
    world.grant(user_b, "juki", world.periods)
    world.grant(user_b, "kaigo", first_period)
    user_c, actor_c = world.analyst()
    world.grant(user_c, "kaigo", first_period)
    juki = {(SnapshotRef("juki", p, 1), DATA_FILE) for p in world.periods}
    with Workspace.open(world.hub, actor_a, clock=world.clock, limits=LIMITS) as a:
        assert cache.decryptions == 2
        with (
            Workspace.open(world.hub, actor_b, clock=world.clock, limits=LIMITS) as b,
            Workspace.open(world.hub, actor_c, clock=world.clock, limits=LIMITS) as c,
        ):
            assert cache.decryptions == 3  # juki was decrypted for a; kaigo once for b and c
            in_a, in_b, in_c = worker_memfds(a), worker_memfds(b), worker_memfds(c)
            assert len(in_a) == 2 and len(in_b) == 3 and len(in_c) == 1  # each worker: its own grants only
            assert set(in_a.values()) < set(in_b.values())  # the same juki copies, not new ones
            assert set(in_c.values()) < set(in_b.values()) and not set(in_c.values()) & set(in_a.values())
            count = "SELECT count(*) AS n FROM juki"
            assert a.query(count).to_pylist() == b.query(count).to_pylist()
            with pytest.raises(QueryFailed, match="CatalogException"):
                c.query(count)  # c holds no juki descriptor at all
        data = {key for key in cache.cached() if key[1] == DATA_FILE}  # (the record keys load meanwhile)
        assert data == juki  # b and c closed: kaigo is closed, a still uses juki
    deadline = time.monotonic() + 30  # a record-key merge that was running returns its lease as it stops
    while cache.cached() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cache.cached() == {}  # the last workspace closed: no plaintext left in the hub


def test_the_merged_record_keys_are_shared_by_workspaces_over_the_same_snapshots(
    world: WorkspaceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SnapshotCache(world.hub.vault, idle=60)
    monkeypatch.setattr(world.hub, "snapshot_cache", cache)
    keys = "SELECT count(*) AS n FROM _record_keys"
    counts = []
    for _ in range(2):
        user, actor = world.analyst()
        world.grant(user, "juki", world.periods)
        with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as ws:
            counts.append(ws.control_query(keys).to_pylist())
            ws.unique_units()
    assert counts[0] == counts[1] and counts[0][0]["n"] > 0
    assert cache.decryptions == 4  # two periods' data and their record keys, once for both workspaces
    assert len(cache.derived_kept()) == 2  # the merged keys and which snapshots have no repeated pid
    cache.clear()
    assert cache.cached() == {} and cache.derived_kept() == []


def test_the_datasets_without_a_repeated_pid_are_known_once_the_keys_are_in(
    workspace: Workspace,
) -> None:
    repeated = workspace.control_query(
        "SELECT d, bool_or(n > 1) AS r FROM (SELECT 'juki' AS d, period, pid, count(*) AS n FROM juki "
        "WHERE pid IS NOT NULL GROUP BY ALL UNION ALL SELECT 'kaigo', period, pid, count(*) FROM kaigo "
        "WHERE pid IS NOT NULL GROUP BY ALL) GROUP BY d"
    ).to_pylist()
    assert "juki" in workspace.unique_units()
    assert workspace.unique_units() == {r["d"] for r in repeated if not r["r"]}


def test_a_query_waits_for_a_slot_without_its_wall_clock_running_and_a_long_wait_is_refused(
    world: WorkspaceWorld, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = QuerySlots(1, wait=LIMITS.timeout * 4)
    monkeypatch.setattr(world.hub, "query_slots", slots)
    answered = []
    with slots.slot():
        waiting = threading.Thread(target=lambda: answered.append(workspace.query("SELECT 42 AS x")))
        waiting.start()
        while slots.waiting == 0:
            time.sleep(0.01)
        time.sleep(LIMITS.timeout + 0.5)  # past the query's own limit, which has not started
        assert not answered
    waiting.join(10)
    assert answered and answered[0].to_pylist() == [{"x": 42}]
    slots.wait = 0.1
    with slots.slot(), pytest.raises(WorkspaceBusy, match="busy"):
        workspace.query("SELECT 43 AS x")
    last = entries(world, "workspace.query", f"workspace/{workspace.id}")[-1]
    assert last.result == "error" and "WorkspaceBusy" in last.details["error"]
    assert workspace.query("SELECT 44 AS x").to_pylist() == [{"x": 44}]  # the workspace stays open


def test_a_control_result_is_reused_over_the_same_snapshots_and_still_decided_and_audited(
    world: WorkspaceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = ControlResults(1 << 20)
    monkeypatch.setattr(world.hub, "control_results", results)
    sql = "SELECT period, count(*) AS n FROM juki GROUP BY ALL ORDER BY ALL"
    opened, grants, answers = [], [], []
    try:
        for _ in range(2):
            user, actor = world.analyst()
            grants.append(world.grant(user, "juki", world.periods))
            opened.append(Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS))
            answers.append(opened[-1].control_query(sql, reusable=True).to_pylist())
        assert answers[0] == answers[1] and len(answers[0]) == len(world.periods)
        assert (results.hits, results.misses) == (1, 1)
        first, second = (entries(world, "workspace.query", f"workspace/{w.id}")[-1] for w in opened)
        assert "reused" not in first.details and second.details["reused"] is True
        assert second.details["db"] == "control" and second.details["snapshots"] == first.details["snapshots"]
        opened[1].control_query(sql)  # not declared reusable: it runs
        assert results.hits == 1
        user, actor = world.analyst()
        world.grant(user, "juki", world.periods[:1])
        with Workspace.open(world.hub, actor, clock=world.clock, limits=LIMITS) as other:
            assert other.control_query(sql, reusable=True).num_rows == 1  # other snapshots: computed
        assert (results.hits, results.misses) == (1, 2)
        world.revoke(grants[1])
        with pytest.raises(WorkspaceClosed, match="revoked"):
            opened[1].control_query(sql, reusable=True)  # a kept result is handed out only under a grant
        assert results.hits == 2  # it was found, and refused by the decision
    finally:
        for ws in opened:
            ws.close()


def test_a_hub_opened_by_a_relative_path_decrypts_its_snapshots(
    world: WorkspaceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`renkei serve --home hub`: the decrypting children run in "/", so the home must be absolute for them
    (the 1.5M-city load run of stop 21 failed every table with "cannot read the stored file" before)."""
    monkeypatch.chdir(world.hub.home.parent)
    hub = Hub(Path(world.hub.home.name))
    assert hub.home == world.hub.home.absolute()
    user, actor = world.analyst()
    world.grant(user, "juki", world.periods[:1])
    try:
        with Workspace.open(hub, actor, clock=world.clock, limits=LIMITS) as ws:
            assert ws.query("SELECT count(*) AS n FROM juki").to_pylist()[0]["n"] > 0
    finally:
        hub.engine.dispose()
