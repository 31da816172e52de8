"""The seller's time zone, for the dashboard's dates and its daily print run.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 02:00:00

``tenants.time_zone`` is an IANA zone name (``Asia/Tokyo``); the dashboard shows dates and decides what is
"to ship today" in it. Existing tenants keep seeing UTC, as before: ``UTC``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC"))
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.alter_column("time_zone", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
