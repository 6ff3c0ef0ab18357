"""The Alembic migrations are the only way hub tables are made: they must produce exactly the models' schema."""

from __future__ import annotations

import datetime as dt
import secrets

import pyotp
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from renkei.clock import FakeClock
from renkei.hub import models  # noqa: F401  (every table on Base.metadata)
from renkei.hub.access.totp import TotpSecret, current_code, unwrap_secret, verify_totp
from renkei.hub.db import Base, make_engine
from renkei.hub.keys import KEK_BYTES, AesGcmKek
from renkei.hub.migrate import alembic_config, upgrade


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)
    engine.dispose()


BEFORE_WRAPPING = "5b1e9d2c7a40"  # the last revision with plain TOTP secrets


def test_existing_totp_secrets_are_wrapped_by_the_kek_and_back(database_url: str) -> None:
    """Issue 9, item 10: rows written before the KEK wrapped them are wrapped by the migration."""
    engine = make_engine(database_url)
    upgrade(engine, BEFORE_WRAPPING)
    secret, now = pyotp.random_base32(), dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO departments (id, name, created_at) VALUES (1, '税務課', :now)",
            "INSERT INTO users (id, login_id, display_name, role, department_id, disabled, created_at,"
            " designated_by) VALUES (7, 'kato', '加藤', 'ANALYST', 1, :no, :now, 'test')",
            "INSERT INTO totp_secrets (user_id, secret, enrolled_at, enrolled_by) VALUES (7, :s, :now, 'test')",
        ):
            connection.execute(text(statement), {"now": now, "no": False, "s": secret})
    with pytest.raises(RuntimeError, match="needs the KEK"):
        upgrade(engine)  # refused before anything changed
    assert _totp_columns(engine) == {"user_id", "secret", "enrolled_at", "enrolled_by", "last_used_step"}
    kek = AesGcmKek(secrets.token_bytes(KEK_BYTES), "test")
    upgrade(engine, kek=kek)
    assert "secret" not in _totp_columns(engine)
    with Session(engine) as session:
        stored = session.get_one(TotpSecret, 7)
        assert secret not in stored.wrapped_secret and unwrap_secret(kek, 7, stored.wrapped_secret) == secret
        assert verify_totp(session, 7, current_code(secret, now), kek=kek, clock=FakeClock(now))
    config = alembic_config(engine)
    config.attributes["kek"] = kek
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, BEFORE_WRAPPING)
        assert connection.execute(text("SELECT secret FROM totp_secrets")).scalar_one() == secret
    engine.dispose()


def _totp_columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("totp_secrets")}


BEFORE_RESERVATIONS = "8d3f6a1b2c90"  # the last revision without a unique key on a package's version


def test_duplicate_reservations_left_by_racing_imports_are_moved_before_the_unique_key(
    database_url: str,
) -> None:
    """Issue 9, item 12: two imports could reserve one version; the imported row keeps it, the other moves."""
    engine = make_engine(database_url)
    upgrade(engine, BEFORE_RESERVATIONS)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO departments (id, name, created_at) VALUES (1, '介護保険課', :now)"),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO datasets (id, name, title, description, owner_id, spec_hash, spec, columns,"
                " registered_at) VALUES (1, 'kaigo', 't', '', 1, :h, '{}', '[]', :now)"
            ),
            {"h": "0" * 64, "now": now},
        )
        connection.execute(
            text("INSERT INTO senders (id, name, public_key, registered_at) VALUES (1, 's', 'k', :now)"),
            {"now": now},
        )
        for row_id, version, state in [
            (1, 1, "STORING"),
            (2, 1, "IMPORTED"),
            (3, 2, "IMPORTED"),
            (4, 2, "STORING"),
        ]:
            connection.execute(
                text(
                    "INSERT INTO packages (id, package_id, envelope_sha256, sender_id, dataset_id, period, version,"
                    " content_sha256, state, received_at) VALUES (:id, :pid, :h, 1, 1, :period, :v, :h, :s, :now)"
                ),
                {
                    "id": row_id,
                    "pid": f"p{row_id}",
                    "h": "0" * 64,
                    "period": dt.date(2025, 1, 1),
                    "v": version,
                    "s": state,
                    "now": now,
                },
            )
    upgrade(engine)
    with engine.connect() as connection:
        versions = dict(connection.execute(text("SELECT id, version FROM packages")).all())
    assert versions == {2: 1, 3: 2, 1: 3, 4: 4}  # the imported rows kept theirs
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE packages SET version = 1 WHERE id = 3"))
    engine.dispose()
