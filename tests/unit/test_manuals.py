"""The Japanese manuals (issue 12 item 7) name only commands and documents that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from renkei.cli.main import COMMANDS, app

DOCS = Path(__file__).parents[2] / "docs"
MANUALS = ("operations.md", "security-manual.md")


def _subcommands(name: str) -> set[str]:
    import typer.main  # noqa: PLC0415

    group = typer.main.get_command(app).get_command(None, name)  # type: ignore[attr-defined]
    return set(getattr(group, "commands", {}) or {})


@pytest.mark.parametrize("manual", MANUALS)
def test_every_renkei_command_a_manual_names_exists(manual: str) -> None:
    text = (DOCS / manual).read_text(encoding="utf-8")
    named = re.findall(r"renkei ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", text)
    assert named
    for command, sub in named:
        assert command in COMMANDS, (manual, command)
        subs = _subcommands(command)
        if subs and sub:
            assert sub in subs, (manual, command, sub)


@pytest.mark.parametrize("manual", MANUALS)
def test_every_linked_document_exists(manual: str) -> None:
    text = (DOCS / manual).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+\.md)", text):
        assert (DOCS / target).exists(), (manual, target)
