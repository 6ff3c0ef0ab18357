"""Limits a worker sets on itself first thing after exec, before it imports DuckDB or reads a request.

Done in the child rather than in a ``preexec_fn`` because the parent (a threaded web server) must not run
Python between fork and exec. The uid and gid are set by ``subprocess`` itself. Every limit is read back;
anything that did not take exits the process, so the parent's probe fails and no workspace opens.
Stdlib only.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39


def confine(spec: dict[str, Any]) -> None:
    """``spec``: uid and gid (or None: same user), nproc (or None), address_space bytes; FSIZE and CORE are always 0."""
    limits = {
        resource.RLIMIT_FSIZE: 0,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_AS: int(spec["address_space"]),
    }
    if spec.get("nproc") is not None:
        limits[resource.RLIMIT_NPROC] = int(spec["nproc"])
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _die(f"prctl(PR_SET_NO_NEW_PRIVS) failed: errno {ctypes.get_errno()}")
    problems = [
        f"rlimit {which}" for which, value in limits.items() if resource.getrlimit(which) != (value, value)
    ]
    if libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
        problems.append("no_new_privs")
    uid, gid = spec.get("uid"), spec.get("gid")
    if uid is not None and (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) != (uid, uid, gid, gid):
        problems.append("uid/gid")
    if uid is not None and os.getgroups():
        problems.append("supplementary groups")
    if problems:
        _die("confinement did not take: " + ", ".join(problems))


def _die(message: str) -> None:
    sys.stderr.write(message + "\n")
    raise SystemExit(70)
