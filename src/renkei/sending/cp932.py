"""CP932 → UTF-8 for the CSV reader, with the C library's ``iconv`` where it decodes exactly as Python does.

pyarrow's CSV reader decodes a non-UTF-8 file with Python's codec, holding the GIL (about 1.3 s of CPU for
164 MB, decode and re-encode). glibc's ``iconv`` does the same in about half the time, and through ``ctypes``
it runs without the GIL. It is used only when it gives exactly Python's bytes:

- once per process, every 1- and 2-byte sequence is decoded both ways; ``iconv`` must give Python's UTF-8
  wherever it accepts a sequence (it may refuse more: glibc refuses the single bytes 0x80, 0xA0 and
  0xFD–0xFF, which Python's ``cp932`` maps to U+0080 and U+F8F0–U+F8F3). CP932 is stateless and its lead
  bytes are the same in both, so agreement on every character is agreement on every text.
- the file is converted in chunks cut after a line feed, carriage return or comma (bytes below 0x40 are
  never the second byte of a CP932 character); a chunk ``iconv`` refuses is decoded by Python's codec instead, so a file with those bytes
  reads as before and an undecodable file raises the same ``UnicodeDecodeError`` as before.

Without a usable ``iconv`` (another C library, a different table), :func:`utf8_stream` returns ``None`` and
the caller reads with pyarrow's own transcoding.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from typing import Any, BinaryIO

_CHUNK = 4 << 20  # raw bytes converted per iconv call
_FAILED = ctypes.c_size_t(-1).value


class _Iconv:
    """One ``iconv_t`` descriptor from CP932 to UTF-8 (not thread-safe: one per stream)."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        handle = libc.iconv_open(b"UTF-8", b"CP932")
        if handle in (None, _FAILED):
            raise OSError("iconv_open failed")
        self._cd = ctypes.c_void_p(handle)
        self._out = ctypes.create_string_buffer(1)
        self._out_size = 0

    def close(self) -> None:
        if self._cd is not None:
            self._libc.iconv_close(self._cd)
            self._cd = None  # type: ignore[assignment]

    def convert(self, data: bytes) -> bytes | None:
        """The UTF-8 of ``data``, or ``None`` if iconv refuses any of it (invalid or incomplete)."""
        libc = self._libc
        libc.iconv(self._cd, None, None, None, None)  # reset the (stateless) converter
        need = 3 * len(data) + 16  # a CP932 byte gives at most 3 UTF-8 bytes (半角カナ)
        if need > self._out_size:
            self._out = ctypes.create_string_buffer(need)
            self._out_size = need
        in_ptr = ctypes.c_char_p(data)
        in_left = ctypes.c_size_t(len(data))
        out_ptr = ctypes.c_char_p(ctypes.addressof(self._out))
        out_left = ctypes.c_size_t(self._out_size)
        result = libc.iconv(
            self._cd,
            ctypes.byref(in_ptr),
            ctypes.byref(in_left),
            ctypes.byref(out_ptr),
            ctypes.byref(out_left),
        )
        if result == _FAILED or in_left.value:
            return None
        return ctypes.string_at(self._out, self._out_size - out_left.value)

    def refuses_each(self, sequences: list[bytes]) -> bool:
        """Whether iconv refuses every one of ``sequences`` (each converted alone; a lean loop, ~15k calls)."""
        iconv, cd = self._libc.iconv, self._cd
        out = ctypes.create_string_buffer(64)
        in_ptr, in_left = ctypes.c_char_p(), ctypes.c_size_t()
        out_ptr, out_left = ctypes.c_char_p(), ctypes.c_size_t()
        refs = ctypes.byref(in_ptr), ctypes.byref(in_left), ctypes.byref(out_ptr), ctypes.byref(out_left)
        out_at = ctypes.c_char_p(ctypes.addressof(out))
        for seq in sequences:
            in_ptr.value, in_left.value = seq, len(seq)
            ctypes.pointer(out_ptr)[0], out_left.value = out_at, 64
            if iconv(cd, *refs) != _FAILED and not in_left.value:
                return False
            iconv(cd, None, None, None, None)
        return True


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.iconv_open.restype = ctypes.c_void_p
        libc.iconv_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.iconv.restype = ctypes.c_size_t
        pointers: list[Any] = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.iconv.argtypes = [ctypes.c_void_p, *pointers, *pointers]
        libc.iconv_close.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


