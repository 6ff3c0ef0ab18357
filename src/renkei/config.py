"""Where each side keeps its state: ``--home DIR``, else ``RENKEI_HOME``, else ``~/.local/share/renkei``.

The sending side and the hub each need their own home. On one machine (a demo, a test) give them different
directories; in production they run on different machines.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "RENKEI_HOME"


def default_home() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "renkei"


def resolve_home(home: Path | None) -> Path:
    if home is not None:
        return home
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else default_home()
