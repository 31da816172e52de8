"""Shopify's privacy webhooks: deliveries handled (idempotency), and access exports kept for the seller.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:00:00

``shopify_webhooks`` remembers each handled delivery by its ``X-Shopify-Webhook-Id``, so Shopify's
at-least-once delivery never erases or exports twice. ``privacy_exports`` holds the access export of a
``customers/data_request``, sealed under the tenant key, until the seller fetches it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shopify_webhooks",
        sa.Column("webhook_id", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("received_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_shopify_webhooks")),
    )
    op.create_table(
        "privacy_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("orders", sa.JSON(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=True),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["marketplace_accounts.id"], name=op.f("fk_privacy_exports_account_id_marketplace_accounts")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_privacy_exports_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_exports")),
    )
    with op.batch_alter_table("privacy_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_exports_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("privacy_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_exports_tenant_id"))
    op.drop_table("privacy_exports")
    op.drop_table("shopify_webhooks")
