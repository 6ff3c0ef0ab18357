"""The fault suite (issue 12, item 4): kill -9 loops on SQLite and PostgreSQL, with the checks after each kill.

``python -m tests.faults.suite --kills 100`` (``make faults``) builds one small hub per database, then for each
operation (import, export, table release, key rotation, audit appends, backup) runs it again and again on a fresh
copy of that hub (a copied home; on PostgreSQL a fresh database cloned from a template), SIGKILLs it after a
random delay within its measured duration, and counts the kills that landed (the process died of the SIGKILL
before it finished). After each kill the hub is opened as after a crash and checked:

- ``vault verify`` finds nothing and the audit log verifies;
- nothing lost: what the killed process reported as committed is there (audit appends), the earlier snapshots
  and entries are intact;
- nothing duplicated: at most one new snapshot, release, export or reservation per run, one rotation outcome
  per intent; an export row never without its ``export.file`` entry (one commit), nor without its reservation;
- no plaintext anywhere: no file in the home, the run's ``TMPDIR`` or the backup's directory starts with the
  Parquet magic or holds one of the known pseudonyms of the hub's snapshots (a killed import's decrypted work
  files are swept by the hub start before the checks);
- a re-run completes, and the same checks hold afterwards.

The operation runs in a forked child of this process (everything imported once), so that a kill costs
milliseconds, not an interpreter start. The figures (kills landed, outcomes, durations) are printed as a
Markdown table and, with ``--write``, put into ``docs/reliability.md`` under "Fault suite".
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import io
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from renkei.cli.analysis import _write_new
from renkei.hub.access.authz import Actor
from renkei.hub.access.quotas import Reservation, set_quota
from renkei.hub.analysis import service
from renkei.hub.analysis.ledger import Export, ExportFormat, Release
from renkei.hub.audit import AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.backup import backup as run_backup
from renkei.hub.backup import inspect_backup
from renkei.hub.catalog import Package, PackageState, Snapshot
from renkei.hub.home import Hub, verify_vault
from renkei.hub.keys import load_kek
from renkei.hub.rotation import NOTE_FILE, rotate_kek
from renkei.hub.tables.request import AgeBand, Category, Link, TableRequest

PARQUET_MAGIC = b"PAR1"
POSTGRES_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
REQUEST = TableRequest(
    dataset="juki",
    dimensions=[Category(column="住所_ward"), AgeBand(width=10, top=80)],
    links=[Link(dataset="kaigo")],
)
APPENDS = 400  # audit entries one killed run tries to append


class CheckFailedError(AssertionError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailedError(what)


# --- databases ------------------------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "sqlite" or "postgres"
    template: str = ""  # PostgreSQL: the template database's name
    made: list[str] = field(default_factory=list)

    def url_for(self, name: str) -> str:
        return f"postgresql+psycopg://root@127.0.0.1:5432/{name}"

    def admin(self, sql: str) -> None:
        engine = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def new_template(self) -> str:
        """PostgreSQL: a fresh empty database for building a template hub; sets RENKEI_DATABASE_URL."""
        name = f"faults_tmpl_{uuid.uuid4().hex[:10]}"
        self.admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        os.environ["RENKEI_DATABASE_URL"] = self.url_for(name)
        return name

    def clone(self, template: str) -> str:
        name = f"faults_run_{uuid.uuid4().hex[:10]}"
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.made.append(name)
        os.environ["RENKEI_DATABASE_URL"] = self.url_for(name)
        return name

    def drop(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    def drop_all(self) -> None:
        for name in list(self.made):
            with contextlib.suppress(Exception):
                self.drop(name)


# --- the hubs every loop starts from ----------------------------------------------------------------------------


@dataclass
class Template:
    home: Path
    db_name: str  # PostgreSQL template database ("" on SQLite)
    package: Path  # a package not yet imported (the import loop)
    analyst: Actor
    release_id: int
    pseudonyms: list[bytes]
    workers_before: set[int] = field(default_factory=set)  # workers of other hubs on this machine


def build_template(root: Path, db: Database, residents: int) -> Template:
    """A hub with juki and kaigo imported for two periods, an analyst with grants and quota, one released
    table; and a juki package of a third period left to import."""
    from tests.integration.hub_world import make_world  # noqa: PLC0415
    from tests.integration.workspace_world import DATASETS, WorkspaceWorld  # noqa: PLC0415

    db_name = db.new_template() if db.kind == "postgres" else ""
    if db.kind == "sqlite":
        os.environ.pop("RENKEI_DATABASE_URL", None)
    world = make_world(root / "world", residents=residents, years=3)
    *periods, pending = sorted(world.raw)
    for period in periods:
        for dataset in DATASETS:
            world.import_(world.extract(dataset, period, out=f"out-{dataset}-{period}"))
    ww = WorkspaceWorld(world, periods)
    package = world.extract("juki", pending, out="pending")  # a third period, left for the import loop
    user, analyst = ww.analyst()
    for dataset in ("juki", "kaigo"):
        ww.grant(user, dataset, ww.periods, ends=3650)
    with ww.hub.session() as session:
        set_quota(
            session, ww.hub.audit, Actor.cli("faults"), analyst.name,
            may_download=True, files_per_day=100_000, rows_per_file=100_000, bytes_per_month=10**12,
        )  # fmt: skip
    with service.open_workspace(ww.hub, analyst) as workspace:
        protect, threshold = service.table_protector(ww.hub), service.threshold_for(ww.hub, REQUEST)
        _, release = service.release_table(ww.hub, workspace, analyst, REQUEST, protect, threshold=threshold)
    pseudonyms = known_plaintext(ww.hub)
    ww.hub.engine.dispose()
    return Template(ww.hub.home, db_name, package, analyst, release.id, pseudonyms, workers())


def known_plaintext(hub: Hub) -> list[bytes]:
    """A few pseudonyms from the stored snapshots: values that must never appear outside the vault."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    found: list[bytes] = []
    for ref in hub.vault.snapshots()[:2]:
        with hub.vault.open_plain(ref, "data.parquet") as plain:
            table = pq.read_table(io.BytesIO(plain.read()))
        column = next(c for c in table.column_names if table.schema.field(c).type == "string")
        found += [
            v.encode() for v in table.column(column).to_pylist()[:3] if isinstance(v, str) and len(v) >= 8
        ]
    return found


