"""retention: tenant retention policies, legal holds, root key ledger, due-orders index

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-22 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vault.models

revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tenant_retention_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('marketplace', sa.String(length=40), nullable=False),
    sa.Column('days_after_delivery', sa.Integer(), nullable=False),
    sa.Column('updated_at', vault.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_retention_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_retention_policies')),
    sa.UniqueConstraint('tenant_id', 'marketplace', name=op.f('uq_tenant_retention_policies_tenant_id_marketplace'))
    )
    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', vault.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', vault.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', vault.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_legal_holds_order_id_orders')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_legal_holds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_legal_holds_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('root_keys',
    sa.Column('root_key_id', sa.String(length=300), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('current_from', vault.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', vault.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('destroyed_at', vault.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('root_key_id', name=op.f('pk_root_keys'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(
            'ix_orders_due',
            ['retention_until', 'id'],
            unique=False,
            postgresql_where=sa.text('erased_at IS NULL'),
            sqlite_where=sa.text('erased_at IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_due', postgresql_where=sa.text('erased_at IS NULL'), sqlite_where=sa.text('erased_at IS NULL'))
    op.drop_table('root_keys')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_legal_holds_order_id'))
    op.drop_table('legal_holds')
    op.drop_table('tenant_retention_policies')
