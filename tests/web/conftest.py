"""Fixtures of the web tests: a portal on SQLite shared by a module, and one per database for the main flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.clock import FakeClock
from tests.web.support import WebWorld, world_on


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    """One portal on SQLite for a test module; tests make their own people and objects."""
    directory = tmp_path_factory.mktemp("web")
    with world_on(f"sqlite:///{directory / 'catalog.db'}", directory) as world:
        yield world


@pytest.fixture
def world(shared_world: WebWorld) -> WebWorld:
    shared_world.clock.current = FakeClock().current  # every test starts at the same instant
    return shared_world


@pytest.fixture
def db_world(database_url: str, tmp_path: Path) -> Iterator[WebWorld]:
    """A portal on SQLite and on PostgreSQL (the root conftest's database_url)."""
    with world_on(database_url, tmp_path) as world:
        yield world