# --- one kill -----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    home: Path
    tmpdir: Path
    out: Path  # where an export or a backup goes
    db_name: str


@dataclass
class Operation:
    name: str
    act: Callable[[Template, Run, int], None]  # in the child; may write progress lines to the fd it gets
    check: Callable[
        [Template, Run, Hub, list[str], dict[str, int]], str
    ]  # after the kill: returns the outcome
    rerun: Callable[[Template, Run, Hub], None]
    before: Callable[[Hub], dict[str, int]]


def counts(hub: Hub) -> dict[str, int]:
    with hub.session() as session:

        def n(model: Any) -> int:
            return session.scalar(select(func.count()).select_from(model)) or 0

        return {
            "snapshots": n(Snapshot),
            "packages": n(Package),
            "releases": n(Release),
            "exports": n(Export),
            "reservations": n(Reservation),
            "audit": n(AuditEntry),
            "export_entries": session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == AuditAction.EXPORT_FILE)
            )
            or 0,
        }


# What a kill may leave for the next run to finish, as ``vault verify`` names it (every other finding fails):
# an interrupted rotation's key files under the next KEK, a writer's staging file, a snapshot not yet sealed
# 0500, a snapshot stored in the vault whose catalog row the killed import never committed (the next import
# recovers it from its reservation, docs/hub.md).
NAMED_AFTER_A_KILL = {"rotation", "staging", "mode", "uncatalogued"}


def common_checks(template: Template, run: Run, hub: Hub, *, after_rerun: bool) -> list[str]:
    """vault verify, audit verify, the plaintext scan; returns what was found and named (allowed only after a
    kill, and only of the kinds a re-run finishes)."""
    problems = verify_vault(hub)
    allowed = set() if after_rerun else NAMED_AFTER_A_KILL
    phase = "after the re-run" if after_rerun else "after the kill"
    found = [(str(p.path), p.kind) for p in problems]
    expect(all(p.kind in allowed for p in problems), f"vault verify {phase}: {found}")
    verified = hub.audit.verify()
    expect(verified.ok, f"audit verify {phase}: {verified}")
    # None at all, after the kill too: the hub start before these checks swept a killed import's decrypted work
    # files from <home>/staging (renkei.hub.staging), its import being dead.
    plaintext = plaintext_left(template, [run.home, run.tmpdir, run.out.parent])
    expect(not plaintext, f"plaintext left {phase}: {sorted(plaintext)}")
    named = sorted({p.kind for p in problems})
    return [f"verify names {'+'.join(named)}"] * bool(named)


