"""Frames between the parent and its worker: a 4-byte big-endian length, then that many bytes.

A request is one JSON frame. A reply is one JSON frame (``{"ok": true, ...}`` or ``{"ok": false, "kind": ...}``),
followed, when it carries a result, by one frame of Arrow IPC stream bytes. Stdlib only: the worker uses it.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

HEADER = struct.Struct(">I")
MAX_JSON_FRAME = 16 << 20  # a request (SQL, view definitions) or a reply header


def write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(HEADER.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data) :]


def write_json(fd: int, message: dict[str, Any]) -> None:
    write_frame(fd, json.dumps(message, ensure_ascii=False).encode("utf-8"))


def read_frame(fd: int, max_bytes: int, deadline: float | None = None) -> bytes:
    """One frame; EOFError if the other side is gone, TimeoutError past ``deadline`` (time.monotonic)."""
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if size > max_bytes:
        raise ValueError(f"frame of {size} bytes exceeds {max_bytes}")
    return _read_exact(fd, size, deadline)


def read_json(fd: int, deadline: float | None = None) -> dict[str, Any]:
    message = json.loads(read_frame(fd, MAX_JSON_FRAME, deadline))
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        _wait_readable(fd, deadline)
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _wait_readable(fd: int, deadline: float | None) -> None:
    if deadline is None:
        return
    timeout = deadline - time.monotonic()
    if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
        raise TimeoutError("no reply before the deadline")
