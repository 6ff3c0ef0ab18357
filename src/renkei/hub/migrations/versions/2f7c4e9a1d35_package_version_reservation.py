"""package version reservation

Revision ID: 2f7c4e9a1d35
Revises: 8d3f6a1b2c90
Create Date: 2026-12-12 09:00:00.000000

A package row in state ``storing`` reserves its (dataset, period, version); from here on a unique key makes that
reservation exclusive on SQLite and PostgreSQL alike. Before it, two racing imports could reserve the same
version (issue 9, item 12), so an existing catalog may hold such duplicates: the imported row (else the oldest)
keeps the version, every other one is moved to a fresh version after the highest of its period. Only rows still
``storing`` can be moved (two imported rows would have collided on the snapshots' own unique key): the next
import finishes or releases them. The columns ``rows``, ``bytes`` and ``spec_hash`` let an import interrupted after
its vault write be finished from the vault alone; rows reserved before this revision have none.
"""

from __future__ import annotations

from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision = "2f7c4e9a1d35"
down_revision = "8d3f6a1b2c90"
branch_labels = None
depends_on = None

packages = sa.table(
    "packages",
    sa.column("id", sa.Integer()),
    sa.column("dataset_id", sa.Integer()),
    sa.column("period", sa.Date()),
    sa.column("version", sa.Integer()),
    sa.column("state", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rows", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("spec_hash", sa.String(length=64), nullable=True))
    _move_duplicate_reservations()
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_packages_dataset_id"), ["dataset_id", "period", "version"]
        )


def _move_duplicate_reservations() -> None:
    conn = op.get_bind()
    found = conn.execute(
        sa.select(
            packages.c.id, packages.c.dataset_id, packages.c.period, packages.c.version, packages.c.state
        )
    ).all()
    # imported first, then oldest: that row keeps the version
    rows = sorted(found, key=lambda r: (r.dataset_id, r.period, r.version, r.state != "IMPORTED", r.id))
    for _, group in groupby(rows, key=lambda r: (r.dataset_id, r.period)):
        members = list(group)
        highest = max(r.version for r in members)
        seen: set[int] = set()
        for row in members:
            if row.version in seen:
                highest += 1
                conn.execute(sa.update(packages).where(packages.c.id == row.id).values(version=highest))
            seen.add(row.version)


def downgrade() -> None:
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_packages_dataset_id"), type_="unique")
        batch_op.drop_column("spec_hash")
        batch_op.drop_column("bytes")
        batch_op.drop_column("rows")
