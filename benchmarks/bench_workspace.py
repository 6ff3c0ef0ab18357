"""Benchmark: the sandboxed workspace against plain DuckDB over the same, unencrypted Parquet, in one script.

    .venv/bin/python benchmarks/bench_workspace.py                       # 1,500,000 residents × 10 years
    .venv/bin/python benchmarks/bench_workspace.py --residents 100000 --years 3   # a quick look
    .venv/bin/python benchmarks/bench_workspace.py --dir D --reuse --rounds 10    # again, 10 new workspaces

Set-up (not timed): a fresh hub home; per year a 住基 snapshot of ``--residents`` rows and a 介護 snapshot of
about 20% of them, with the registered specs' exact columns, written by pyarrow and stored through
``Vault.store`` (age encryption) with their record keys (``write_record_keys``, as the importer stores them)
and their catalog rows — the sending side is skipped, since it is not what is measured; an analyst holds
grants on every snapshot. The same Parquet files stay on disk, unencrypted, for the baseline.

Measured, each in the same run:
1. opening a workspace (authorize, decrypt into sealed memfds, worker start, lock-down, views) plus its first
   query — the "first query of a new workspace"; then the stored record keys loaded into the control
   database (which starts after that first query);
2. Q1 population by ward × 5-year band × period, Q2 juki ⋈ kaigo by pid and period, warm (best of 3) through the
   workspace and through plain DuckDB (same threads and memory limit, no sandbox) — the ratio;
3. a builder table (one ward's towns × 10-year band, linked to kaigo: about 10,000 cells) — the control query's
   time against disclosure control's (primary and secondary suppression with its audit, and perturbation);
4. while one workspace runs a heavy query, a second user's small query — its latency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

Q1 = 'SELECT "住所_ward", (age // 5) * 5 AS band, period, count(*) AS n FROM juki GROUP BY ALL ORDER BY ALL'
Q2 = (
    'SELECT j."住所_ward", k."要介護度", count(*) AS n, sum(k."給付費月額") AS benefit FROM juki j '
    "JOIN kaigo k ON k.pid = j.pid AND k.period = j.period GROUP BY ALL ORDER BY ALL"
)
HEAVY = "SELECT count(*) FROM juki a JOIN juki b ON a.household_id = b.household_id AND a.period = b.period"
SMALL = "SELECT count(*) FROM kaigo"
WARDS = ["東灘区", "灘区", "中央区", "兵庫区", "北区", "長田区", "須磨区", "垂水区", "西区"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=1_500_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="measure again on the hub a run left in --dir")
    parser.add_argument(
        "--rounds", type=int, default=1, help="new workspaces timed (a busy machine wants more)"
    )
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-ws-"))
    hub, actor, plain = reopen(root) if args.reuse else build(root, args.residents, args.years)
    report(run(hub, actor, plain, args.rounds), args.residents, args.years)


# --- the hub ------------------------------------------------------------------------------------------------


def build(root: Path, residents: int, years: int) -> tuple[Any, Any, dict[str, list[Path]]]:
    from renkei.hub.home import init_hub

    hub = init_hub(root / "hub")
    plain: dict[str, list[Path]] = {"juki": [], "kaigo": []}
    rng = np.random.default_rng(0)
    people = Population(rng, residents)
    with hub.session() as session:
        sender = _sender(session)
        for year in range(2025 - years + 1, 2026):
            period = dt.date(year, 1, 1)
            people.age_one_year(rng)
            for name, table in (("juki", people.juki(rng)), ("kaigo", people.kaigo(rng))):
                path = root / "plain" / f"{name}_{year}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, path, compression="zstd")
                plain[name].append(path)
                _store(hub, session, sender, name, period, path, table.num_rows)
        session.commit()
    return hub, _analyst_with_grants(hub), plain


def reopen(root: Path) -> tuple[Any, Any, dict[str, list[Path]]]:
    from renkei.hub.access.authz import Actor
    from renkei.hub.access.people import User
    from renkei.hub.home import Hub

    hub = Hub(root / "hub")
    plain = {name: sorted((root / "plain").glob(f"{name}_????.parquet")) for name in ("juki", "kaigo")}
    with hub.session() as session:
        user = session.query(User).filter_by(login_id="bunseki-analyst").one()
        return hub, Actor.for_user(user, terminal="bench"), plain


class Population:
    """Residents with stable pids and households, ageing a year per period."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.pid = _hex_ids(rng, n)
        self.household = _hex_ids(rng, max(1, n // 2))[rng.integers(0, max(1, n // 2), n)]
        self.age = rng.integers(0, 100, n).astype(np.int16)
        self.ward = rng.integers(0, len(WARDS), n)
        self.town = rng.integers(0, 800, n)
        self.sex = rng.integers(0, 2, n)

    def age_one_year(self, rng: np.random.Generator) -> None:
        self.age = np.minimum(self.age + 1, 105).astype(np.int16)

    def juki(self, rng: np.random.Generator) -> pa.Table:
        from renkei.spec import bundled_specs, load_spec

        n = len(self.pid)
        values = self._common(n) | {
            "household_id": pa.array(self.household),
            "性別": pa.array(np.where(self.sex == 0, "男", "女")),
            "続柄": pa.array(rng.choice(["世帯主", "妻", "子"], n)),
            "国籍": pa.array(np.full(n, "日本")),
            "異動事由": pa.array(rng.choice(["転入", "出生", ""], n)),
        }
        return _conform(load_spec(bundled_specs()["juki"]).output_schema, values, n)

    def kaigo(self, rng: np.random.Generator) -> pa.Table:
        from renkei.spec import bundled_specs, load_spec

        chosen = np.flatnonzero(rng.random(len(self.pid)) < 0.2)
        values = {k: v.take(pa.array(chosen)) for k, v in self._common(len(self.pid)).items()}
        values |= {
            "被保険者区分": pa.array(np.full(len(chosen), "第1号")),
            "要介護度": pa.array(rng.choice(["要支援1", "要介護1", "要介護3", "要介護5"], len(chosen))),
            "給付費月額": pa.array(rng.integers(10_000, 400_000, len(chosen)), pa.int64()),
        }
        return _conform(load_spec(bundled_specs()["kaigo"]).output_schema, values, len(chosen))

    def _common(self, n: int) -> dict[str, pa.Array]:
        wards = np.array(WARDS)[self.ward]
        return {
            "pid": pa.array(self.pid),
            "age": pa.array(self.age),
            "住所_ward": pa.array(wards),
            "住所_town": pa.array(np.char.add(wards, np.char.mod("町%03d", self.town))),
        }


def _hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    return np.array([row.tobytes().hex() for row in raw])


def _conform(schema: pa.Schema, values: dict[str, pa.Array], n: int) -> pa.Table:
    """Every column of the spec, in order: given values, the rest null."""
    return pa.table([values.get(f.name, pa.nulls(n, f.type)).cast(f.type) for f in schema], schema=schema)


def _sender(session: Any) -> Any:
    from renkei.hub.catalog import Sender

    sender = Sender(name="bench", public_key="A" * 43 + "=")
    session.add(sender)
    session.flush()
    return sender


def _store(hub: Any, session: Any, sender: Any, name: str, period: dt.date, path: Path, rows: int) -> None:
    from sqlalchemy import select

    from renkei.hub.catalog import Dataset, Snapshot
    from renkei.hub.disclosure.record_keys import RECORD_KEYS_FILE, load_record_key, write_record_keys
    from renkei.hub.importer import DATA_FILE
    from renkei.hub.vault import SnapshotRef

    dataset = session.scalars(select(Dataset).where(Dataset.name == name)).one()
    keys = path.with_name(f"{path.stem}.keys.parquet")
    keys.unlink(missing_ok=True)
    write_record_keys(load_record_key(hub.home), path, keys)
    hub.vault.store(SnapshotRef(name, period, 1), {DATA_FILE: path, RECORD_KEYS_FILE: keys})
    keys.unlink()
    session.add(
        Snapshot(
            dataset_id=dataset.id, period=period, version=1, rows=rows, bytes=path.stat().st_size,
            content_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), spec_hash=dataset.spec_hash,
            sender_id=sender.id, package_id=os.urandom(16).hex(),
        )
    )  # fmt: skip


def _analyst_with_grants(hub: Any) -> Any:
    from renkei.cli.demo_analysis import approve_demo_application
    from renkei.clock import SYSTEM_CLOCK
    from renkei.hub.access.authz import Actor
    from renkei.hub.access.grants import city_today
    from renkei.hub.access.people import Role, User
    from renkei.hub.catalog import Department

    with hub.session() as session:
        for login, role, department in (
            ("bunseki-analyst", Role.ANALYST, "政策調査課"),
            ("shimin-steward", Role.STEWARD, "市民課"),
            ("kaigo-steward", Role.STEWARD, "介護保険課"),
        ):
            dept = session.query(Department).filter_by(name=department).one_or_none() or Department(
                name=department
            )
            session.add(User(login_id=login, display_name=login, role=role, department=dept))
        session.commit()
    approve_demo_application(hub, city_today(SYSTEM_CLOCK))
    with hub.session() as session:
        user = session.query(User).filter_by(login_id="bunseki-analyst").one()
        return Actor.for_user(user, terminal="bench")


# --- the measurements ---------------------------------------------------------------------------------------


def best(func: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def run(hub: Any, actor: Any, plain: dict[str, list[Path]], rounds: int = 1) -> dict[str, Any]:
    from renkei.cli.demo_analysis import DEMO_TABLE
    from renkei.hub.tables.request import AgeBand, Category, Filter
    from renkei.hub.workspace.workspace import Workspace

    figures: dict[str, Any] = _decryption(hub)
    start = time.perf_counter()
    Workspace.open(hub, actor).close()  # the server's first workspace also finds the worker's interpreter
    figures["server_first_open"] = time.perf_counter() - start
    for name in ("open", "first_query", "keys_ready", "load"):
        figures[name] = []
    for _ in range(rounds - 1):
        _first_query(hub, actor, figures).close()
    workspace = _first_query(hub, actor, figures)
    baseline = _plain(plain, workspace.limits)
    for name, sql in (("q1", Q1), ("q2", Q2)):
        figures[f"{name}_plain"] = best(lambda sql=sql: baseline.sql(sql).to_arrow_table())
        figures[f"{name}_workspace"] = best(lambda sql=sql: workspace.query(sql))
    request = DEMO_TABLE.model_copy(  # one ward's towns × 10-year bands: about 10,000 cells with margins
        update={
            "dimensions": [Category(column="住所_town"), AgeBand(width=10, top=100)],
            "filters": [Filter(column="住所_ward", values=[WARDS[0]])],
        }
    )
    figures |= _builder(hub, workspace, actor, request)
    figures["concurrent_small"] = _concurrent(hub, actor, workspace)
    workspace.close()
    return figures


def _first_query(hub: Any, actor: Any, figures: dict[str, Any]) -> Any:
    """A new workspace's open, its first query (Q1), then its stored record keys loaded; the workspace."""
    from renkei.hub.workspace.workspace import Workspace

    figures["load"].append(os.getloadavg()[0])
    start = time.perf_counter()
    workspace = Workspace.open(hub, actor)
    figures["open"].append(time.perf_counter() - start)
    workspace.query(Q1)
    figures["first_query"].append(time.perf_counter() - start)
    workspace.control_query("SELECT count(*) FROM _record_keys")  # loads the stored keys now
    figures["keys_ready"].append(time.perf_counter() - start)
    return workspace


def _decryption(hub: Any) -> dict[str, float]:
    """Every snapshot's data into sealed memfds, by one decrypting process and by one per core (best of 2)."""
    from renkei.hub.importer import DATA_FILE

    files = [(ref, DATA_FILE) for ref in hub.vault.snapshots()]
    figures = {"bytes": float(sum(hub.vault.root.joinpath(*r.parts, "data.parquet.age").stat().st_size
                                  for r, _ in files))}  # fmt: skip
    for label, processes in (("decrypt_one", 1), ("decrypt_cores", None)):
        figures[label] = best(lambda p=processes: [os.close(fd) for fd in hub.vault.decrypt_to_memfds(
            files, processes=p)], repeat=2)  # fmt: skip
    return figures


def _plain(plain: dict[str, list[Path]], limits: Any) -> duckdb.DuckDBPyConnection:
    """Plain DuckDB over the same Parquet, unencrypted and unsandboxed, with the workspace's view shape."""
    con = duckdb.connect()
    con.execute(f"SET threads = {limits.threads}; SET memory_limit = '{limits.memory_mib}MiB'")
    for name, paths in plain.items():
        parts = [f"SELECT *, DATE '{p.stem[-4:]}-01-01' AS period FROM read_parquet('{p}')" for p in paths]
        con.execute(f"CREATE VIEW {name} AS " + " UNION ALL BY NAME ".join(parts))
    return con


def _builder(hub: Any, workspace: Any, actor: Any, request: Any) -> dict[str, float]:
    from renkei.hub.analysis import service
    from renkei.hub.tables.compile import compile_table
    from renkei.hub.tables.service import read_cells

    compiled = compile_table(request, workspace.schema())
    start = time.perf_counter()
    table = workspace.control_query(compiled.control_sql)
    query_time = time.perf_counter() - start
    cells = read_cells(table, compiled.dimensions)
    protect = service.table_protector(hub)
    control_time = best(lambda: protect(request, compiled, cells))
    shown, _ = protect(request, compiled, cells)
    return {"builder_query": query_time, "builder_control": control_time, "builder_cells": float(len(shown))}


def _concurrent(hub: Any, actor: Any, busy: Any) -> float:
    """A second user's small query while the first workspace runs a heavy self-join."""
    from renkei.hub.workspace.workspace import Workspace

    other = Workspace.open(hub, actor)
    heavy = threading.Thread(target=lambda: _ignore(lambda: busy.query(HEAVY)), daemon=True)
    heavy.start()
    time.sleep(1.0)
    latency = best(lambda: other.query(SMALL), repeat=3)
    heavy.join()
    other.close()
    return latency


def _ignore(func: Callable[[], object]) -> None:
    try:
        func()
    except Exception as exc:  # a timeout of the heavy query is fine: only the other user's latency matters
        print(f"(heavy query: {type(exc).__name__})")


def _spread(values: list[float], unit: str = " s") -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}{unit}"
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low:.2f}–{high:.2f}{unit} (median {middle:.2f}{unit})"


