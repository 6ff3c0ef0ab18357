"""snapshot risk reports and link rates

Revision ID: 48f10e3797d2
Revises: 2f7c4e9a1d35
Create Date: 2026-12-03 18:33:07.867559

Two catalog tables filled at import (renkei.hub.assessment, docs/risk.md): ``snapshot_risk``, a snapshot's
re-identification risk report (figures only) and whether it is flagged; ``snapshot_linkage``, how many of a
snapshot's rows link by pid to the resident register of its period. Existing snapshots get no row: they show
as not assessed and are not flagged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "48f10e3797d2"
down_revision = "2f7c4e9a1d35"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshot_linkage",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("register_snapshot_id", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("linked", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["register_snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_snapshot_linkage_register_snapshot_id_snapshots"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_linkage_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("snapshot_id", name=op.f("pk_snapshot_linkage")),
    )
    op.create_table(
        "snapshot_risk",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_snapshot_risk_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("snapshot_id", name=op.f("pk_snapshot_risk")),
    )


def downgrade() -> None:
    op.drop_table("snapshot_risk")
    op.drop_table("snapshot_linkage")