def plaintext_left(template: Template, roots: list[Path]) -> list[str]:
    found: list[str] = []
    for root in roots:
        for path in root.rglob("*") if root.exists() else []:
            if not path.is_file() or path.is_symlink():
                continue
            relative = path.relative_to(root).parts
            if relative[:1] == ("vault",) or path.name.endswith(".age"):
                continue  # ciphertext (the vault, a backup's vault copy, a package)
            data = path.read_bytes()
            if data[:4] == PARQUET_MAGIC or any(p in data for p in template.pseudonyms):
                found.append(str(path))
    return found


# import ------------------------------------------------------------------------------------------------------


def import_act(template: Template, run: Run, _progress: int) -> None:
    hub = Hub(run.home)
    with hub.session() as session:
        hub.importer(session).import_package(template.package)


def import_check(template: Template, run: Run, hub: Hub, _said: list[str], before: dict[str, int]) -> str:
    after = counts(hub)
    new = after["snapshots"] - before["snapshots"]
    expect(new in (0, 1), f"{new} new snapshots")
    with hub.session() as session:
        states = list(session.scalars(select(Package.state).order_by(Package.id)))
        imports = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == AuditAction.IMPORT)
        )
    expect(imports == after["snapshots"], f"{imports} import entries for {after['snapshots']} snapshots")
    base = before["packages"]
    if new == 1:
        expect(states[base:] == [PackageState.IMPORTED], f"package states {states[base:]}")
        return "complete"
    expect(all(s == PackageState.IMPORTED for s in states[:base]), "an earlier package changed")
    return "nothing" if len(states) == base else "pending"


def import_rerun(template: Template, run: Run, hub: Hub) -> None:
    with hub.session() as session:
        hub.importer(session).import_package(template.package)


def import_after_rerun(hub: Hub, before: dict[str, int]) -> None:
    after = counts(hub)
    expect(after["snapshots"] == before["snapshots"] + 1, f"snapshots {before} -> {after} after the re-run")
    expect(after["packages"] == before["packages"] + 1, "one package row")


# export ------------------------------------------------------------------------------------------------------


def export_act(template: Template, run: Run, _progress: int) -> None:
    hub = Hub(run.home)
    exported = service.export_release(hub, template.analyst, template.release_id, ExportFormat.CSV)
    _write_new(run.out, exported.content)


def export_check(template: Template, run: Run, hub: Hub, _said: list[str], before: dict[str, int]) -> str:
    after = counts(hub)
    grew = {k: after[k] - before[k] for k in ("reservations", "exports", "export_entries")}
    expect(all(0 <= v <= 1 for v in grew.values()), f"grew by {grew}")
    expect(grew["exports"] <= grew["reservations"], f"a row without its reservation: {grew}")
    expect(grew["export_entries"] == grew["exports"], f"the row and its entry are one commit: {grew}")
    if run.out.exists():  # a file handed out is complete and logged
        expect(grew["export_entries"] == 1, "a file without its export.file entry")
        with hub.session() as session:
            digest = session.scalars(select(Export.sha256).order_by(Export.id.desc())).first()
        import hashlib  # noqa: PLC0415

        expect(hashlib.sha256(run.out.read_bytes()).hexdigest() == digest, "the file differs from its record")
        return "file written"
    partials = [p.name for p in run.out.parent.iterdir() if p.name != run.out.name]
    expect(all(p.endswith(".partial") for p in partials), f"strays {partials}")
    if grew["exports"]:
        return "logged, no file"  # fail-closed: the place is used, nothing left the hub
    return "reserved only" if grew["reservations"] else "nothing"


def export_rerun(template: Template, run: Run, hub: Hub) -> None:
    exported = service.export_release(hub, template.analyst, template.release_id, ExportFormat.CSV)
    target = run.out.with_name("rerun.csv")
    _write_new(target, exported.content)
    target.unlink()
    if run.out.exists():
        run.out.unlink()


# table release -------------------------------------------------------------------------------------------------


def release_act(template: Template, run: Run, _progress: int) -> None:
    hub = Hub(run.home)
    release_once(template, hub)


def release_once(template: Template, hub: Hub) -> None:
    with service.open_workspace(hub, template.analyst) as workspace:
        protect, threshold = service.table_protector(hub), service.threshold_for(hub, REQUEST)
        service.release_table(hub, workspace, template.analyst, REQUEST, protect, threshold=threshold)


