"""Where each side keeps its state, and the rule that the two sides never share it.

A side's home is ``--home DIR``, else ``$RENKEI_HOME/<side>``, else ``$XDG_DATA_HOME/renkei/<side>``
(``~/.local/share/renkei/sender`` and ``~/.local/share/renkei/hub``): the defaults never coincide. Each init
writes a marker file naming its side; a side refuses to initialise or run in a home marked for the other or
holding the other's key files, and a hub refuses any home that holds a ``pseudonym.key``. Both sides import
this module; it imports neither.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from renkei.errors import Location, RenkeiError

HOME_ENV = "RENKEI_HOME"
Side = Literal["sender", "hub"]
SENDER: Side = "sender"
HUB: Side = "hub"
SIDE_FILE = "renkei-side"
PSEUDONYM_KEY_FILE = "pseudonym.key"
# Files only one side ever creates: finding one in the other side's home means the two were mixed.
SIDE_FILES: dict[Side, tuple[str, ...]] = {
    SENDER: (PSEUDONYM_KEY_FILE, "sender_signing.key", "sender.json", "hub_recipient.txt"),
    HUB: ("package_identity.txt", "kek.key", "audit_signing.key", "catalog.db"),
}
_NAMES = {SENDER: ("送信側", "sending side"), HUB: ("基盤", "hub")}


class HomeError(RenkeiError):
    """A home belongs to the other side, or holds what its side must never hold."""


def default_home(side: Side) -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "renkei" / side


def resolve_home(home: Path | None, side: Side) -> Path:
    if home is not None:
        return home
    base = os.environ.get(HOME_ENV)
    return Path(base) / side if base else default_home(side)


def check_home(home: Path, side: Side) -> Path:
    """Refuse a home of the other side; for the hub, also one that holds a pseudonymization key."""
    other: Side = HUB if side == SENDER else SENDER
    marked = _marker(home)
    if marked is not None and marked != side:
        raise _mixed(home / SIDE_FILE, side, other)
    if side == HUB and _present(home / PSEUDONYM_KEY_FILE):
        raise HomeError(
            "基盤のホームに仮名化鍵 (pseudonym.key) があります。基盤は仮名化鍵を持ってはいけないため起動しません。"
            "鍵を送信側へ移してください",
            "a pseudonymization key is in the hub's home; the hub never holds it and will not start."
            " Move the key back to the sending side",
            Location(home / PSEUDONYM_KEY_FILE),
        )
    for name in SIDE_FILES[other]:
        if _present(home / name):
            raise _mixed(home / name, side, other)
    return home


def claim_home(home: Path, side: Side) -> Path:
    """At init: check the home as :func:`check_home` does, then mark it as ``side``'s (0700, created if new)."""
    check_home(home, side)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = home / SIDE_FILE
    if not marker.exists():
        marker.write_text(side + "\n", encoding="utf-8")
    return home


def _marker(home: Path) -> str | None:
    try:
        return (home / SIDE_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _mixed(where: Path, side: Side, other: Side) -> HomeError:
    mine, theirs = _NAMES[side], _NAMES[other]
    return HomeError(
        f"このディレクトリは{theirs[0]}のホームです。{mine[0]}は別のホームを使ってください（--home）",
        f"this directory is the {theirs[1]}'s home; the {mine[1]} needs a home of its own (--home)",
        Location(where),
    )
