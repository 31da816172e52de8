"""Merge the feature branches; tenant return address; label record source; drop a duplicate index.

Revision ID: 0007
Revises: 0003, 0004, 0005, 0006
Create Date: 2026-11-23 00:14:00

The four feature migrations (API clients, sync, retention, dashboard) each branched from 0002; this
revision joins them into one head again. ``label_records.source`` says whether a record is the
marketplace's copy or a seller's correction (which a later sync must not overwrite): existing rows are
the marketplace's. ``ix_orders_retention_until`` duplicated the partial index ``ix_orders_due``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = ("0003", "0004", "0005", "0006")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=20), nullable=False, server_default="marketplace"))
    with op.batch_alter_table("label_records", schema=None) as batch_op:
        batch_op.alter_column("source", server_default=None)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_retention_until"))

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("return_address", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("return_address")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_retention_until"), ["retention_until"], unique=False)

    with op.batch_alter_table("label_records", schema=None) as batch_op:
        batch_op.drop_column("source")