WORKER_ARGV = b"\0-I\0-S\0-B\0-c\0"  # how renkei.hub.workspace.process starts a worker
ORPHAN_WAIT = 10.0  # seconds a killed hub's worker may take to notice its pipe closed


def workers() -> set[int]:
    """Workspace workers whose hub process is gone (reparented to init or a subreaper that is no hub)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if WORKER_ARGV in (entry / "cmdline").read_bytes():
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    parent = Path(f"/proc/{ppid}/cmdline")
                    if ppid == 1 or not parent.exists() or b"python" not in parent.read_bytes():
                        found.add(int(entry.name))
    return found


def release_check(template: Template, run: Run, hub: Hub, _said: list[str], before: dict[str, int]) -> str:
    deadline = time.monotonic() + ORPHAN_WAIT
    while workers() - template.workers_before and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = workers() - template.workers_before
    expect(not orphans, f"workspace workers outlived the killed process: {sorted(orphans)}")
    after = counts(hub)
    new = after["releases"] - before["releases"]
    expect(new in (0, 1), f"{new} new releases")
    return "released" if new else "nothing"


def release_rerun(template: Template, run: Run, hub: Hub) -> None:
    release_once(template, hub)


# key rotation -----------------------------------------------------------------------------------------------


def rotate_act(template: Template, run: Run, _progress: int) -> None:
    rotate_kek(Hub(run.home), actor="faults")


def rotate_check(template: Template, run: Run, hub: Hub, _said: list[str], before: dict[str, int]) -> str:
    expect(not (run.home / NOTE_FILE).exists(), "the rotation note is still there after the start")
    with hub.session() as session:
        entries = list(
            session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.action.in_((AuditAction.VAULT_ROTATE_KEY_BEGIN, AuditAction.VAULT_ROTATE_KEY))
                )
                .order_by(AuditEntry.seq)
            )
        )
        intents = [e for e in entries if e.action == AuditAction.VAULT_ROTATE_KEY_BEGIN]
        outcomes = [e for e in entries if e.action == AuditAction.VAULT_ROTATE_KEY]
        in_force = load_kek(run.home).key_id
        original = load_kek(template.home).key_id
        if not intents:
            expect(in_force == original and not outcomes, "a key changed without an intent")
            return "nothing"
        expect(len(intents) == 1 and len(outcomes) == 1, f"{len(intents)} intents, {len(outcomes)} outcomes")
        intent, outcome = intents[0], outcomes[0]
        expect(outcome.details.get("intent_seq") == intent.seq, "the outcome names another intent")
        new_id = intent.details["new_kek_id"]
        expect(in_force in (original, new_id), "a third key in force")
        expect((outcome.result == "ok") == (in_force == new_id), "the outcome does not match the key")
        reconciled = " (reconciled)" if outcome.details.get("reconciled") else ""
        return ("rotated" if in_force == new_id else "rolled back") + reconciled


def rotate_rerun(template: Template, run: Run, hub: Hub) -> None:
    rotate_kek(hub, actor="faults")
    with hub.vault.open_plain(hub.vault.snapshots()[0], "data.parquet") as plain:
        expect(plain.read(4) == PARQUET_MAGIC, "a snapshot no longer decrypts")


# audit appends ------------------------------------------------------------------------------------------------


def audit_act(template: Template, run: Run, progress: int) -> None:
    hub = Hub(run.home)
    for i in range(APPENDS):
        entry = hub.audit.append(actor="faults", action=AuditAction.AUTHZ_DECISION, resource=f"fault/{i}")
        os.write(progress, f"{entry.seq}\n".encode())


def audit_check(template: Template, run: Run, hub: Hub, said: list[str], before: dict[str, int]) -> str:
    after = counts(hub)
    added = after["audit"] - before["audit"]
    reported = len(said)
    expect(reported <= added <= reported + 1, f"{reported} appends returned, {added} entries are there")
    with hub.session() as session:
        seqs = set(session.scalars(select(AuditEntry.seq).where(AuditEntry.actor == "faults")))
    lost = [s for s in said if int(s) not in seqs]
    expect(not lost, f"appended and returned, then lost: {lost[:5]}")
    return "one more than returned" if added > reported else "exactly what returned"


def audit_rerun(template: Template, run: Run, hub: Hub) -> None:
    hub.audit.append(actor="faults", action=AuditAction.AUTHZ_DECISION, resource="fault/rerun")


# backup -------------------------------------------------------------------------------------------------------


def backup_act(template: Template, run: Run, _progress: int) -> None:
    run_backup(Hub(run.home), Actor.cli("faults"), run.out)


def backup_check(template: Template, run: Run, hub: Hub, _said: list[str], before: dict[str, int]) -> str:
    leftovers = [p.name for p in run.out.parent.iterdir() if p != run.out]
    if run.out.exists():
        inspect_backup(run.out, run.home)  # raises (BackupDamagedError …) if it is not complete
        return "complete" + (" (+partial, swept next run)" if leftovers else "")
    return "partial, swept next run" if leftovers else "nothing"


def backup_rerun(template: Template, run: Run, hub: Hub) -> None:
    target = run.out if not run.out.exists() else run.out.with_name("again")
    run_backup(hub, Actor.cli("faults"), target)
    inspect_backup(target, run.home)
    leftovers = sorted(p.name for p in run.out.parent.iterdir() if p.name not in ("backup", "again"))
    expect(leftovers == [], f"partial backups left after a complete run: {leftovers}")


OPERATIONS = {
    "import": Operation("import", import_act, import_check, import_rerun, counts),
    "export": Operation("export", export_act, export_check, export_rerun, counts),
    "table release": Operation("table release", release_act, release_check, release_rerun, counts),
    "key rotation": Operation("key rotation", rotate_act, rotate_check, rotate_rerun, counts),
    "audit appends": Operation("audit appends", audit_act, audit_check, audit_rerun, counts),
    "backup": Operation("backup", backup_act, backup_check, backup_rerun, counts),
}


# --- the loop ------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    operation: str
    database: str
    attempts: int = 0
    landed: int = 0
    finished_first: int = 0
    failed: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    named: Counter[str] = field(default_factory=Counter)  # what verification named after a kill
    duration: float = 0.0  # one uninterrupted run, seconds
    wall: float = 0.0


@contextlib.contextmanager
def fresh_run(template: Template, db: Database, scratch: Path, n: int) -> Iterator[Run]:
    folder = scratch / f"run-{n}"
    home = folder / "hub"
    shutil.copytree(template.home, home, symlinks=True)
    (folder / "tmp").mkdir()
    (folder / "out").mkdir()
    db_name = db.clone(template.db_name) if db.kind == "postgres" else ""
    try:
        yield Run(home, folder / "tmp", folder / "out" / "backup", db_name)
    finally:
        if db_name:
            db.drop(db_name)
        shutil.rmtree(folder, ignore_errors=True)


def fork_and_kill(
    operation: Operation, template: Template, run: Run, delay: float | None
) -> tuple[int, list[str]]:
    """Run the operation in a child; SIGKILL it after ``delay`` (None: let it finish). Returns its exit status
    (negative: the signal) and the lines it wrote to its progress pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        os.environ["TMPDIR"] = str(run.tmpdir)
        tempfile.tempdir = None
        code = 0
        try:
            operation.act(template, run, write_end)
        except BaseException:
            traceback.print_exc()
            code = 70
        os._exit(code)
    os.close(write_end)
    done, status = 0, 0
    if delay is not None:
        deadline = time.monotonic() + delay
        while not done and time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                time.sleep(0.001)
        if not done:
            os.kill(pid, signal.SIGKILL)
    if not done:
        _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "r") as progress:
        lines = progress.read().split()
    return os.waitstatus_to_exitcode(status), lines


