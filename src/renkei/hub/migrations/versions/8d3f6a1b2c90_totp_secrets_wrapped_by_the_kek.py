"""totp secrets wrapped by the kek

Revision ID: 8d3f6a1b2c90
Revises: 5b1e9d2c7a40
Create Date: 2026-12-10 10:00:00.000000

TOTP secrets were stored in plain base32 (``secret``); from here on only wrapped by the vault's KEK
(``wrapped_secret``: JSON ``{"kek_id", "nonce", "wrapped"}``, AES-256-GCM, bound to the user). Existing rows are
wrapped here, which needs the KEK: ``renkei.hub.migrate.upgrade(engine, kek=...)`` (``renkei hub migrate``).
The stored format and the associated data are spelled out below, as they were at this revision, so later
changes to renkei.hub.access.totp cannot alter what this migration writes.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from renkei.hub.keys import WrappedKey

revision = "8d3f6a1b2c90"
down_revision = "5b1e9d2c7a40"
branch_labels = None
depends_on = None

AAD_PREFIX = b"renkei/totp-secret/v1|user/"


def upgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT user_id, secret FROM totp_secrets")).all()
    kek: Any = _kek() if rows else None  # before any change: without the key, nothing is altered
    with op.batch_alter_table("totp_secrets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wrapped_secret", sa.Text(), nullable=True))
    for user_id, secret in rows:
        wrapped = kek.wrap(secret.encode("ascii"), AAD_PREFIX + str(user_id).encode())
        _set(user_id, "wrapped_secret", json.dumps(wrapped.to_json(), sort_keys=True, separators=(",", ":")))
    with op.batch_alter_table("totp_secrets", schema=None) as batch_op:
        batch_op.alter_column("wrapped_secret", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("secret")


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT user_id, wrapped_secret FROM totp_secrets")).all()
    kek: Any = _kek() if rows else None
    with op.batch_alter_table("totp_secrets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=64), nullable=True))
    for user_id, stored in rows:
        wrapped = WrappedKey.from_json(json.loads(stored))
        _set(user_id, "secret", kek.unwrap(wrapped, AAD_PREFIX + str(user_id).encode()).decode("ascii"))
    with op.batch_alter_table("totp_secrets", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("wrapped_secret")


def _kek() -> Any:
    kek = context.config.attributes.get("kek")
    if kek is None:
        raise RuntimeError(
            "TOTP の秘密情報を包むには鍵暗号化鍵が必要です（renkei hub migrate で実行してください）"
            " / wrapping the TOTP secrets needs the KEK: run `renkei hub migrate`"
        )
    return kek


def _set(user_id: int, column: str, value: str) -> None:
    table = sa.table("totp_secrets", sa.column("user_id"), sa.column(column))
    op.get_bind().execute(table.update().where(table.c.user_id == user_id).values({column: value}))
