"""Only the gate decrypts snapshots for analysis: a static scan of src/ for every caller of the vault's
decrypting methods (ARCHITECTURE invariant 5; the workspace's gate.py).

Found when this test was written: ``renkei/hub/workspace/gate.py::open_granted_snapshots`` calls
``decrypt_to_memfds`` (for a snapshot's data and for its stored record keys); nothing in src/ calls
``decrypt_to_memfd`` or ``open_plain`` (benchmarks do, outside src/); the vault's own verification decrypts
through its private helpers (``_digest``), which nothing outside vault.py touches; the importer decrypts
packages with pyrage, never the vault.
"""

from __future__ import annotations

import ast
from pathlib import Path

import renkei

SRC = Path(renkei.__file__).resolve().parent
PUBLIC = {"decrypt_to_memfd", "decrypt_to_memfds", "open_plain"}
PRIVATE = {
    "_decrypt",
    "_decrypt_in_children",
    "_start_decryptor",
    "_DECRYPTOR",
    "_decrypt_stream",
    "_digest",
    "_DecryptingStream",
    "_open_parts",
    "_identity",
}
ALLOWED = {
    ("hub/workspace/gate.py", "open_granted_snapshots", "decrypt_to_memfds"),
    # the importer counts how many rows of a snapshot link to the resident register (docs/risk.md): two counts
    ("hub/assessment.py", "decrypted", "decrypt_to_memfd"),
}
VAULT = "hub/vault.py"


def uses(path: Path, root: Path = SRC) -> set[tuple[str, str, str]]:
    """(module, enclosing function, name) for each call or reference of a decrypting name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = path.relative_to(root).as_posix()
    found: set[tuple[str, str, str]] = set()

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            for name in _names(child):
                found.add((module, function, name))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def _names(node: ast.AST) -> set[str]:
    """Public names however spelled; private ones as an attribute or imported from the vault (other modules
    have helpers of their own called ``_digest``)."""
    if isinstance(node, ast.Attribute):
        return {node.attr} & (PUBLIC | PRIVATE)
    if isinstance(node, ast.Name):
        return {node.id} & PUBLIC
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & PUBLIC  # getattr(vault, "decrypt_to_memfd")
    if isinstance(node, ast.ImportFrom) and node.module == "renkei.hub.vault":
        return {alias.name for alias in node.names} & (PUBLIC | PRIVATE)
    return set()


def all_uses() -> set[tuple[str, str, str]]:
    return {use for path in sorted(SRC.rglob("*.py")) for use in uses(path)}


def test_only_the_gate_decrypts_for_analysis() -> None:
    public = {u for u in all_uses() if u[2] in PUBLIC and u[0] != VAULT}
    assert public == ALLOWED  # a new caller must go through gate.open_granted_snapshots (or be listed here)


def test_the_vaults_private_decryption_stays_inside_the_vault() -> None:
    assert {u for u in all_uses() if u[2] in PRIVATE and u[0] != VAULT} == set()


def test_the_scan_sees_a_caller(tmp_path: Path) -> None:
    """The scan is not blind: each way of reaching the vault's decryption is found."""
    probe = tmp_path / "_probe_caller.py"
    probe.write_text(
        "from renkei.hub.vault import _decrypt_in_children\n"
        "def sneak(vault, ref):\n    return vault.decrypt_to_memfd(ref, 'data.parquet')\n"
        "def sneakier(vault, ref):\n    return getattr(vault, 'open_plain')(ref, 'x')\n"
        "def sneakiest(vault, ref):\n    return vault._open_parts(ref, 'x')\n"
    )
    assert uses(probe, tmp_path) == {
        ("_probe_caller.py", "<module>", "_decrypt_in_children"),
        ("_probe_caller.py", "sneak", "decrypt_to_memfd"),
        ("_probe_caller.py", "sneakier", "open_plain"),
        ("_probe_caller.py", "sneakiest", "_open_parts"),
    }
