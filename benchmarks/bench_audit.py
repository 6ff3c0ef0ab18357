"""Benchmark: audit log appends and verification on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_audit.py                      # 1000 appends, verify 100k entries
    .venv/bin/python benchmarks/bench_audit.py --entries 20000 --no-postgres

For each database (a fresh SQLite file; a fresh schema in PostgreSQL, dropped afterwards):
1. ``append()`` single-threaded, each its own committed transaction (the durable path): appends/s, the best
   of three runs of ``--appends``/3 (the machine is shared);
2. the log is grown to ``--entries`` with ``append_in`` (1000 entries per transaction);
3. ``append()`` again at that size, to show the cost does not grow with the log (O(log n) head);
4. ``verify()`` over the whole log (O(n)): seconds, one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import Base, make_engine

POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
BATCH = 1000


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'catalog.db'}")
        yield engine
        engine.dispose()


@contextmanager
def postgres_engine(url: str) -> Iterator[Engine]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{url}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def appends_per_second(log: AuditLog, count: int, rounds: int = 3) -> float:
    """Best of ``rounds`` runs of count/rounds appends: the machine is shared, the best run is the cost."""
    per_round = max(1, count // rounds)
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(per_round):
            log.append(
                actor="bench", action=AuditAction.WORKSPACE_QUERY, resource=f"juki/v{i}", details={"rows": i}
            )
        best = max(best, per_round / (time.perf_counter() - start))
    return best


def grow(log: AuditLog, engine: Engine, target: int) -> float:
    """Grow the log to ``target`` entries in batched transactions; returns entries/s."""
    start = time.perf_counter()
    missing = target - log.size()
    while missing > 0:
        with Session(engine) as session:
            for i in range(min(BATCH, missing)):
                log.append_in(
                    session, actor="bench", action=AuditAction.IMPORT, resource="juki", details={"rows": i}
                )
            session.commit()
        missing = target - log.size()
    return target / (time.perf_counter() - start)


def run(name: str, engine: Engine, appends: int, entries: int) -> None:
    Base.metadata.create_all(engine)
    log = AuditLog(engine, Ed25519PrivateKey.generate())
    empty_rate = appends_per_second(log, appends)
    batch_rate = grow(log, engine, entries)
    full_rate = appends_per_second(log, appends)
    start = time.perf_counter()
    report = log.verify()
    seconds = time.perf_counter() - start
    assert report.ok, report.message_en
    print(
        f"{name:10s} append(): {empty_rate:7.0f}/s on an empty log, {full_rate:7.0f}/s at {report.size:,} entries"
        f" | append_in batches: {batch_rate:7.0f}/s | verify {report.size:,}: {seconds:.2f} s"
        f" ({report.size / seconds:,.0f} entries/s, {report.checkpoints_checked} checkpoints)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--appends", type=int, default=1000, help="single-threaded append() calls per measurement"
    )
    parser.add_argument("--entries", type=int, default=100_000, help="log size for the verify measurement")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="PostgreSQL URL (a fresh schema is used)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with sqlite_engine() as engine:
        run("SQLite", engine, args.appends, args.entries)
    if not args.no_postgres:
        with postgres_engine(args.postgres) as engine:
            run("PostgreSQL", engine, args.appends, args.entries)


if __name__ == "__main__":
    main()
