"""snapshot risk reports, link rates and second approvals

Revision ID: da062d5536eb
Revises: 2f7c4e9a1d35
Create Date: 2026-12-03 18:45:00.764746

Issue 13 (docs/risk.md). Two catalog tables filled at import (renkei.hub.assessment): ``snapshot_risk``, a
snapshot's re-identification risk report (figures only) and whether it is flagged; ``snapshot_linkage``, how
many of a snapshot's rows link by pid to the resident register of its period. And the first of two approvals
on ``application_parts`` (row-level viewing of a flagged snapshot needs a second steward). Existing snapshots
get no row: they show as not assessed and are not flagged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "da062d5536eb"
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
    with op.batch_alter_table("application_parts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_approved_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("first_approved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_application_parts_first_approved_by_id_users"),
            "users",
            ["first_approved_by_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("application_parts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_application_parts_first_approved_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("first_approved_at")
        batch_op.drop_column("first_approved_by_id")

    op.drop_table("snapshot_risk")
    op.drop_table("snapshot_linkage")
