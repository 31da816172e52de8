"""Reprints: an owner's granted issues beyond the reissue cap, and label requests remembered by idempotency key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:20:00

``orders.reprints_granted`` counts the issues an owner granted beyond the reissue cap (existing orders: 0).
``label_deliveries`` remembers, for a bounded window, a label request made with an ``Idempotency-Key``: the
key's hash, the request's digest, format, options and order references, no PII (vault.models.LabelDelivery).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reprints_granted", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("reprints_granted", server_default=None)
    op.create_table(
        "label_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("orders", sa.JSON(), nullable=False),
        sa.Column("printed_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_label_deliveries_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_label_deliveries_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_deliveries")),
        sa.UniqueConstraint("client_id", "key_hash", name=op.f("uq_label_deliveries_client_id_key_hash")),
    )
    with op.batch_alter_table("label_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_label_deliveries_client_id_expires_at"), ["client_id", "expires_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("label_deliveries")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("reprints_granted")
