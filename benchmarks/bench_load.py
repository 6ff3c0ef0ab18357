"""Load and page speed: simulated staff against the real portal (``renkei serve`` over TLS on 127.0.0.1).

    make bench-pages    # every page at p95 with 20 concurrent users, against /favicon.ico in the same run
    make load           # 50 concurrent staff for 5 minutes, then a ramp until p95 degrades

    .venv/bin/python benchmarks/bench_load.py pages --demo D [--users 20 --seconds 60]
    .venv/bin/python benchmarks/bench_load.py load  --demo D [--users 50 --seconds 300 --ramp 10,25,50,75,100]

``--page-think A,B`` (pages mode): each user waits uniform(A, B) seconds after each page and its favicon, as
Locust's ``between(A, B)``; without it the users go from page to page at once (the closed loop of the figures
in docs/benchmarks.md). Each run prints the server's CPU seconds (user + system, from /proc/PID/stat, its
children included) per request served, and the load generator's own: a figure that does not depend on how
busy the machine is.

``--profile FILE`` runs the server under benchmarks/sample_serve.py (every thread's stack every 5 ms, written
to FILE when the server stops); ``--server-log FILE`` keeps the server's stderr (tracebacks of 500s).

``--demo D`` is a directory ``renkei demo --dir D`` made (without ``--serve``): its hub home, terminal
certificate and server certificate are used; with ``--database-url`` the hub's catalog is that database (the
demo must have been built with the same ``RENKEI_DATABASE_URL``). Set-up (not timed): the script designates its
own staff in the hub (one account per simulated user, so that each TOTP code is used once per user; password
already changed; TOTP enrolled), gives each analyst an approved application on 住基 and 介護 (all periods) and a
download quota, files applications for the stewards to approve, then starts ``renkei serve`` as a subprocess and
samples its RSS every second.

Each simulated user is an asyncio task with its own httpx client (the terminal's client certificate, its own
cookies), on loopback only, for a bounded time. It logs in (password, then the TOTP code of the current
30-second step: a user logs in again only in a later step) and then, by role:

- analyst: the catalog (``/datasets``, ``/datasets/juki``), a table (``POST /api/v1/tables``, one of six standard ones), SQL
  (``POST /api/v1/query``), an export of that table (``POST /api/v1/exports``; the login counts as step-up);
- steward: the catalog, the approval inbox (``/reviews``), approve one waiting part;
- pages mode: each role's pages (``GET``) in turn, and ``/favicon.ico`` as the floor.

Afterwards the audit log is read and each client's successful actions are counted against its entries: the
figure "lost" is what a client did and the log does not show.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "港の見える丘で朝の珈琲を"  # noqa: S105 (a benchmark account's password)
ANALYST_DEPT, STEWARD_DEPT = "政策調査課", "市民課"
WARD, AGE10 = {"kind": "column", "column": "住所_ward"}, {"kind": "age_band", "width": 10, "top": 90}
TABLES = [
    {"dataset": "juki", "dimensions": dimensions, "title": "負荷試験の表"}
    for dimensions in (
        [WARD, AGE10],
        [WARD, {"kind": "column", "column": "性別"}],
        [{"kind": "age_band", "width": 5, "top": 100}, {"kind": "column", "column": "性別"}],
        [WARD, {"kind": "column", "column": "続柄"}],
        [AGE10, {"kind": "period"}],
        [WARD, {"kind": "period"}],
    )
]  # each analyst's round picks one: six standard tables
SQLS = [
    f"SELECT {columns}, count(*) AS n FROM juki GROUP BY ALL ORDER BY ALL"
    for columns in ('"住所_ward"', '"性別"', '"住所_ward", "性別"', '"続柄"')
]
PAGES = {
    "analyst": ["/home", "/datasets", "/datasets/juki", "/applications", "/grants", "/workspace", "/exports",
                "/dashboards"],
    "steward": ["/home", "/datasets", "/reviews", "/releases/review"],
    "admin": ["/home", "/admin", "/admin/users", "/admin/cards", "/admin/terminals"],
    "auditor": ["/home", "/audit", "/audit/inspection"],
}  # fmt: skip
FLOOR = "/favicon.ico"
RUN = f"{int(time.time()) % 100_000:05d}"  # each run designates its own accounts


# --- set-up --------------------------------------------------------------------------------------------------


@dataclass
class Account:
    login_id: str
    role: str
    secret: str


def designate_staff(home: Path, counts: dict[str, int], pending: int) -> list[Account]:
    """The benchmark's own staff in the hub (what ``renkei user add`` and ``user totp`` do), grants, quotas."""
    from sqlalchemy import select

    from renkei.hub.access import totp
    from renkei.hub.access.applications import (
        DatasetRequest,
        approve_part,
        create_application,
        submit,
    )
    from renkei.hub.access.authz import Actor
    from renkei.hub.access.designation import designate_user
    from renkei.hub.access.passwords import Passwords, set_password
    from renkei.hub.access.people import Role, User
    from renkei.hub.access.quotas import set_quota
    from renkei.hub.catalog import get_or_create_department
    from renkei.hub.home import Hub

    hub = Hub(home)
    today = dt.datetime.now(dt.UTC).date()
    departments = {
        "analyst": ANALYST_DEPT,
        "steward": STEWARD_DEPT,
        "admin": ANALYST_DEPT,
        "auditor": "監査課",
    }
    hashing = Passwords()
    accounts: list[Account] = []
    with hub.session() as session:
        users = {u.login_id: u for u in session.scalars(select(User))}
        stewards = {u.department_id: u for u in users.values() if u.role == Role.STEWARD}
        admin = Actor.for_user(users["seisaku-admin"], terminal="demo-terminal")
        for role, count in counts.items():
            for n in range(count):
                login_id = f"load{RUN}-{role}-{n:03d}"
                get_or_create_department(session, departments[role])
                user = designate_user(session, hub.audit, login_id=login_id, display_name=f"負荷 {role} {n}",
                                      role=Role(role), department=departments[role], password=PASSWORD,
                                      actor="bench", passwords=hashing)  # fmt: skip
                set_password(
                    session, user, PASSWORD, passwords=hashing, changed_by=login_id, must_change=False
                )
                uri = totp.enroll_totp(session, user, kek=hub.kek, enrolled_by="bench")
                session.commit()
                accounts.append(Account(login_id, role, uri.split("secret=")[1].split("&")[0]))
                if role != "analyst":
                    continue
                actor = Actor.for_user(user, terminal="demo-terminal")
                application = _application(session, hub, actor, today, create_application, DatasetRequest)
                submit(session, hub.audit, actor, application.id)
                for part in list(application.parts):
                    steward = Actor.for_user(stewards[part.department_id], terminal="demo-terminal")
                    approve_part(session, hub.audit, steward, part.id)
                set_quota(session, hub.audit, admin, login_id, may_download=True, files_per_day=100_000,
                          rows_per_file=1_000_000, bytes_per_month=10**12)  # fmt: skip
        applicant = Actor.for_user(users["bunseki-analyst"], terminal="demo-terminal")
        for _ in range(pending):  # parts waiting for the stewards (市民課: 住基 only)
            application = _application(session, hub, applicant, today, create_application, DatasetRequest,
                                       datasets=("juki",))  # fmt: skip
            submit(session, hub.audit, applicant, application.id)
        session.commit()
    return accounts


