"""The architecture's invariants that can be checked statically (docs/security.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import renkei

SRC = Path(renkei.__file__).parent
HUB_MODULES = sorted(
    "renkei." + ".".join(p.relative_to(SRC).with_suffix("").parts)
    for p in (SRC / "hub").rglob("*.py")
    if "migrations" not in p.parts and p.name != "__init__.py"
)


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


def test_loading_every_hub_module_never_loads_the_pseudonym_key_code() -> None:
    """Invariant 1: the hub process never has the key handling code, hence never the key, in memory."""
    code = (
        "import importlib, sys\n"
        f"for m in {HUB_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m in ('renkei.sending.pseudonym', 'renkei.sending.seal',"
        " 'renkei.sending.extract'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
    assert len(HUB_MODULES) >= 5


def test_pseudonym_key_is_read_only_in_the_pseudonym_module() -> None:
    users = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "pseudonym.key" in p.read_text(encoding="utf-8") or "load_key(" in p.read_text(encoding="utf-8")
    ]
    # config.py names the file only to refuse a hub home that holds it; it never opens it.
    assert set(users) <= {"sending/pseudonym.py", "sending/extract.py", "cli/sending.py", "config.py"}
