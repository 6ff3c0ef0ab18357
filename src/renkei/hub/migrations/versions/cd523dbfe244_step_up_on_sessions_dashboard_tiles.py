"""step-up on sessions (the last proof of the second factor, a card challenge), dashboard tiles

Revision ID: cd523dbfe244
Revises: da062d5536eb
Create Date: 2026-12-03 18:30:28.797514
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cd523dbfe244"
down_revision = "da062d5536eb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_tiles",
        sa.Column("analysis_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("snapshots_key", sa.String(length=64), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["analysis_id"],
            ["saved_analyses.id"],
            name=op.f("fk_dashboard_tiles_analysis_id_saved_analyses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_dashboard_tiles_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("analysis_id", name=op.f("pk_dashboard_tiles")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stepped_up_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("step_up_challenge", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_column("step_up_challenge")
        batch_op.drop_column("stepped_up_at")

    op.drop_table("dashboard_tiles")