def measure(operation: Operation, template: Template, db: Database, scratch: Path) -> float:
    """One uninterrupted run's duration; a run that fails is tried again (twice), then the loop fails."""
    code = 0
    for _ in range(3):
        with fresh_run(template, db, scratch, 0) as run:
            start = time.perf_counter()
            code, _ = fork_and_kill(operation, template, run, None)
            took = time.perf_counter() - start
        if code == 0:
            return took
    raise CheckFailedError(f"{operation.name}: an uninterrupted run exited with {code}")


def kill_loop(
    operation: Operation, template: Template, db: Database, scratch: Path, kills: int, seed: int
) -> Figures:
    figures = Figures(operation.name, db.kind)
    started = time.perf_counter()
    figures.duration = measure(operation, template, db, scratch)
    rng = random.Random(seed)
    # The kills are spread over 1.1 x the run's duration: the timing run's at first, then the median of the
    # last runs that finished before their kill (on a machine whose load changes, one timing run taken in a
    # busy moment would otherwise put most kills after the end, and the loop would stop at its attempts cap).
    finished: collections.deque[float] = collections.deque([figures.duration], maxlen=9)
    while figures.landed < kills and figures.attempts < kills * 3:
        figures.attempts += 1
        delay = rng.uniform(0.0, statistics.median(finished) * 1.1)
        with fresh_run(template, db, scratch, figures.attempts) as run:
            hub = Hub(run.home)
            before = operation.before(hub)
            hub.engine.dispose()
            start = time.perf_counter()
            code, said = fork_and_kill(operation, template, run, delay)
            if code == -signal.SIGKILL:
                figures.landed += 1
            elif code == 0:
                figures.finished_first += 1
                finished.append(time.perf_counter() - start)
            else:
                figures.failed.append(f"run {figures.attempts}: exit {code}")
            try:
                hub = Hub(run.home)  # as after a crash (reconciles what a start reconciles)
                outcome = operation.check(template, run, hub, said, before)
                named = common_checks(template, run, hub, after_rerun=False)
                operation.rerun(template, run, hub)
                if operation.name == "import":
                    import_after_rerun(hub, before)
                common_checks(template, run, hub, after_rerun=True)
                if code == -signal.SIGKILL:
                    figures.outcomes[outcome] += 1
                    figures.named.update(named)
            except Exception as exc:
                figures.failed.append(f"run {figures.attempts} ({delay:.3f} s): {type(exc).__name__}: {exc}")
            finally:
                hub.engine.dispose()
        if figures.attempts % 25 == 0:  # progress, so that a loop stopped early still says how far it came
            print(
                f"  {db.kind} {operation.name}: landed {figures.landed}/{figures.attempts}"
                f" {dict(figures.outcomes)} failures {len(figures.failed)}",
                flush=True,
            )
    figures.wall = time.perf_counter() - started
    return figures


