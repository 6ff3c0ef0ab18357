"""Text that is safe to show on a terminal, whoever wrote it (shared by both sides; no heavy imports).

A file name, a dataset title, a user's comment can hold control characters: ``ESC[2J`` clears the screen,
``ESC]0;…BEL`` retitles the window, C1 controls (``\\x9b`` is a one-byte CSI) do the same on some terminals,
bidi overrides (U+202E) show text reversed, and a newline forges a line of output. Every character of the
categories below is therefore shown as an escape instead of being sent to the terminal:

- ``Cc`` control characters (C0, DEL, C1), ``Cf`` format characters (bidi controls, zero-width joiners,
  BOM, tag characters), ``Zl``/``Zp`` line and paragraph separators, ``Cs`` lone surrogates.

:func:`terminal_text` (the CLI's) writes ``\\u001b``, JSON's escape (a surrogate pair above U+FFFF), so that
JSON output stays JSON; :func:`display_text` (the audit log's) writes ``\\x1b`` and also doubles backslashes,
so that an escape in the log can never be taken for the character itself.
"""

from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in UNSAFE_CATEGORIES


def terminal_text(text: str, *, keep: str = "") -> str:
    """``text`` with every unsafe character (except those in ``keep``) written as ``\\uXXXX``."""
    if text.isprintable():  # no Cc, Cf, Zl, Zp or Cs at all: the common case, without a loop
        return text
    return "".join(_json_escape(ch) if ch not in keep and is_unsafe(ch) else ch for ch in text)


def display_text(text: str) -> str:
    """Text safe to print on one line: control, format and line-separator characters shown as escapes."""
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif is_unsafe(ch):
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return "".join(out)


def _json_escape(ch: str) -> str:
    """``\\uXXXX``, and above U+FFFF its UTF-16 surrogate pair, as JSON writes it."""
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
