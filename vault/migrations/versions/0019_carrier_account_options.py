"""Carrier account options: the per-account options a carrier declares (connectors/carriers/registry.py).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 19:00:00

``carrier_accounts.options`` is a JSON object of flags and numbers (Amazon Shipping's ``one_click``,
``ship_to_from_order``, ``dpi``): no PII, no secret. Existing accounts get ``{}``: every option its default,
as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("carrier_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("options", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("carrier_accounts", schema=None) as batch_op:
        batch_op.drop_column("options")
