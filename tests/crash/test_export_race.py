"""Concurrent exporters of one released table against one quota: no quota overrun, each export recorded once.

Issue 12, item 4. Real processes (forked, each with its own hub and engine) export the same released table at
the same moment, lined up on a pipe so that all have made the file and wait to reserve its place, on SQLite
and on PostgreSQL. The quota allows fewer files than there are exporters: exactly that many succeed, the rest
are refused with ``QuotaExceeded``; every success is one reservation, one export row and one ``export.file``
entry naming that row and that reservation, and the counters say exactly what was handed out.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from renkei.clock import SYSTEM_CLOCK, city_today
from renkei.hub.access.authz import Actor
from renkei.hub.access.quotas import DownloadQuota, QuotaExceeded, Reservation, set_quota
from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import Export, ExportFormat
from renkei.hub.audit import AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.home import Hub
from tests.faults.suite import REQUEST
from tests.integration.hub_world import make_world
from tests.integration.workspace_world import DATASETS, WorkspaceWorld

EXPORTERS = 6
FILES_PER_DAY = 3  # fewer places than exporters
WAIT = 120.0  # seconds: a safety net for a child, never reached when the exporters behave


@pytest.fixture
def released(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Hub, Actor, int]]:
    """A hub with juki and kaigo of one period, an analyst allowed FILES_PER_DAY files, one released table."""
    monkeypatch.setenv("RENKEI_DATABASE_URL", database_url)
    world = make_world(tmp_path, residents=300, years=1)
    periods = sorted(world.raw)
    for dataset in DATASETS:
        world.import_(world.extract(dataset, periods[0], out=f"out-{dataset}"))
    ww = WorkspaceWorld(world, periods)
    user, analyst = ww.analyst()
    for dataset in DATASETS:
        ww.grant(user, dataset, periods, ends=3650)
    with ww.hub.session() as session:
        set_quota(
            session, ww.hub.audit, Actor.cli("test"), analyst.name,
            may_download=True, files_per_day=FILES_PER_DAY, rows_per_file=100_000, bytes_per_month=10**12,
        )  # fmt: skip
    with service.open_workspace(ww.hub, analyst) as workspace:
        protect, threshold = service.table_protector(ww.hub), service.threshold_for(ww.hub, REQUEST)
        _, release = service.release_table(ww.hub, workspace, analyst, REQUEST, protect, threshold=threshold)
    ww.hub.engine.dispose()  # the children fork from here: none may share the parent's connections
    yield ww.hub, analyst, release.id
    ww.hub.engine.dispose()


def exporter(home: Path, analyst: Actor, release_id: int, go: int, report: int) -> None:
    """In a forked child: wait for the go, export, report ``ok <export id>`` or the refusal; never returns."""
    code = 0
    try:
        hub = Hub(home)
        with hub.session() as session:  # connect before the line-up, so that all start the export together
            session.execute(select(1))
        os.read(go, 1)
        try:
            exported = service.export_release(hub, analyst, release_id, ExportFormat.CSV)
            said = {"ok": exported.export_id, "sha256": exported.sha256}
        except QuotaExceeded as exc:
            said = {"refused": exc.en}
        os.write(report, (json.dumps(said) + "\n").encode())
        hub.engine.dispose()
    except BaseException as exc:
        os.write(report, (json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        code = 70
    os._exit(code)


def race(hub: Hub, analyst: Actor, release_id: int) -> list[dict[str, object]]:
    go_read, go_write = os.pipe()
    report_read, report_write = os.pipe()
    children = []
    for _ in range(EXPORTERS):
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            os.close(go_write)
            os.close(report_read)
            exporter(hub.home, analyst, release_id, go_read, report_write)
        children.append(pid)
    os.close(go_read)
    os.close(report_write)
    os.write(go_write, b"g" * EXPORTERS)  # all at once
    os.close(go_write)
    with os.fdopen(report_read, "rb") as reports:
        lines = reports.read().decode().splitlines()  # until every child has exited (closed its end)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, [line for line in lines if '"error"' in line] or lines
    return [json.loads(line) for line in lines]


@pytest.mark.timeout(600)
def test_concurrent_exporters_never_overrun_the_quota_and_each_export_is_recorded_once(
    released: tuple[Hub, Actor, int],
) -> None:
    hub, analyst, release_id = released
    said = race(hub, analyst, release_id)
    assert len(said) == EXPORTERS and not [s for s in said if "error" in s], said
    done = sorted(int(s["ok"]) for s in said if "ok" in s)  # type: ignore[call-overload]
    refused = [s for s in said if "refused" in s]
    assert len(done) == FILES_PER_DAY and len(refused) == EXPORTERS - FILES_PER_DAY, said
    assert all("a day" in str(s["refused"]) for s in refused)
    assert len({s["sha256"] for s in said if "ok" in s}) == 1  # the same table, the same file
    with hub.session() as session:
        exports = session.scalars(select(Export).order_by(Export.id)).all()
        reservations = session.scalars(select(Reservation)).all()
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == AuditAction.EXPORT_FILE)
        ).all()
        quota = session.get(DownloadQuota, analyst.user_id)
        assert quota is not None
        today = city_today(SYSTEM_CLOCK)
        assert quota.files_used(today) == FILES_PER_DAY
        assert quota.bytes_used(today) == sum(e.bytes for e in exports)
    assert [e.id for e in exports] == done  # each success one row, and no row of a refused one
    assert len(reservations) == FILES_PER_DAY  # a refused reservation changes nothing
    logged = Counter(e.resource for e in entries)
    assert logged == Counter(f"export/{i}" for i in done)  # exactly once in the log, each
    by_export = {e.resource: e.details for e in entries}
    assert sorted(d["reservation"] for d in by_export.values()) == sorted(r.id for r in reservations)
    assert all(d["sha256"] == exports[0].sha256 and d["release"] == release_id for d in by_export.values())
    assert hub.audit.verify().ok
