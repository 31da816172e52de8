"""Rights requests as a workflow: the request (its person's values sealed) and the orders it found.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 05:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("jurisdiction", sa.String(length=40), nullable=False),
        sa.Column("received_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verified_by", sa.String(length=100), nullable=False),
        sa.Column("verification", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("values_envelope", sa.LargeBinary(), nullable=True),
        sa.Column("values_key_version", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_rights_requests_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_requests")),
    )
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rights_requests_tenant_id_state_due_at"), ["tenant_id", "state", "due_at"], unique=False
        )
    op.create_table(
        "rights_request_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("named", sa.Boolean(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("hold_ids", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_rights_request_orders_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["rights_requests.id"], name=op.f("fk_rights_request_orders_request_id_rights_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_request_orders")),
        sa.UniqueConstraint("request_id", "order_id", name=op.f("uq_rights_request_orders_request_id_order_id")),
    )


def downgrade() -> None:
    op.drop_table("rights_request_orders")
    op.drop_table("rights_requests")