def _application(session: Any, hub: Any, actor: Any, today: dt.date, create: Any, request: Any,
                 datasets: tuple[str, ...] = ("juki", "kaigo")) -> Any:  # fmt: skip
    from renkei.hub.access.applications import ApplicationForm

    form = ApplicationForm(purpose="負荷試験: 区・年齢別の人口と介護需要の把握", outputs="区・年齢階級別の集計表",
                           use_start=today, use_end=today + dt.timedelta(days=30), row_level=False,
                           requests=[request(d, all_periods=True) for d in datasets])  # fmt: skip
    return create(session, hub.audit, actor, form)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    plaintext: list[int] = field(default_factory=list)  # bytes of the decrypted snapshots' memfds, per sample
    workers: list[int] = field(default_factory=list)  # workspace workers, per sample
    load: list[float] = field(default_factory=list)  # 1-minute load average, per sample
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        start = time.monotonic()
        while not self.stop.wait(1.0):
            rss, plaintext, workers = _rss_tree(self.process.pid)
            self.rss.append((time.monotonic() - start, rss))
            self.plaintext.append(plaintext)
            self.workers.append(workers)
            self.load.append(os.getloadavg()[0])


def _rss_tree(pid: int) -> tuple[int, int, int]:
    """RSS of the server and its children (the workspace workers), in bytes; the bytes of the distinct memfds
    they hold (the decrypted snapshots: shared memory, not in the RSS); how many children."""
    total, todo, children = 0, [pid], 0
    memfds: dict[int, int] = {}
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for fd in Path(f"/proc/{p}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()).startswith("/memfd:"):
                        info = fd.stat()
                        memfds[info.st_ino] = info.st_size
            found = [int(c) for task in Path(f"/proc/{p}/task").iterdir()  # children of every thread
                     for c in (task / "children").read_text().split()]  # fmt: skip
            children += len(found)
            todo += found
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total, sum(memfds.values()), children


def start_server(
    demo: Path, port: int, env: dict[str, str], profile: Path | None = None, log: Path | None = None
) -> Server:
    renkei = [str(Path(sys.executable).parent / "renkei")]
    if profile is not None:  # the same server under the sampling profiler (benchmarks/sample_serve.py)
        renkei = [sys.executable, str(Path(__file__).with_name("sample_serve.py")), str(profile)]
    command = [*renkei, "serve", "--home", str(demo / "hub"), "--tls-cert", str(demo / "tls/server.crt"),
               "--tls-key", str(demo / "tls/server.key"), "--port", str(port)]  # fmt: skip
    errors = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    server = Server(process, f"https://localhost:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(server.base_url + FLOOR, verify=False, timeout=2)  # noqa: S501 (self-signed, loopback)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()  # not left running (e.g. on a port it could not bind)
                process.wait()
                raise SystemExit("the server did not start") from None
            time.sleep(0.5)
    threading.Thread(target=server.sample, daemon=True).start()
    return server


# --- the simulated staff -------------------------------------------------------------------------------------


@dataclass
class Stats:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    done: Counter[tuple[str, str]] = field(default_factory=Counter)  # (login_id, action) that succeeded


class Staff:
    def __init__(self, account: Account, base_url: str, demo: Path, stats: Stats, desk: int = 0) -> None:
        self.account, self.stats = account, stats
        terminal = demo / "terminal"
        # Each user at a desk of their own: its own loopback source address (127.0.1.<desk>), as staff on
        # separate terminals have, so the per-address login throttle sees one person per address.
        transport = httpx.AsyncHTTPTransport(
            verify=False,  # the demo's self-signed server certificate, on loopback
            cert=(str(terminal / "demo-terminal.crt"), str(terminal / "demo-terminal.key")),
            local_address=f"127.0.1.{desk % 250 + 1}",
        )
        self.client = httpx.AsyncClient(
            base_url=base_url, transport=transport, timeout=120, headers={"Accept-Language": "ja"}
        )
        self.csrf = ""
        self.last_step = -1

    async def timed(self, action: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        start = time.perf_counter()
        try:
            response = await self.client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            self._error(action, f"{type(error).__name__}: {error}")
            return None
        self.stats.times[action].append(time.perf_counter() - start)
        if response.status_code >= 400:
            self._error(action, f"{response.status_code} {url} {response.text[:200]}")
            return None
        return response

    def _error(self, action: str, what: str) -> None:
        self.stats.errors[action] += 1
        if sum(1 for e in self.stats.error_samples if f" {action}: " in e) < 3:  # the first 3 of each action
            self.stats.error_samples.append(f"{self.account.login_id} {action}: {what}")

    async def login(self) -> bool:
        from renkei.hub.access.totp import current_code

        while int(time.time() // 30) == self.last_step:  # one code per step and user
            await asyncio.sleep(1)
        self.client.cookies.clear()
        first = await self.timed("GET /api/v1/session/csrf", "GET", "/api/v1/session/csrf")
        if first is None:
            return False
        self.csrf = first.json()["csrf_token"]
        start = time.perf_counter()
        step = await self.timed("login", "POST", "/api/v1/session/login",
                                json={"login_id": self.account.login_id, "password": PASSWORD})  # fmt: skip
        if step is None:
            return False
        self.last_step = int(time.time() // 30)
        code = current_code(self.account.secret, dt.datetime.now(dt.UTC))
        me = await self.timed("login_totp", "POST", "/api/v1/session/totp", json={"code": code})
        if me is None:
            return False
        self.stats.times["login (both steps)"].append(time.perf_counter() - start)
        self.csrf = me.json()["csrf_token"]
        self.stats.done[self.account.login_id, "login"] += 1
        return True

    async def logout(self) -> None:
        await self.timed("logout", "POST", "/api/v1/session/logout")

    page_think: tuple[float, float] | None = None  # pages mode: uniform(A, B) seconds after each page

    async def work(self, until: float, think: float) -> None:
        """Log in, do the role's job for about 35 s (a new TOTP step), log out; again until ``until``."""
        await asyncio.sleep(random.uniform(0, 5))  # noqa: S311 (spread the logins)
        while time.monotonic() < until:
            if not await self.login():
                await asyncio.sleep(60)  # a throttled account: each early retry would lengthen its wait
                continue
            session_end = min(until, time.monotonic() + 35)
            while time.monotonic() < session_end:
                await self.round()
                await asyncio.sleep(random.uniform(0, 2 * think))  # noqa: S311
            await self.logout()
        await self.client.aclose()

    async def round(self) -> None:
        role, me = self.account.role, self.account.login_id
        if self.stats_mode_pages:
            for page in PAGES[role]:
                await self.timed(page, "GET", page)
                await self.timed(FLOOR, "GET", FLOOR)
                if self.page_think is not None:
                    await asyncio.sleep(random.uniform(*self.page_think))  # noqa: S311
            return
        await self.timed("GET /datasets", "GET", "/datasets")
        await self.timed("GET /datasets/juki", "GET", "/datasets/juki")
        if role == "analyst":
            request = random.choice(TABLES)  # noqa: S311
            table = await self.timed("POST /api/v1/tables", "POST", "/api/v1/tables", json=request)
            if table is not None:
                self.stats.done[me, "table"] += 1
            sql = random.choice(SQLS)  # noqa: S311
            if await self.timed("POST /api/v1/query", "POST", "/api/v1/query", json={"sql": sql}):
                self.stats.done[me, "query"] += 1
            if table is not None:
                body = {"release_id": table.json()["release_id"], "format": "csv"}
                if await self.timed("POST /api/v1/exports", "POST", "/api/v1/exports", json=body):
                    self.stats.done[me, "export"] += 1
        elif role == "steward":
            inbox = await self.timed("GET /api/v1/reviews", "GET", "/api/v1/reviews")
            await self.timed("GET /reviews", "GET", "/reviews")
            waiting = _waiting_parts(inbox.json()) if inbox is not None else []
            if waiting:
                part = random.choice(waiting)  # noqa: S311
                try:
                    approve = await self.client.post(
                        f"/api/v1/parts/{part}/approve", headers={"X-CSRF-Token": self.csrf}
                    )
                except httpx.HTTPError as error:  # a lost connection is an error, not the end of the run
                    self._error("POST /api/v1/parts/{id}/approve", f"{type(error).__name__}: {error}")
                    return
                if approve.status_code == 409:  # another steward approved it first: not an error of the hub
                    return
                self.stats.times["POST /api/v1/parts/{id}/approve"].append(approve.elapsed.total_seconds())
                if approve.status_code >= 400:
                    self._error(
                        "POST /api/v1/parts/{id}/approve", f"{approve.status_code} {approve.text[:200]}"
                    )
                else:
                    self.stats.done[me, "approve"] += 1

    stats_mode_pages = False


def _waiting_parts(reviews: Any) -> list[int]:
    return [int(item["part_id"]) for item in reviews]


async def run_users(accounts: list[Account], base_url: str, demo: Path, seconds: float, think: float,
                    pages: bool, page_think: tuple[float, float] | None = None) -> Stats:  # fmt: skip
    stats = Stats()
    until = time.monotonic() + seconds
    staff = [Staff(a, base_url, demo, stats, desk) for desk, a in enumerate(accounts)]
    for member in staff:
        member.stats_mode_pages = pages
        member.page_think = page_think
    await asyncio.gather(*(m.work(until, think) for m in staff))
    return stats


# --- figures -------------------------------------------------------------------------------------------------

AGGREGATES = ("login (both steps)",)  # figures made of other requests' times, not requests of their own


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and of its children that ended (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])  # fields 14-17 of proc(5)
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def requests_served(stats: Stats) -> int:
    return sum(len(v) for a, v in stats.times.items() if a not in AGGREGATES)


def cpu_summary(server_cpu: float, client_cpu: float, stats: Stats, seconds: float) -> str:
    n = requests_served(stats)
    per = f"{server_cpu * 1000 / n:.2f}" if n else "-"
    client = f"{client_cpu * 1000 / n:.2f}" if n else "-"
    return (f"requests: {n} in {seconds:.0f} s ({n / seconds:.1f}/s); server CPU {server_cpu:.1f} s = {per} ms "
            f"per request ({server_cpu / seconds:.2f} cores); load generator CPU {client_cpu:.1f} s = {client} "
            "ms per request")  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def table(stats: Stats, floor: str | None = None) -> list[str]:
    lines = ["| action | n | p50 ms | p95 ms | p99 ms | errors |" + (" p95 / floor |" if floor else ""),
             "|---|---:|---:|---:|---:|---:|" + ("---:|" if floor else "")]  # fmt: skip
    base = pct(stats.times[floor], 0.95) if floor and stats.times[floor] else None
    for action, values in sorted(stats.times.items()):
        row = (f"| {action} | {len(values)} | {pct(values, .5):.0f} | {pct(values, .95):.0f} | "
               f"{pct(values, .99):.0f} | {stats.errors[action]} |")  # fmt: skip
        if base:
            row += f" {pct(values, 0.95) / base:.1f} |"
        lines.append(row)
    return lines


def audit_reconciliation(home: Path, stats: Stats) -> list[str]:
    """What each client did, against the audit log's entries by that actor (successes only)."""
    from sqlalchemy import func, select

    from renkei.hub.audit import AuditEntry
    from renkei.hub.home import Hub

    # Each audited action, and the client actions that each write exactly one such entry: an aggregate SQL
    # query is released as a table too (table.release), so tables and queries are counted together.
    actions = {"login.totp": ("login",), "table.release": ("table", "query"), "export.file": ("export",),
               "application.approve": ("approve",)}  # fmt: skip
    hub = Hub(home)
    with hub.session() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.action, func.count())
            .where(AuditEntry.actor.like(f"load{RUN}-%"), AuditEntry.result == "ok")
            .group_by(AuditEntry.actor, AuditEntry.action)
        ).all()
    logged: Counter[tuple[str, str]] = Counter({(a, b): n for a, b, n in rows})
    users = {user for user, _ in stats.done}
    lines = [
        "| audited action | done by clients | in the log (ok) | lost | extra |",
        "|---|---:|---:|---:|---:|",
    ]
    for action, sources in actions.items():
        done = in_log = lost = extra = 0
        for user in users:
            n = sum(stats.done[user, what] for what in sources)
            here = logged[user, action]
            done, in_log = done + n, in_log + here
            lost, extra = lost + max(0, n - here), extra + max(0, here - n)
        if done or in_log:
            lines.append(f"| {action} ({' + '.join(sources)}) | {done} | {in_log} | {lost} | {extra} |")
    with hub.session() as session:
        details = session.scalars(
            select(AuditEntry.details).where(
                AuditEntry.actor.like(f"load{RUN}-%"), AuditEntry.action == "workspace.query",
                AuditEntry.result == "ok",
            )
        ).all()  # fmt: skip
    control = [d for d in details if d.get("db") == "control"]
    reused = sum(1 for d in control if d.get("reused"))
    lines.append(f"control queries: {len(control)}, of which answered with a kept result (reused): {reused}")
    return lines


def rss_summary(server: Server) -> list[str]:
    if not server.rss:
        return []
    every = max(1, len(server.rss) // 20)
    lines = ["| s | RSS MiB (server + workers) | plaintext memfds MiB | processes under the server | load 1 min |",
             "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for i in range(0, len(server.rss), every):
        t, rss = server.rss[i]
        lines.append(f"| {t:.0f} | {rss / 2**20:.0f} | {server.plaintext[i] / 2**20:.0f} | {server.workers[i]} "
                     f"| {server.load[i]:.1f} |")  # fmt: skip
    peak = max(b for _, b in server.rss) / 2**20
    return [*lines, f"peak RSS {peak:.0f} MiB; peak plaintext {max(server.plaintext) / 2**20:.0f} MiB"]


def main() -> None:  # noqa: PLR0915 (one linear script)
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["pages", "load"])
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--ramp", default="", help="after the main run: user counts of 60-second steps")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between rounds, seconds")
    parser.add_argument(
        "--page-think", default="", metavar="A,B",
        help="pages mode: each user waits uniform(A, B) seconds after each page (default: no pause)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=18443)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--profile", type=Path, default=None, help="sample the server's stacks into this file"
    )
    parser.add_argument("--server-log", type=Path, default=None, help="the server's stderr, into this file")
    args = parser.parse_args()
    pages = args.mode == "pages"
    users = args.users or (20 if pages else 50)
    seconds = args.seconds or (60 if pages else 300)
    ramp = [int(n) for n in args.ramp.split(",") if n]
    page_think = _between(args.page_think) if args.page_think else None
    env = dict(os.environ)
    if args.database_url:
        env["RENKEI_DATABASE_URL"] = os.environ["RENKEI_DATABASE_URL"] = args.database_url
    env["RENKEI_WEB_MAX_WORKSPACES"] = os.environ["RENKEI_WEB_MAX_WORKSPACES"] = str(max([users, *ramp]) + 8)
    # RLIMIT_NPROC counts the tasks of all workers together (workspace.max_processes, 128 by default: enough
    # for the default 4 workspaces); a worker runs 7-20 threads, and a thread it cannot start ends it (EOFError).
    tasks = str(24 * (max([users, *ramp]) + 8))
    env.setdefault("RENKEI_WORKSPACE_MAX_PROCESSES", tasks)
    os.environ.setdefault("RENKEI_WORKSPACE_MAX_PROCESSES", tasks)
    most = max([users, *ramp])
    if pages:
        counts = {role: -(-most // 4) for role in PAGES}
    else:
        counts = {"analyst": most * 4 // 5, "steward": most - most * 4 // 5}
    started = time.monotonic()
    accounts = designate_staff(args.demo / "hub", counts, pending=0 if pages else 4 * most)
    print(f"set-up: {len(accounts)} accounts in {time.monotonic() - started:.0f} s", flush=True)
    server = start_server(args.demo, args.port, env, args.profile, args.server_log)
    report: list[str] = [f"uptime at start: {_uptime()}"]
    try:
        chosen = _spread(accounts, users)
        server_cpu, client_cpu, wall = cpu_seconds(server.process.pid), _own_cpu(), time.monotonic()
        stats = asyncio.run(
            run_users(chosen, server.base_url, args.demo, seconds, args.think, pages, page_think)
        )
        server_cpu, client_cpu = cpu_seconds(server.process.pid) - server_cpu, _own_cpu() - client_cpu
        wall = time.monotonic() - wall
        think = f", page think {page_think[0]:g}-{page_think[1]:g} s" if page_think else ", closed loop"
        report += [
            f"## {users} users, {seconds:.0f} s ({args.mode}{think if pages else ''})",
            *table(stats, FLOOR if pages else None),
            cpu_summary(server_cpu, client_cpu, stats, wall),
        ]
        report += [f"errors: {sum(stats.errors.values())}", *stats.error_samples]
        if not pages:
            report += audit_reconciliation(args.demo / "hub", stats)
        for n in ramp:
            time.sleep(31)  # the main run's last TOTP codes are not reused
            step = asyncio.run(
                run_users(_spread(accounts, n), server.base_url, args.demo, 60, args.think, pages)
            )
            every = [v for values in step.times.values() for v in values]
            report.append(
                f"ramp {n} users: {len(every) / 60:.1f} req/s, p95 {pct(every, 0.95):.0f} ms, "
                f"errors {sum(step.errors.values())}; "
                + "; ".join(
                    f"{a} p95 {pct(v, 0.95):.0f}" for a, v in sorted(step.times.items()) if "POST" in a
                )
            )
            report[-1] += f"; load average {os.getloadavg()[0]:.1f}"
            print(report[-1], flush=True)
            report += step.error_samples
        report += rss_summary(server)
        report.append(f"uptime at end: {_uptime()}")
    finally:
        server.stop.set()
        server.process.terminate()
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    print("\n".join(report))


def _spread(accounts: list[Account], n: int) -> list[Account]:
    """``n`` accounts, the roles in the proportions set up."""
    by_role: dict[str, list[Account]] = defaultdict(list)
    for a in accounts:
        by_role[a.role].append(a)
    chosen: list[Account] = []
    while len(chosen) < n:
        for members in by_role.values():
            if members and len(chosen) < n:
                chosen.append(members.pop(0))
        if not any(by_role.values()):
            break
    return chosen


def _between(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    bounds = (float(low), float(high or low))
    if not 0 <= bounds[0] <= bounds[1]:
        raise SystemExit("--page-think A,B needs 0 <= A <= B")
    return bounds


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    main()
