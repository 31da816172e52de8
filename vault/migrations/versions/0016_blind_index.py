"""Blind indexes: per-tenant index keys and keyed digests of each label record's identifying values.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 05:30:00

``index_keys`` holds each tenant's blind-index HMAC key versions, wrapped by the root key like
``tenant_keys``. ``blind_index`` holds one HMAC-SHA256 digest per identifying value of a label record
(vault/blind_index.py); its rows go with their record (ON DELETE CASCADE). Records sealed before this
revision get their entries from ``labelvault rights reindex`` (the index key is created on first use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("root_key_id", sa.String(length=300), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", vault.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", vault.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_index_keys_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_keys")),
        sa.UniqueConstraint("tenant_id", "version", name=op.f("uq_index_keys_tenant_id_version")),
    )
    with op.batch_alter_table("index_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_index_keys_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "blind_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("label_record_id", sa.Integer(), nullable=False),
        sa.Column("index_version", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_record_id"],
            ["label_records.id"],
            name=op.f("fk_blind_index_label_record_id_label_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_blind_index_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blind_index")),
    )
    with op.batch_alter_table("blind_index", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blind_index_tenant_id_digest"), ["tenant_id", "digest"], unique=False)
        batch_op.create_index(batch_op.f("ix_blind_index_label_record_id"), ["label_record_id"], unique=False)


def downgrade() -> None:
    op.drop_table("blind_index")
    op.drop_table("index_keys")
