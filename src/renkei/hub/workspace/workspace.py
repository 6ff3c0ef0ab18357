"""A workspace: one analyst's sandboxed DuckDB over exactly the snapshots their active grants cover.

Opening authorizes every snapshot (``snapshot.read``, or ``snapshot.read_rows`` under a row-level grant),
leases them from the process's :class:`~.gate.SnapshotCache` — which decrypts through :mod:`.gate` into sealed
memfds (side by side, one child process per core) only what no other workspace of the process holds, so N
workspaces over the same snapshots share one plaintext copy — and hands exactly those descriptors to a fresh
worker process (:mod:`.process`). Closing the workspace kills the worker and returns the lease; the cache closes
a memfd once no workspace uses it (after ``workspace.shared_idle_seconds``), so plaintext vanishes with the
last worker and lease. The record keys, stored beside each snapshot at
import, are read through the same gate under the same decisions once the first query has been answered (or
when a control query needs them first), and reach only the worker's control database. Every query re-checks
the grants and goes through ``authorize()`` for the snapshots it reads; a lapsed grant closes the workspace.
The audit log gets the query text, the snapshots and the row count, never a value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.hub.access.authz import (
    Action,
    Actor,
    Decision,
    Forbidden,
    Resource,
    ResourceType,
    authorize_each,
    deny,
    record_decision,
)
from renkei.hub.access.grants import Grant, active_grants
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import Snapshot
from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE
from renkei.hub.home import Hub
from renkei.hub.settings import WorkspaceSettings
from renkei.hub.vault import SnapshotNotFoundError, SnapshotRef
from renkei.hub.workspace import lockdown
from renkei.hub.workspace.errors import (
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    WorkspaceClosed,
    WorkspaceError,
)
from renkei.hub.workspace.gate import Granted, SnapshotLease
from renkei.hub.workspace.process import (
    WORKER_PROGRAM,
    Isolation,
    WorkerGone,
    WorkerProcess,
    isolation,
    process_limit_check,
    spawn,
)
from renkei.hub.workspace.statements import check_select, views_read
from renkei.hub.workspace.views import (
    Opened,
    arrow_bytes,
    record_key_table,
    unique_pid_refs,
    view_statements,
)
from renkei.manifest import DATA_FILE

# What a user's grants open: (snapshot id, whether row-level) for the latest granted version of each period.
GrantedSet = frozenset[tuple[int, bool]]

SQL_PIECE = 500  # the audit log keeps detail strings up to 512 characters
SQL_BUDGET = 4000  # bytes of query text per audit entry; longer text is logged by its start and hash
NO_GRANT_POLICY = "deny:no-grant"  # the decision that refuses a workspace to a user without grants


# The sandbox's limits are the hub's settings workspace.* (one model; a hub's own are hub.settings.workspace).
WorkspaceLimits = WorkspaceSettings

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ViewInfo:
    name: str
    dataset: str
    period: Any  # dt.date of a per-period view, None for a per-dataset view
    columns: dict[str, str]
    row_level: bool


class Workspace:
    def __init__(
        self,
        hub: Hub,
        actor: Actor,
        clock: Clock,
        limits: WorkspaceLimits,
        opened: list[Opened],
        lease: SnapshotLease,
    ) -> None:
        self.id = secrets.token_hex(8)
        self.hub, self.actor, self.clock, self.limits = hub, actor, clock, limits
        self.opened = opened
        self.worker: WorkerProcess | None = None
        self.closed_reason = ""
        self._lease = lease  # the shared memfds of ``opened``, returned at close
        self._views: list[ViewInfo] = []
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"workspace-{self.id}")
        self._keys_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"workspace-keys-{self.id}")
        self._keys: Future[None] | None = None  # started after the first query, or by the first control query
        # DuckDB work of this process for the workspace (the key merge, the unique-pid scan): close interrupts it
        self._parent_cons: set[duckdb.DuckDBPyConnection] = set()
        self._keys_lock = threading.Lock()
        self._unique_units: frozenset[str] | None = None  # known at the first unique_units()

    # -- opening ------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        hub: Hub,
        actor: Actor,
        *,
        clock: Clock = SYSTEM_CLOCK,
        limits: WorkspaceLimits | None = None,
    ) -> Workspace:
        """Open a workspace over the snapshots ``actor``'s active grants cover (the latest version per period)."""
        limits = limits or hub.settings.workspace
        if actor.user_id is None:
            raise WorkspaceError(
                "作業環境は指名職員だけが開けます", "only a designated user opens a workspace"
            )
        confinement = isolation(limits.allow_same_user)  # refuse before anything is decrypted
        opened, lease = _decrypt_granted(hub, actor, clock)
        workspace = cls(hub, actor, clock, limits, opened, lease)
        try:
            workspace._start(confinement)
        except BaseException:
            workspace._discard()
            raise
        return workspace

    def _start(self, confinement: Isolation) -> None:
        nproc = self.limits.max_processes
        if (full := process_limit_check(confinement, nproc, died=False)) is not None:
            raise full
        process = spawn(
            confinement, WORKER_PROGRAM, pass_fds=self._lease.fds,  # this workspace's snapshots, no other
            address_space=self.limits.address_space, nproc=nproc,
        )  # fmt: skip
        self.worker = WorkerProcess(process, self.limits.grace)
        try:
            header, _ = self.worker.request(self._open_request(), self.limits.open_timeout, 0)
        except WorkerGone as e:  # a worker dying at open: most often a thread it could not create
            full = None if e.timeout else process_limit_check(confinement, nproc, died=True)
            if full is not None:
                raise full from e
            raise
        if not header.get("ok"):
            raise _open_failed(header)
        self._views = self._describe()
        self._audit(
            AuditAction.WORKSPACE_OPEN,
            snapshots=[o.resource for o in self.opened],
            worker_pid=self.worker.pid,
        )

    def _start_record_keys(self) -> None:
        """Load the record keys in the background, once, when the first control query that runs needs them:
        they are seconds of work and ~150 MB of the worker for a large city that only the control database
        needs, and a workspace whose tables are all kept results (renkei.hub.workspace.reuse) needs none."""
        with self._lock:
            if self._keys is None and not self.closed:
                self._keys = self._keys_pool.submit(self._load_record_keys)

    def _load_record_keys(self) -> None:
        """The stored keys of every opened snapshot, through the gate under the decision that opened it, merged
        into one (pid, rkey) table in this process — or taken from the shared cache, which keeps the merge of
        exactly these snapshots for the next workspace — and sent to the worker's control database."""
        if self.closed:
            return
        granted = [Granted(o.decision, o.snapshot_id, o.ref) for o in self.opened]
        try:
            keys = self.hub.snapshot_cache.derived("merged", granted, RECORD_KEYS_FILE, self._merged_keys)
        except SnapshotNotFoundError as e:
            raise WorkspaceError(
                f"レコードキーが保管されていないスナップショットがあるため、秘匿処理した結果を出せません: {e.ja}",
                f"a snapshot has no stored record keys (it was stored before imports kept them), so no "
                f"disclosure-controlled result can be made: {e.en}",
            ) from e
        if keys is None:
            return  # closed meanwhile
        assert self.worker is not None
        header, _ = self.worker.request({"op": "keys"}, self.limits.open_timeout, 0, payload=keys)
        if not header.get("ok"):
            raise _open_failed(header)

    def _merged_keys(self, fds: list[int]) -> bytes | None:
        """The merged keys as an Arrow stream, or None if the workspace closed first."""
        return self._in_parent(lambda con: arrow_bytes(record_key_table(con, fds)))

    def _unique_pid(self, granted: list[Granted]) -> frozenset[SnapshotRef] | None:
        """The opened snapshots in which no pid is on two rows (shared like the merged keys), or None if the
        workspace closed first."""
        refs = [item.ref for item in granted]

        def build(fds: list[int]) -> frozenset[SnapshotRef] | None:
            return self._in_parent(lambda con: unique_pid_refs(con, fds, refs))

        return self.hub.snapshot_cache.derived("unique-pid", granted, DATA_FILE, build)

    def _in_parent(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T | None:
        """``work`` on a DuckDB of this trusted process, or None if the workspace closed first: closing
        interrupts it (seconds of every core for a large city), so a closed workspace leaves no work behind."""
        with duckdb.connect(config={"threads": os.cpu_count() or 1}) as con:
            with self._keys_lock:
                if self.closed:
                    return None
                self._parent_cons.add(con)
            try:
                return work(con)
            except duckdb.InterruptException:
                return None
            finally:
                with self._keys_lock:
                    self._parent_cons.discard(con)

    def _record_keys_ready(self) -> None:
        self._start_record_keys()
        assert self._keys is not None
        try:
            self._keys.result(timeout=self.limits.open_timeout)
        except WorkspaceError:
            raise
        except Exception as e:
            self.close(f"record keys failed: {type(e).__name__}")
            raise WorkspaceClosed(
                "秘匿処理の準備（レコードキー）に失敗したため作業環境を閉じました",
                f"the workspace was closed: its record keys could not be prepared ({type(e).__name__})",
            ) from e

    def _open_request(self) -> dict[str, Any]:
        assert self.worker is not None
        pid = self.worker.pid
        paths = [o.path(pid) for o in self.opened]
        views = view_statements(self.opened, pid)
        limits = self.limits

        def plan(allowed: list[str], memory: int) -> list[Any]:
            return [list(s) for s in lockdown.plan(allowed, memory_mib=memory, threads=limits.threads)]

        return {
            "op": "open",
            "user": {"lockdown": plan(paths, limits.memory_mib), "setup": views},
            "control": {"lockdown": plan(paths, limits.control_memory_mib), "setup": views},
        }

    def _describe(self) -> list[ViewInfo]:
        rows = self._run(
            "user",
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE NOT internal AND table_name <> '_record_keys' ORDER BY table_name, column_index",
            self.limits.max_rows,
        ).to_pylist()
        columns: dict[str, dict[str, str]] = {}
        for row in rows:
            columns.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
        row_level = {o.dataset: o.action == Action.SNAPSHOT_READ_ROWS for o in self.opened}
        infos = [ViewInfo(d, d, None, columns[d], row_level[d]) for d in sorted(row_level)]
        infos += [
            ViewInfo(o.view, o.dataset, o.period, columns[o.view], row_level[o.dataset]) for o in self.opened
        ]
        return infos

    # -- using --------------------------------------------------------------------------------------------

    def schema(self) -> dict[str, dict[str, str]]:
        """Per-dataset view → column → DuckDB type (what the table builder compiles against)."""
        return {v.name: dict(v.columns) for v in self._views if v.period is None}

    def views(self) -> list[ViewInfo]:
        return list(self._views)

    def unique_units(self) -> frozenset[str]:
        """The datasets in which a person is on one row per period (no pid twice in any opened snapshot):
        their disclosure queries need not deduplicate (pid, period). Found once per set of snapshots (shared
        like the merged keys) and without waiting for the record keys, so a table whose result is kept
        (renkei.hub.workspace.reuse) is answered before this workspace's keys are in."""
        with self._lock:
            self._ensure_open()
            if self._unique_units is None:
                granted = [Granted(o.decision, o.snapshot_id, o.ref) for o in self.opened]
                unique = self._unique_pid(granted)
                self._ensure_open()  # closed meanwhile: the scan was interrupted
                assert unique is not None
                datasets = {o.dataset for o in self.opened}
                self._unique_units = frozenset(
                    d for d in datasets if all(o.ref in unique for o in self.opened if o.dataset == d)
                )
            return self._unique_units

    @property
    def granted(self) -> GrantedSet:
        """The snapshots this workspace opened, as :func:`granted_set` names them."""
        return frozenset((o.snapshot_id, o.action == Action.SNAPSHOT_READ_ROWS) for o in self.opened)

    def query(self, sql: str, *, max_rows: int | None = None) -> pa.Table:
        """Run user SQL (one SELECT) in the sandbox's user database."""
        with self._lock:
            self._ensure_open()
            try:
                check_select(sql)
            except QueryRefused as e:
                self._audit_query("user", sql, [], result="rejected", reason=e.en)
                raise
            return self._audited("user", sql, max_rows or self.limits.max_rows)

    def control_query(self, sql: str, *, reusable: bool = False) -> pa.Table:
        """Run hub-generated SQL on the control database (which alone holds ``_record_keys``).

        ``reusable``: the caller knows ``sql`` to be deterministic, so the same SQL over the same snapshots
        may be answered with a result kept from any workspace of this process (renkei.hub.workspace.reuse),
        authorized and audited as if it had run."""
        with self._lock:
            self._ensure_open()
            if not reusable:
                self._record_keys_ready()
                return self._audited("control", sql, self.limits.max_rows)
            results = self.hub.control_results
            wait = self.hub.query_slots.wait + self.limits.timeout  # as long as running it could take
            if (kept := results.get(self.granted, sql, wait=wait)) is not None:
                snapshots = self._authorize_reading(sql)
                self._audit_query("control", sql, snapshots, rows=kept.num_rows, reused=True)
                return kept
            try:
                self._record_keys_ready()
                table = self._audited("control", sql, self.limits.max_rows)
            except BaseException:
                results.abandon(self.granted, sql)
                raise
            results.put(self.granted, sql, table)
            return table

    def _audited(self, db: str, sql: str, max_rows: int) -> pa.Table:
        # The query runs in the sandbox while the grants are decided; its result is read only after every
        # decision allowed it, so a lapsed grant still returns nothing, and the decision costs no wall time.
        pending = self._pool.submit(self._send, db, sql, max_rows)
        try:
            snapshots = self._authorize_reading(sql)
        except BaseException:
            with contextlib.suppress(Exception):
                pending.result()  # discarded; a closed workspace has killed the worker, so this ends at once
            raise
        try:
            table = self._receive(pending.result, db)
        except WorkspaceError as e:
            self._audit_query(db, sql, snapshots, result="error", reason=f"{type(e).__name__}: {e.en}"[:500])
            raise
        self._audit_query(db, sql, snapshots, rows=table.num_rows)
        return table

    def _send(self, db: str, sql: str, max_rows: int) -> tuple[dict[str, Any], bytes | None]:
        """The worker's reply (on the pool's thread; it never touches the workspace's state)."""
        assert self.worker is not None
        request = {"op": "query", "db": db, "sql": sql, "max_rows": max_rows,
                   "max_bytes": self.limits.max_result_bytes}  # fmt: skip
        with self.hub.query_slots.slot():  # the wall clock starts once the query runs, not while it waits
            return self.worker.request(request, self.limits.timeout, self.limits.max_result_bytes)

    def _run(self, db: str, sql: str, max_rows: int) -> pa.Table:
        return self._receive(lambda: self._send(db, sql, max_rows), db)

    def _receive(self, reply: Callable[[], tuple[dict[str, Any], bytes | None]], db: str) -> pa.Table:
        try:
            header, payload = reply()
        except WorkerGone as e:
            self.close(f"worker gone: {e.en}")
            if e.timeout:
                raise _timeout(self.limits.timeout, closed=True) from e
            raise WorkspaceClosed(e.ja, e.en) from e
        if not header.get("ok"):
            raise _query_error(header, self.limits, db)
        assert payload is not None
        return pa.ipc.open_stream(payload).read_all()

    # -- grants -------------------------------------------------------------------------------------------

    def _authorize_reading(self, sql: str) -> list[str]:
        """Close (and raise) unless active grants still cover every opened snapshot; authorize those read."""
        names = views_read(sql, {v.name for v in self._views})
        read = [o for o in self.opened if names is None or o.view in names or o.dataset in names]
        with self.hub.session() as session:
            lapsed = _lapsed(self.opened, active_grants(session, self._user_id, self.clock))
            items = [*lapsed, *(o for o in read if o not in lapsed)]
            for item, decision in _decide_each(session, self.hub.audit, self.actor, items, self.clock):
                if not decision.allowed:
                    verdict = decision.verdict
                    self.close(f"{item.resource}: {verdict.reason_en}")
                    raise WorkspaceClosed(
                        f"利用承認が失効したため作業環境を閉じました（{item.resource}: {verdict.reason_ja}）",
                        f"the workspace was closed: {item.resource}: {verdict.reason_en}",
                    )
        return [o.resource for o in read]

    @property
    def _user_id(self) -> int:
        assert self.actor.user_id is not None
        return self.actor.user_id

    # -- closing ------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return bool(self.closed_reason)

    def close(self, reason: str = "closed by the user") -> None:
        with self._lock:
            if self.closed:
                return
            self.closed_reason = reason
            with self._keys_lock:
                for con in self._parent_cons:
                    con.interrupt()
            if self.worker is not None:
                self.worker.close()
            self._lease.close()
            self._pool.shutdown(wait=False)
            self._keys_pool.shutdown(wait=False)
            self._audit(AuditAction.WORKSPACE_CLOSED, reason=reason[:500])

    def _discard(self) -> None:
        """After a failed open: no worker left, no descriptor left."""
        if self.worker is not None:
            self.worker.kill()
        self._pool.shutdown(wait=False)
        self._keys_pool.shutdown(wait=False)
        self._lease.close()
        self.closed_reason = "open failed"

    def _ensure_open(self) -> None:
        if self.closed:
            raise WorkspaceClosed(
                f"作業環境は閉じられています（{self.closed_reason}）",
                f"the workspace is closed: {self.closed_reason}",
            )

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- audit --------------------------------------------------------------------------------------------

    def _audit(self, action: AuditAction, result: str = "ok", **details: object) -> None:
        self.hub.audit.append(
            actor=self.actor.name,
            action=action,
            resource=f"workspace/{self.id}",
            result=result,
            terminal=self.actor.terminal,
            client_addr=self.actor.client_addr,
            details={"session_id": self.actor.session_id, **details} if self.actor.session_id else details,
        )

    def _audit_query(
        self,
        db: str,
        sql: str,
        snapshots: list[str],
        *,
        rows: int = 0,
        result: str = "ok",
        reason: str = "",
        reused: bool = False,
    ) -> None:
        details: dict[str, object] = {"db": db, **_sql_details(sql), "snapshots": snapshots, "rows": rows}
        if reason:
            details["error"] = reason
        if reused:
            details["reused"] = True  # answered with a kept result of the same SQL over the same snapshots
        self._audit(AuditAction.WORKSPACE_QUERY, result, **details)


# -- helpers ------------------------------------------------------------------------------------------------


def _decrypt_granted(hub: Hub, actor: Actor, clock: Clock) -> tuple[list[Opened], SnapshotLease]:
    """Decide every granted snapshot (a denial stops the open before anything is decrypted), then lease them
    all at once from the shared cache, which decrypts through the gate what it does not hold."""
    assert actor.user_id is not None
    with hub.session() as session:
        granted = _granted(active_grants(session, actor.user_id, clock))
        decided: list[tuple[Snapshot, Decision]] = []
        for (snapshot, _), decision in _decide_granted(session, hub.audit, actor, granted, clock):
            if not decision.allowed:
                raise Forbidden(decision.verdict.reason_ja, decision.verdict.reason_en, decision)
            decided.append((snapshot, decision))
        opened = [
            Opened(snapshot.id, snapshot.dataset.name, snapshot.period, snapshot.version, snapshot.resource,
                   decision.action, -1, decision)
            for snapshot, decision in decided
        ]  # fmt: skip
    if not opened:  # refused without a snapshot to decide on: the refusal is a decision all the same
        ja, en = "有効な利用承認がありません", "the user has no active grant"
        resource = Resource(ResourceType.SNAPSHOT.value, None, "workspace")
        record_decision(hub.audit, actor, Action.SNAPSHOT_READ.value, resource, deny(NO_GRANT_POLICY, ja, en))
        raise WorkspaceError(ja, en)
    lease = hub.snapshot_cache.open([Granted(o.decision, o.snapshot_id, o.ref) for o in opened])
    return [dataclasses.replace(o, fd=fd) for o, fd in zip(opened, lease.fds, strict=True)], lease


def _decide_each(
    session: Session, audit: AuditLog, actor: Actor, items: list[Opened], clock: Clock
) -> list[tuple[Opened, Decision]]:
    """One recorded decision per action for the snapshots a query reads (read, or read_rows)."""
    result: list[tuple[Opened, Decision]] = []
    for action in sorted({o.action for o in items}):
        group = [o for o in items if o.action == action]
        resources = [Resource.snapshot(session.get_one(Snapshot, o.snapshot_id)) for o in group]
        result += zip(
            group, authorize_each(session, audit, actor, action, resources, clock=clock), strict=True
        )
    return result


def _decide_granted(
    session: Session, audit: AuditLog, actor: Actor, granted: list[tuple[Snapshot, bool]], clock: Clock
) -> list[tuple[tuple[Snapshot, bool], Decision]]:
    """The opening decisions: every granted snapshot, one recorded entry per action."""
    result: list[tuple[tuple[Snapshot, bool], Decision]] = []
    for rows in (False, True):
        group = [g for g in granted if g[1] is rows]
        action = Action.SNAPSHOT_READ_ROWS if rows else Action.SNAPSHOT_READ
        resources = [Resource.snapshot(s) for s, _ in group]
        result += zip(
            group, authorize_each(session, audit, actor, action, resources, clock=clock), strict=True
        )
    return result


def granted_set(session: Session, user_id: int, clock: Clock) -> GrantedSet:
    """What a workspace opened now for ``user_id`` would hold (nothing is decided or decrypted)."""
    return frozenset((s.id, rows) for s, rows in _granted(active_grants(session, user_id, clock)))


def _granted(grants: list[Grant]) -> list[tuple[Snapshot, bool]]:
    """The latest granted version of each (dataset, period), and whether a row-level grant covers it."""
    latest: dict[tuple[str, Any], Snapshot] = {}
    rows: dict[int, bool] = {}
    for grant in grants:
        for snapshot in grant.snapshots:
            rows[snapshot.id] = rows.get(snapshot.id, False) or grant.row_level
            key = (snapshot.dataset.name, snapshot.period)
            if key not in latest or latest[key].version < snapshot.version:
                latest[key] = snapshot
    return [(s, rows[s.id]) for _, s in sorted(latest.items())]


def _lapsed(opened: list[Opened], grants: list[Grant]) -> list[Opened]:
    plain = {s.id for g in grants for s in g.snapshots}
    rows = {s.id for g in grants if g.row_level for s in g.snapshots}
    return [
        o for o in opened
        if o.snapshot_id not in (rows if o.action == Action.SNAPSHOT_READ_ROWS else plain)
    ]  # fmt: skip


def _sql_details(sql: str) -> dict[str, object]:
    pieces, used = [], 0
    for start in range(0, len(sql), SQL_PIECE):
        piece = sql[start : start + SQL_PIECE]
        used += len(piece.encode("utf-8"))
        if used > SQL_BUDGET:
            break
        pieces.append(piece)
    complete = sum(map(len, pieces)) == len(sql)
    return {"sql": pieces, "sql_complete": complete, "sql_sha256": hashlib.sha256(sql.encode()).hexdigest()}


def _open_failed(header: dict[str, Any]) -> WorkspaceError:
    if header.get("kind") == "lockdown":
        return WorkspaceError(
            f"サンドボックスを確認できないため作業環境を開きません: {header.get('ja', '')}",
            f"the sandbox did not verify, the workspace stays closed: {header.get('en', '')}",
        )
    return WorkspaceError(
        "作業環境を準備できませんでした",
        f"the worker could not set up the workspace: {_describe_error(header)}",
    )


def _query_error(header: dict[str, Any], limits: WorkspaceLimits, db: str) -> WorkspaceError:
    kind = header.get("kind")
    if kind == "interrupted":
        return _timeout(limits.timeout, closed=False)
    if header.get("type") == "OutOfMemoryException":  # the sandbox cannot spill to disk: name the limit
        setting, mib = (
            ("workspace.memory_mib", limits.memory_mib)
            if db == "user"
            else ("workspace.control_memory_mib", limits.control_memory_mib)
        )
        return QueryFailed(
            f"作業環境のメモリ上限（{mib} MiB）を超えました。集計の軸や期間を減らすか、管理者に設定 {setting}"
            " の見直しを依頼してください",
            f"OutOfMemoryException: the query needs more than the workspace's {mib} MiB ({setting}); use fewer"
            f" dimensions or periods, or ask an administrator to raise the setting ({header.get('message', '')})",
        )
    if kind == "too_large":
        return QueryRefused(
            "結果が大きすぎます。集計するか件数を絞ってください",
            f"the result is too large ({header.get('bytes')} bytes > {limits.max_result_bytes})",
        )
    return QueryFailed("問い合わせでエラーが発生しました", _describe_error(header))


def _describe_error(header: dict[str, Any]) -> str:
    message = header.get("message") or "details withheld: the message may contain data values"
    return f"{header.get('type', header.get('kind'))}: {message}"


def _timeout(seconds: float, *, closed: bool) -> QueryTimeout:
    ja = f"問い合わせが制限時間（{seconds:g} 秒）を超えたため中断しました"
    en = f"the query exceeded its {seconds:g} s limit and was interrupted"
    if closed:
        ja += "。ワーカーを停止したため作業環境は閉じられました"
        en += "; the worker had to be killed and the workspace is closed"
    return QueryTimeout(ja, en, closed=closed)
