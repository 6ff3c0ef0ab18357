"""Shared fixtures: isolated homes, so no test ever touches a developer's real state."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from renkei.sending.pseudonym import create_key
from tests.support.examples import MAX_EXAMPLES

# Property tests: no per-example deadline (this machine is shared and noisy); HYPOTHESIS_MAX_EXAMPLES sets how
# many examples every one of them runs (tests/support/examples.py).
# A pytest-xdist worker starts with COLUMNS=80 and LINES=24 in its environment, which a plain run lacks; the
# CLI's consoles (renkei.cli.common) would then fix their width at 80 when imported and ignore the COLUMNS a
# test gives CliRunner. Workers run as a plain run does.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _variable in ("COLUMNS", "LINES"):
        os.environ.pop(_variable, None)

settings.register_profile("renkei", deadline=None, max_examples=MAX_EXAMPLES)
settings.load_profile("renkei")


@pytest.fixture(autouse=True)
def _isolate_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("RENKEI_HOME", str(tmp_path_factory.mktemp("default-home")))
    monkeypatch.delenv("RENKEI_DATABASE_URL", raising=False)
    yield


@pytest.fixture
def sender_home(tmp_path: Path) -> Path:
    home = tmp_path / "sender"
    create_key(home)
    return home


POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


def _postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the shared `test` database, dropped afterwards, so runs never see each other (nor
    parallel workers: the name is random, and says which worker made it should one be left behind)."""
    schema = f"t_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each catalog/audit test runs against SQLite and against the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        yield from _postgres_schema_url()
