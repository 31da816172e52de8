"""When a seller's grant to labelvault runs out, kept in clear so the seller sees it coming.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:30:00

``marketplace_accounts.grant_expires_at``: the end of the seller's consent as the platform states it (eBay's
``refresh_token_expires_in``, about 18 months after the consent). Not a secret, so not sealed: the dashboard
shows it and offers the re-consent link before it passes. Existing accounts (Amazon's refresh tokens don't
expire) have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("marketplace_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grant_expires_at", vault.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("marketplace_accounts", schema=None) as batch_op:
        batch_op.drop_column("grant_expires_at")
