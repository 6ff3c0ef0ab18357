"""A wall-clock sampling profiler for ``renkei serve`` (no py-spy needed): every thread's stack, every 5 ms.

    python benchmarks/sample_serve.py OUT.txt serve --home … --tls-cert … --tls-key … --port …

Runs the renkei CLI in this process with a daemon thread that samples ``sys._current_frames()``; on exit
(SIGTERM, as ``bench_load.py --profile`` stops the server) it writes to OUT.txt, per thread kind (the event
loop's main thread, the worker threads), the functions most often on the stack (inclusive) and at its top
(exclusive), idle waits left out. A sample is wall-clock: a thread blocked in SQLite's busy wait or in an
fsync counts as much as one computing. The sampler holds the GIL while it samples (a few % of overhead).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

INTERVAL = 0.005
IDLE = (
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("selectors.py", "select"),
    ("thread.py", "_worker"),  # concurrent.futures' idle worker
    ("_base.py", "wait"),
)


def _where(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_name}"


class Sampler:
    def __init__(self) -> None:
        self.inclusive: dict[str, Counter[str]] = {"loop": Counter(), "workers": Counter()}
        self.exclusive: dict[str, Counter[str]] = {"loop": Counter(), "workers": Counter()}
        self.busy: Counter[str] = Counter()
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        main = threading.main_thread().ident
        while not self.stop.wait(INTERVAL):
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                kind = "loop" if ident == main else "workers"
                top = frame.f_code
                if any(top.co_filename.endswith(f) and top.co_name == n for f, n in IDLE):
                    continue
                self.busy[kind] += 1
                self.exclusive[kind][_where(frame)] += 1
                seen: set[str] = set()
                walk: FrameType | None = frame
                while walk is not None:
                    where = _where(walk)
                    if where not in seen:
                        seen.add(where)
                        self.inclusive[kind][where] += 1
                    walk = walk.f_back

    def report(self, out: Path) -> None:
        lines = [
            f"samples: {self.samples} every {INTERVAL * 1000:.0f} ms; busy thread-samples: {dict(self.busy)}"
        ]
        for kind in ("loop", "workers"):
            busy = self.busy[kind] or 1
            lines.append(f"\n== {kind}: exclusive (top of stack), % of its busy samples")
            lines += [f"{n * 100 / busy:6.1f}%  {w}" for w, n in self.exclusive[kind].most_common(40)]
            lines.append(f"\n== {kind}: inclusive (anywhere on the stack)")
            lines += [f"{n * 100 / busy:6.1f}%  {w}" for w, n in self.inclusive[kind].most_common(80)]
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = ["renkei", *sys.argv[2:]]
    sampler = Sampler()
    threading.Thread(target=sampler.run, daemon=True).start()

    def stop(_signum: int, _frame: object) -> None:
        sampler.stop.set()
        time.sleep(INTERVAL * 2)
        sampler.report(out)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    from renkei.cli.main import app as renkei

    try:
        renkei()
    finally:
        if not sampler.stop.is_set():
            sampler.stop.set()
            sampler.report(out)


if __name__ == "__main__":
    main()