def _python(data: bytes) -> bytes | None:
    try:
        return data.decode("cp932").encode("utf-8")
    except UnicodeDecodeError:
        return None


_check_lock = threading.Lock()


@functools.cache
def iconv_agrees() -> bool:
    """Whether this C library's CP932 gives Python's UTF-8 for every 1- and 2-byte sequence it accepts."""
    libc = _libc()
    if libc is None:
        return False
    with _check_lock:
        try:
            conv = _Iconv(libc)
        except OSError:
            return False
        try:
            return _agrees(conv)
        finally:
            conv.close()


_LEADS = (*range(0x81, 0xA0), *range(0xE0, 0xFD))  # CP932 lead bytes; every other byte is a character alone


def _agrees(conv: _Iconv) -> bool:
    singles = [bytes([b]) for b in range(256)]
    if any(conv.convert(s) not in (None, _python(s)) for s in singles):
        return False
    pairs = [bytes([a, b]) for a in _LEADS for b in range(256)]
    accepted = b"".join(p for p in pairs if _python(p) is not None)
    # every pair Python accepts, in one call: iconv must give the same bytes
    if conv.convert(accepted) != _python(accepted):
        return False
    # and refuse every pair Python refuses (a lead byte followed by a byte that cannot follow it)
    return conv.refuses_each([p for p in pairs if _python(p) is None])


class Utf8Stream:
    """A read-only binary file of the UTF-8 text of a CP932 file, for ``pyarrow.csv.open_csv``.

    pyarrow's reader calls :meth:`read` from its own thread; the conversion runs in ``iconv`` without the
    GIL. ``raw`` is the CP932 file (its ``tell()`` is the progress).
    """

    def __init__(self, raw: BinaryIO, conv: _Iconv) -> None:
        self._raw = raw
        self._conv = conv
        self._carry = b""  # raw bytes after the last cut of the previous chunk
        self._pending: list[bytes] = []  # converted chunks not yet read
        self._pending_size = 0
        self._eof = False
        self.closed = False

    # the parts of the file protocol pyarrow uses
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._conv.close()

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or self._pending_size < size):
            self._fill()
        data = b"".join(self._pending)
        if 0 <= size < len(data):
            data, rest = data[:size], data[size:]
            self._pending, self._pending_size = [rest], len(rest)
        else:
            self._pending, self._pending_size = [], 0
        return data

    def _fill(self) -> None:
        chunk = self._raw.read(_CHUNK)
        if not chunk:
            self._eof = True
            if self._carry:
                self._add(self._decode(self._carry))
                self._carry = b""
            return
        data = self._carry + chunk
        # cut after a byte below 0x40 (line feed, carriage return, comma): never the second byte of a CP932
        # character, so always the end of one
        cut = max(data.rfind(b"\n"), data.rfind(b"\r"), data.rfind(b",")) + 1
        if cut == 0:  # none yet: keep reading
            self._carry = data
            return
        self._carry = data[cut:]
        self._add(self._decode(data[:cut]))

    def _add(self, converted: bytes) -> None:
        self._pending.append(converted)
        self._pending_size += len(converted)

    def _decode(self, data: bytes) -> bytes:
        converted = self._conv.convert(data)
        if converted is not None:
            return converted
        # iconv refused: Python's codec decides (the bytes it alone accepts, or the UnicodeDecodeError)
        return data.decode("cp932").encode("utf-8")


def utf8_stream(raw: BinaryIO) -> Utf8Stream | None:
    """A UTF-8 view of the CP932 file ``raw``, or ``None`` when iconv is missing or disagrees with Python."""
    libc = _libc()
    if libc is None or not iconv_agrees():
        return None
    try:
        return Utf8Stream(raw, _Iconv(libc))
    except OSError:
        return None