def report(f: dict[str, Any], residents: int, years: int) -> None:
    print(f"\nworkspace benchmark: {residents:,} residents × {years} years ({residents * years:,} juki rows)")
    print(
        f"decrypt {f['bytes'] / 1e6:,.0f} MB into sealed memfds: one process {f['decrypt_one']:.2f} s, "
        f"one per core ({os.cpu_count()}) {f['decrypt_cores']:.2f} s ({f['decrypt_one'] / f['decrypt_cores']:.2f}×)"
    )
    print(f"the server's first workspace (finds the worker's interpreter) {f['server_first_open']:.2f} s")
    rounds = f"{len(f['open'])} new workspace(s) at load average {_spread(f['load'], '')}"
    print(f"{rounds}: open {_spread(f['open'])}; the first query answered after {_spread(f['first_query'])}")
    print(f"stored record keys loaded for disclosure control after {_spread(f['keys_ready'])}")
    for q in ("q1", "q2"):
        ratio = f[f"{q}_workspace"] / f[f"{q}_plain"]
        print(f"{q}: plain {f[f'{q}_plain']:.3f} s, workspace {f[f'{q}_workspace']:.3f} s, ratio {ratio:.2f}")
    share = f["builder_control"] / f["builder_query"]
    print(
        f"builder table: {int(f['builder_cells']):,} cells; control query {f['builder_query']:.2f} s, "
        f"disclosure control {f['builder_control']:.2f} s ({share:.0%} of the query)"
    )
    print(f"another user's small query during a heavy one: {f['concurrent_small']:.3f} s")


if __name__ == "__main__":
    main()
