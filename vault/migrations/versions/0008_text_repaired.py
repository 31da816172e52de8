"""Orders whose label text was repaired at the boundary (lone surrogates, control characters).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:35:00

``orders.text_repaired`` marks an order whose ship-to text, as the marketplace served it, could not be
sealed or printed and was repaired (vault.records.repair_text), so the dashboard can tell the seller to
check it. Existing orders were stored as served: false.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_repaired", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("text_repaired", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("text_repaired")
