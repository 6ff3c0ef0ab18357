"""A portal over a hub with real imported juki and kaigo snapshots (two periods each), for the workspace pages.

The hub of :func:`tests.integration.workspace_world.make_workspace_world` (a tiny synthetic city extracted,
sealed and imported) gets the terminal CA, an enrolled terminal and the portal (``create_app``) on its home, so
that tables are built from real data in the real sandbox. Grants are written directly with
:meth:`WorkspaceWorld.grant`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event

from renkei.hub.access.cards import CardSettings
from renkei.hub.access.passwords import Passwords
from renkei.hub.access.people import Role
from renkei.hub.access.terminals import TerminalCA
from renkei.web.app import create_app
from renkei.web.settings import WebSettings
from tests.integration.workspace_world import WorkspaceWorld, make_workspace_world
from tests.support import TEST_HASHING
from tests.web.support import Person, WebWorld, _no_fsync, enroll


@dataclass
class AnalysisWorld:
    web: WebWorld
    data: WorkspaceWorld

    def analyst(self, *, granted: tuple[str, ...] = ("juki", "kaigo")) -> Person:
        """An analyst (TOTP) holding grants on every imported period of ``granted``."""
        person = self.web.person(Role.ANALYST)
        for dataset in granted:
            self.data.grant(person.user, dataset, self.data.periods)
        return person


@contextmanager
def analysis_world(directory: Path, *, residents: int = 200, **settings: Any) -> Iterator[AnalysisWorld]:
    data = make_workspace_world(directory, residents=residents)
    home = data.hub.home
    clock = data.clock
    ca = TerminalCA.load_or_create(home, clock)
    defaults: dict[str, Any] = {"passwords": Passwords(TEST_HASHING), "card_settings": CardSettings()}
    web_settings = WebSettings(clock=clock, **{**defaults, **settings})
    app = create_app(home, web_settings)
    engine = app.state.portal.hub.engine
    event.listen(engine, "connect", _no_fsync)
    terminal, cert_pem = enroll(engine, ca, clock, "term-01", home)
    try:
        yield AnalysisWorld(WebWorld(home, app, clock, ca, terminal, cert_pem, web_settings), data)
    finally:
        engine.dispose()
