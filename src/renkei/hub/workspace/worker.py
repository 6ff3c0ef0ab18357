"""The workspace's worker process: one per workspace, started by :mod:`.process` as an unprivileged user.

It holds no key and opens no catalog: it gets only the sealed memfds of the granted snapshots (``pass_fds``)
and a plan from the parent. It runs two DuckDB databases, each locked down (:mod:`.lockdown`) to exactly the
files it may read: ``user`` (views over the snapshots; user SQL runs only here) and ``control`` (the same
views plus ``_record_keys``; hub SQL only). Requests and replies are frames on stdin/stdout (:mod:`.protocol`).

SIGUSR1 from the parent interrupts the running query: the signal is blocked in every thread (the mask is set
before DuckDB starts its threads, which inherit it) and taken by one thread with ``sigwait``, because a Python
signal handler would only run after the query returned.

Imports: stdlib, duckdb, pyarrow, and the two leaf modules :mod:`.lockdown` and :mod:`.protocol` only (the
parent's bootstrap blocks SIGUSR1 before importing this module, so no thread of the libraries escapes it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

import duckdb
import pyarrow as pa

from renkei.hub.workspace import lockdown
from renkei.hub.workspace.protocol import read_frame, read_json, write_frame, write_json

REQUEST_FD = 0
MAX_KEYS_FRAME = 2 << 30  # the record keys of a city of millions, as Arrow bytes
INTERRUPT = signal.SIGUSR1
BATCH_ROWS = 8192
# Messages of these errors come from the query text and the schema, never from data values.
# Errors whose text names SQL, settings or sizes, never a data value (an out-of-memory error says what it
# tried to allocate and how much was in use: what an administrator needs to size the limits).
SAFE_MESSAGES = frozenset(
    {
        "ParserException",
        "BinderException",
        "CatalogException",
        "SyntaxException",
        "PermissionException",
        "OutOfMemoryException",
    }
)


class Worker:
    def __init__(self, reply_fd: int) -> None:
        self.databases: dict[str, Any] = {}
        self.reply_fd = reply_fd

    def serve(self) -> None:
        threading.Thread(target=self._interrupts, daemon=True).start()
        while True:
            try:
                request = read_json(REQUEST_FD)
            except EOFError:
                return  # the parent is gone or closed the workspace
            if request.get("op") == "close":
                return
            self._answer(request)

    def _answer(self, request: dict[str, Any]) -> None:
        try:
            header, payload = self._dispatch(request)
        except duckdb.InterruptException:
            header, payload = {"ok": False, "kind": "interrupted"}, None
        except lockdown.LockdownError as e:
            header, payload = {"ok": False, "kind": "lockdown", "ja": e.ja, "en": e.en}, None
        except duckdb.Error as e:
            header, payload = _sql_error(e), None
        except (ValueError, KeyError, TypeError) as e:
            header, payload = {"ok": False, "kind": "protocol", "message": str(e)[:500]}, None
        write_json(self.reply_fd, header)
        if payload is not None:
            write_frame(self.reply_fd, payload)

    def _dispatch(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
        op = request["op"]
        if op == "open":
            self._open(request)
            return {"ok": True}, None
        if op == "keys":
            self._load_keys(read_frame(REQUEST_FD, MAX_KEYS_FRAME))
            return {"ok": True}, None
        if op == "query":
            return self._query(
                request["db"], request["sql"], int(request["max_rows"]), int(request["max_bytes"])
            )
        raise ValueError(f"unknown op {op!r}")

    def _open(self, request: dict[str, Any]) -> None:
        if self.databases:
            raise ValueError("already open")
        for name in ("user", "control"):
            spec = request[name]
            con = duckdb.connect(":memory:")
            lockdown.apply(con, [tuple(s) for s in spec["lockdown"]])
            for statement in spec["setup"]:
                con.execute(statement)
            self.databases[name] = con

    def _load_keys(self, payload: bytes) -> None:
        """The record keys arrive as Arrow bytes, after the views: no file holds them, and only the control
        database (which runs hub SQL alone) gets them."""
        con = self.databases["control"]
        con.register("_incoming_keys", pa.ipc.open_stream(payload).read_all())
        try:
            con.execute(
                "CREATE TABLE _record_keys AS SELECT pid::VARCHAR AS pid, rkey::UBIGINT AS rkey FROM _incoming_keys"
            )  # the name views.RECORD_KEYS (this module imports no hub module)
        finally:
            con.unregister("_incoming_keys")

    def _query(self, db: str, sql: str, max_rows: int, max_bytes: int) -> tuple[dict[str, Any], bytes | None]:
        reader = self.databases[db].sql(sql)
        if reader is None:  # a statement without a result (hub SQL only; user SQL is a SELECT)
            table = pa.table({})
        else:
            table, truncated = _take(reader.to_arrow_reader(BATCH_ROWS), max_rows)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        payload = sink.getvalue().to_pybytes()
        if len(payload) > max_bytes:
            return {"ok": False, "kind": "too_large", "bytes": len(payload)}, None
        return {"ok": True, "rows": table.num_rows, "truncated": reader is not None and truncated}, payload

    def _interrupts(self) -> None:
        while True:
            signal.sigwait({INTERRUPT})
            for con in list(self.databases.values()):
                con.interrupt()


def _take(reader: Any, max_rows: int) -> tuple[Any, bool]:
    """At most ``max_rows`` rows, reading one batch past them only to know that there were more."""
    batches, rows = [], 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        if rows > max_rows:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, max_rows), rows > max_rows


def _sql_error(error: Exception) -> dict[str, Any]:
    kind = type(error).__name__
    message = str(error) if kind in SAFE_MESSAGES else ""
    return {"ok": False, "kind": "sql", "type": kind, "message": message[:2000]}


def probe() -> None:
    """Print what this interpreter loads, for the parent to check before it trusts it with a workspace."""
    versions = {"duckdb": duckdb.__version__, "pyarrow": pa.__version__, "python": sys.version_info[:2]}
    sys.stdout.write(json.dumps(versions))


def main() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {INTERRUPT})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails (EFBIG), not a crash
    if sys.argv[-1] == "--probe":
        probe()
        return
    Worker(_private_stdout()).serve()


def _private_stdout() -> int:
    """The reply pipe on a descriptor of its own; fd 1 goes to /dev/null, so nothing a library prints
    (DuckDB's progress bar did) can corrupt the frames."""
    reply = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return reply


if __name__ == "__main__":
    main()
