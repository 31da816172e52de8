"""Accounts of any marketplace platform: generic endpoint columns, and orders whose address was withheld.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00

``marketplace_accounts.sp_api_endpoint`` and ``lwa_endpoint`` were Amazon's names for what every platform
has: an API base URL and a token URL, each set only for a sandbox or an origin the operator allows. They
become ``api_endpoint`` and ``token_endpoint`` (values kept). ``orders.label_withheld`` says why a live order
has no label record: the platform redacted the buyer's fields (``redacted``) or ships the order itself
(``platform-shipped``); existing orders withheld nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("marketplace_accounts", schema=None) as batch_op:
        batch_op.alter_column("sp_api_endpoint", new_column_name="api_endpoint")
        batch_op.alter_column("lwa_endpoint", new_column_name="token_endpoint")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label_withheld", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("label_withheld")
    with op.batch_alter_table("marketplace_accounts", schema=None) as batch_op:
        batch_op.alter_column("token_endpoint", new_column_name="lwa_endpoint")
        batch_op.alter_column("api_endpoint", new_column_name="sp_api_endpoint")
