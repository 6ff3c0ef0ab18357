"""Start, talk to, interrupt and kill a workspace's worker process (the parent's side).

Isolation: when the hub runs as root (the production service is root-started), each worker runs as
``nobody`` (65534) with no supplementary groups, an empty environment, cwd ``/``, only the memfds passed, and
the limits of :mod:`.confine`. A hub not running as root cannot drop to another user; it refuses to open a
workspace unless same-user isolation is explicitly allowed (``RENKEI_WORKSPACE_SAME_USER=1``, for developers).

The interpreter: the hub's own may live where ``nobody`` cannot read it (/root/.pyenv), so each candidate is
probed once, as the worker's user and under its confinement, for importing the same DuckDB and pyarrow as
the parent, from the parent's site-packages (derived from the modules' files, never hard-coded).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import renkei
from renkei.hub.settings import SAME_USER_ENV
from renkei.hub.workspace.errors import WorkspaceError
from renkei.hub.workspace.protocol import MAX_JSON_FRAME, read_frame, read_json, write_frame, write_json

NOBODY = 65534

CANDIDATES = ("/usr/bin/python3.11", "/usr/bin/python3")
PROBE_TIMEOUT = 30.0
PAYLOAD_SECONDS = 60.0  # the result frame follows its header at once; this only bounds a wedged pipe
# Runs first in the child: block the interrupt signal before any library can start a thread, ignore SIGXFSZ
# (a write past RLIMIT_FSIZE then fails instead of killing), take the import path from argv, confine, run.
# One thread each for OpenBLAS (numpy, loaded by pyarrow) and Arrow's pools: they default to one per core, and
# every worker's threads count against workspace.max_processes (set here, so /proc/<pid>/environ stays empty).
BOOTSTRAP = (
    "import json, os, signal, sys\n"
    "os.environ.update(OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1', ARROW_IO_THREADS='1')\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "sys.path[:0] = json.loads(sys.argv[1])\n"
    "from renkei.hub.workspace.confine import confine\n"
    "confine(json.loads(sys.argv[2]))\n"
    "exec(sys.argv[3])\n"
)
WORKER_PROGRAM = "from renkei.hub.workspace.worker import main; main()"
# Tasks (threads) one worker may have made when it dies at open: 20 measured with threads = 1 on 2 cores (the
# interpreter, DuckDB's and OpenBLAS's pools, jemalloc's background thread, the interrupt thread).
WORKER_TASKS = 24
PROBE_PROGRAM = "from renkei.hub.workspace.worker import probe; probe()"


class WorkerGone(WorkspaceError):  # noqa: N818
    """The worker exited, or was killed after it ignored an interrupt (``timeout``)."""

    def __init__(self, ja: str, en: str, *, timeout: bool = False) -> None:
        super().__init__(ja, en)
        self.timeout = timeout


@dataclass(frozen=True, slots=True)
class Isolation:
    python: str
    path_fds: tuple[int, ...]  # open directories the worker imports from (see worker_path)
    uid: int | None  # None: same user as the hub (developers only)
    gid: int | None

    @property
    def path(self) -> tuple[str, ...]:
        """sys.path entries for the worker: its inherited directory descriptors."""
        return tuple(f"/proc/self/fd/{fd}" for fd in self.path_fds)

    def spec(self, address_space: int, nproc: int) -> dict[str, Any]:
        # RLIMIT_NPROC counts every process of the uid; for the same user it would count the developer's own.
        return {"uid": self.uid, "gid": self.gid, "address_space": address_space,
                "nproc": nproc if self.uid is not None else None}  # fmt: skip


def isolation(allow_same_user: bool) -> Isolation:
    """The user and interpreter workers run with; raises :class:`WorkspaceError` if none is safe."""
    if os.geteuid() == 0:
        return _probed(NOBODY, NOBODY)
    if not allow_same_user:
        raise WorkspaceError(
            "作業環境を別ユーザーで隔離できません（基盤を root で起動してください）。開発用に同一ユーザーでの"
            f"隔離を許すには {SAME_USER_ENV}=1 を設定します",
            "cannot isolate the workspace as another user (run the hub as a root-started service); "
            f"developers may allow same-user isolation with {SAME_USER_ENV}=1",
        )
    return _probed(None, None)


def worker_path() -> tuple[str, ...]:
    """Where the worker finds duckdb, pyarrow and renkei: the directories the parent loaded them from."""
    roots = [Path(m.__file__ or "").resolve().parent.parent for m in (duckdb, pa, renkei)]
    return tuple(dict.fromkeys(str(r) for r in roots))


@functools.cache
def worker_path_fds() -> tuple[int, ...]:
    """The worker's import directories, opened by the parent and inherited as descriptors: a checkout or a
    virtual environment under a directory ``nobody`` cannot enter (a 0700 home, a private temp dir) is then
    still importable, and the worker reaches nothing else of the tree they sit in."""
    return tuple(os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) for p in worker_path())


@functools.cache
def _probed(uid: int | None, gid: int | None) -> Isolation:
    path_fds = worker_path_fds()
    tried: list[str] = []
    for python in dict.fromkeys([os.path.realpath(sys.executable), *CANDIDATES]):
        candidate = Isolation(python, path_fds, uid, gid)
        outcome = _probe(candidate)
        if outcome is None:
            return candidate
        tried.append(f"{python}: {outcome}")
    raise WorkspaceError(
        "作業環境のワーカーを起動できるPythonがありません",
        "no interpreter can run the workspace worker as its user: " + "; ".join(tried),
    )


def _probe(candidate: Isolation) -> str | None:
    """None if ``candidate`` loads the parent's DuckDB and pyarrow under the worker's confinement."""
    if not os.access(candidate.python, os.X_OK):
        return "not executable"
    try:
        done = subprocess.run(  # noqa: S603 (our interpreter, our bootstrap; no shell)
            command(candidate, PROBE_PROGRAM, address_space=4 << 30, nproc=64),
            capture_output=True, timeout=PROBE_TIMEOUT, check=False, pass_fds=candidate.path_fds,
            **_credentials(candidate),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return type(e).__name__
    expected = {"duckdb": duckdb.__version__, "pyarrow": pa.__version__, "python": list(sys.version_info[:2])}
    try:
        found = json.loads(done.stdout)
    except ValueError:
        found = None
    if done.returncode != 0 or found != expected:
        return f"exit {done.returncode}, {done.stderr.decode(errors='replace')[-300:].strip() or found}"
    return None


def command(candidate: Isolation, program: str, *, address_space: int, nproc: int) -> list[str]:
    spec = json.dumps(candidate.spec(address_space, nproc))
    return [candidate.python, "-I", "-S", "-B", "-c", BOOTSTRAP, json.dumps(candidate.path), spec, program]


def _credentials(candidate: Isolation) -> dict[str, Any]:
    if candidate.uid is None:
        return {"env": {}, "cwd": "/"}
    return {"env": {}, "cwd": "/", "user": candidate.uid, "group": candidate.gid, "extra_groups": []}


def spawn(
    candidate: Isolation, program: str, *, pass_fds: Sequence[int], address_space: int, nproc: int
) -> subprocess.Popen[bytes]:
    """Start ``program`` confined; stdin and stdout are pipes, stderr is discarded (FSIZE is 0 anyway)."""
    return subprocess.Popen(  # noqa: S603 (our interpreter, our bootstrap; no shell)
        command(candidate, program, address_space=address_space, nproc=nproc),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        pass_fds=(*pass_fds, *candidate.path_fds), start_new_session=True, **_credentials(candidate),
    )  # fmt: skip


class WorkerProcess:
    """One worker; one request at a time. ``request`` enforces the wall-clock limit from outside."""

    def __init__(self, process: subprocess.Popen[bytes], grace: float) -> None:
        self.process = process
        self.grace = grace
        self._lock = threading.Lock()
        assert process.stdin is not None and process.stdout is not None
        self._out = process.stdin.fileno()
        self._in = process.stdout.fileno()

    @property
    def pid(self) -> int:
        return self.process.pid

    def request(
        self, message: dict[str, Any], timeout: float, max_payload: int, *, payload: bytes | None = None
    ) -> tuple[dict[str, Any], bytes | None]:
        """The reply and its Arrow bytes (or None); raises WorkerGone if the worker died or had to be killed.

        Past ``timeout`` the worker gets SIGUSR1 (its DuckDB interrupts the query and it answers
        ``interrupted``); if it does not answer within the grace period it is killed.
        """
        with self._lock:
            try:
                write_json(self._out, message)
                if payload is not None:
                    write_frame(self._out, payload)
                return self._reply(time.monotonic() + timeout, max_payload)
            except (EOFError, BrokenPipeError, ValueError) as e:
                self.kill()
                raise _gone(f"the worker stopped answering ({type(e).__name__})") from e

    def _reply(self, deadline: float, max_payload: int) -> tuple[dict[str, Any], bytes | None]:
        try:
            header = read_json(self._in, deadline)
        except TimeoutError:
            os.kill(self.pid, signal.SIGUSR1)
            try:
                header = read_json(self._in, time.monotonic() + self.grace)
            except TimeoutError:
                self.kill()
                raise _gone("the worker ignored the interrupt and was killed", timeout=True) from None
        payload = None
        if header.get("ok") and header.get("rows") is not None:
            deadline = time.monotonic() + self.grace + PAYLOAD_SECONDS
            payload = read_frame(self._in, max(max_payload, MAX_JSON_FRAME), deadline)
        return header, payload

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within the grace period."""
        with self._lock:
            if self.process.poll() is None:
                try:
                    write_json(self._out, {"op": "close"})
                    self.process.wait(self.grace)
                except (OSError, subprocess.TimeoutExpired):
                    self.kill()
            self._close_pipes()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def user_tasks(uid: int) -> int:
    """Tasks (threads) whose real uid is ``uid``, machine-wide: what RLIMIT_NPROC counts for that user."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields["Threads"])
        except (OSError, KeyError, ValueError, IndexError):
            continue  # gone meanwhile, or not readable
    return total


def process_limit_check(candidate: Isolation, nproc: int, *, died: bool) -> WorkerGone | None:
    """The error to raise when the workers' user is at its task limit (``workspace.max_processes``), or None.

    Before a start (``died`` False): the user already has ``nproc`` tasks, so the worker's first thread would
    fail. After a worker died while it opened (``died`` True): the user's tasks now, plus the few dozen the
    worker may have made before a thread could not be created (:data:`WORKER_TASKS`), reach the limit. The
    limit counts every worker of every hub on the machine together; a worker that dies at open under it ends
    in native code (OpenBLAS, jemalloc, DuckDB) that reports nothing the parent can read.
    """
    if candidate.uid is None:
        return None  # same-user isolation sets no RLIMIT_NPROC
    tasks = user_tasks(candidate.uid)
    if tasks + (WORKER_TASKS if died else 0) < nproc:
        return None
    return WorkerGone(
        f"作業プロセスの利用者 (uid {candidate.uid}) のプロセス数が上限 workspace.max_processes = {nproc} に"
        f"達したため、作業環境のワーカーを起動できませんでした（現在 {tasks}）。ほかの作業環境を閉じるか、"
        "設定 workspace.max_processes (RENKEI_WORKSPACE_MAX_PROCESSES) を大きくしてください",
        f"the workspace worker could not start: the workers' user (uid {candidate.uid}) reached its process"
        f" limit workspace.max_processes = {nproc} (RLIMIT_NPROC, all workers on this machine together;"
        f" {tasks} tasks now); close other workspaces or raise the setting workspace.max_processes"
        " (RENKEI_WORKSPACE_MAX_PROCESSES)",
    )


def _gone(en: str, *, timeout: bool = False) -> WorkerGone:
    return WorkerGone("作業環境のワーカーが停止したため、作業環境を閉じました", en, timeout=timeout)
