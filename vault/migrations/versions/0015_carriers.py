"""Carrier labels: the sellers' carrier accounts and the shipments bought through them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:30:00

``carrier_accounts`` holds a seller's carrier account (credentials sealed, like marketplace accounts');
``shipments`` one label bought, or being bought, for one order: recorded before the carrier is asked, so a
lost answer is settled from the carrier's records, never bought twice (vault.models.Shipment). No PII.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("test_mode", sa.Boolean(), nullable=False),
        sa.Column("api_endpoint", sa.String(length=300), nullable=True),
        sa.Column("ship_from", sa.JSON(), nullable=False),
        sa.Column("credentials_envelope", sa.LargeBinary(), nullable=True),
        sa.Column("credentials_key_version", sa.Integer(), nullable=True),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_carrier_accounts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_accounts")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_carrier_accounts_tenant_id_name")),
    )
    with op.batch_alter_table("carrier_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_carrier_accounts_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("live_order_id", sa.Integer(), nullable=True),
        sa.Column("carrier_account_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parcel", sa.JSON(), nullable=False),
        sa.Column("service_asked", sa.String(length=60), nullable=False),
        sa.Column("label_format", sa.String(length=10), nullable=False),
        sa.Column("lease_until", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("carrier_shipment_id", sa.String(length=100), nullable=True),
        sa.Column("rate_id", sa.String(length=100), nullable=True),
        sa.Column("purchase_id", sa.String(length=100), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("provider", sa.String(length=60), nullable=True),
        sa.Column("service", sa.String(length=100), nullable=True),
        sa.Column("amount", sa.String(length=20), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("estimated_days", sa.Integer(), nullable=True),
        sa.Column("fields_sent", sa.JSON(), nullable=True),
        sa.Column("labels_issued", sa.Integer(), nullable=False),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("bought_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_account_id"],
            ["carrier_accounts.id"],
            name=op.f("fk_shipments_carrier_account_id_carrier_accounts"),
        ),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.id"], name=op.f("fk_shipments_client_id_api_clients")),
        sa.ForeignKeyConstraint(["live_order_id"], ["orders.id"], name=op.f("fk_shipments_live_order_id_orders")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_shipments_order_id_orders")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_shipments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("client_id", "key_hash", name=op.f("uq_shipments_client_id_key_hash")),
        sa.UniqueConstraint("live_order_id", name=op.f("uq_shipments_live_order_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_shipments_reference")),
    )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipments_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shipments_tenant_id_status"), ["tenant_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_table("shipments")
    op.drop_table("carrier_accounts")
