"""Shipment confirmations: the marketplace to be told that a bought shipment's order shipped.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipment_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("marketplace", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=40), nullable=True),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_shipment_confirmations_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_shipment_confirmations_shipment_id_shipments")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_shipment_confirmations_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_confirmations")),
        sa.UniqueConstraint("shipment_id", name=op.f("uq_shipment_confirmations_shipment_id")),
    )
    with op.batch_alter_table("shipment_confirmations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipment_confirmations_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_shipment_confirmations_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_shipment_confirmations_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("shipment_confirmations")
