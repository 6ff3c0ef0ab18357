"""The architecture's invariants that can be checked statically (docs/security.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import renkei

SRC = Path(renkei.__file__).parent


def modules_under(package: str) -> list[str]:
    """Every module of a subpackage of renkei, by dotted name (not the migrations, which Alembic loads)."""
    return sorted(
        "renkei." + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in (SRC / package).rglob("*.py")
        if "migrations" not in p.parts
    )


HUB_MODULES = modules_under("hub")
WEB_MODULES = modules_under("web")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_hub_module_imports_a_sending_module_directly() -> None:
    """Invariant 1/2: the hub shares only neutral modules (spec, manifest, package) with the sending side."""
    offenders = {
        str(p.relative_to(SRC)): sorted(m for m in imported_modules(p) if m.startswith("renkei.sending"))
        for p in (SRC / "hub").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_loading_every_hub_and_web_module_loads_no_sending_module() -> None:
    """Invariants 1/2, transitively: a fresh process that imports every hub and web module has loaded no
    ``renkei.sending`` module at all, so neither the key handling code nor anything near it is in memory."""
    code = (
        "import importlib, sys\n"
        f"for m in {HUB_MODULES + WEB_MODULES!r}: importlib.import_module(m)\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('renkei'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.strip().split(","))
    assert set(HUB_MODULES + WEB_MODULES) <= loaded  # the import really happened
    assert len(HUB_MODULES) >= 5 and len(WEB_MODULES) >= 5
    assert sorted(m for m in loaded if m == "renkei.sending" or m.startswith("renkei.sending.")) == []


def test_the_faces_hold_no_queries() -> None:
    """The web and the CLI's application commands call the hub's services; the ORM queries are there."""
    faces = [*(SRC / "web").rglob("*.py"), SRC / "cli" / "applications.py"]
    offenders = {
        str(p.relative_to(SRC)): sorted(m for m in imported_modules(p) if m.split(".")[0] == "sqlalchemy")
        for p in faces
    }
    # context.py opens the session that identifies the caller's terminal (before any service is called).
    assert {k: v for k, v in offenders.items() if v} == {"web/context.py": ["sqlalchemy.orm"]}


def test_pseudonym_key_is_read_only_in_the_pseudonym_module() -> None:
    users = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "pseudonym.key" in p.read_text(encoding="utf-8") or "load_key(" in p.read_text(encoding="utf-8")
    ]
    # config.py names the file only to refuse a hub home that holds it; it never opens it.
    assert set(users) <= {"sending/pseudonym.py", "sending/extract.py", "cli/sending.py", "config.py"}