# --- the report --------------------------------------------------------------------------------------------------


def table(all_figures: list[Figures]) -> str:
    lines = [
        "| operation | database | kills landed | runs | finished before the kill | run (s) | outcomes after the kill"
        " | verification named after the kill | failures | wall (s) |",
        "|---|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for f in all_figures:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(f.outcomes.items()))
        named = ", ".join(f"{k} {v}" for k, v in sorted(f.named.items())) or "—"
        lines.append(
            f"| {f.operation} | {f.database} | {f.landed} | {f.attempts} | {f.finished_first} | {f.duration:.2f}"
            f" | {outcomes} | {named} | {len(f.failed)} | {f.wall:.0f} |"
        )
    return "\n".join(lines)


def write_json(path: Path, all_figures: list[Figures]) -> None:
    path.write_text(
        json.dumps(
            [
                {**f.__dict__, "outcomes": dict(f.outcomes), "when": dt.datetime.now(dt.UTC).isoformat()}
                for f in all_figures
            ],
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=100, help="landed kills per operation and database")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--operations", default=",".join(OPERATIONS))
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args(argv)
    all_figures: list[Figures] = []
    for kind in args.databases.split(","):
        db = Database(kind)
        scratch = Path(tempfile.mkdtemp(prefix=f"renkei-faults-{kind}-"))
        try:
            template = build_template(scratch / "template", db, args.residents)
            for name in args.operations.split(","):
                figures = kill_loop(OPERATIONS[name], template, db, scratch, args.kills, args.seed)
                all_figures.append(figures)
                print(
                    f"{kind:8} {name:14} landed {figures.landed}/{figures.attempts} outcomes"
                    f" {dict(figures.outcomes)} failures {len(figures.failed)} ({figures.wall:.0f} s)",
                    flush=True,
                )
                for failure in figures.failed[:10]:
                    print(f"    {failure}", flush=True)
                if args.json:  # after each loop, so that a run stopped early leaves the loops it finished
                    write_json(args.json, all_figures)
        finally:
            db.drop_all()
            shutil.rmtree(scratch, ignore_errors=True)
    print(table(all_figures))
    if args.json:
        write_json(args.json, all_figures)
    short = [f for f in all_figures if f.landed < args.kills]
    return 1 if any(f.failed for f in all_figures) or short else 0


if __name__ == "__main__":
    sys.exit(main())
