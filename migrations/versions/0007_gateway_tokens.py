"""gateway tokens: one credential per service and tenant for the drop-in Graph endpoint

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-06 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0008'  # was '0006'; follows main's 0008 so the branch keeps one head
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('gateway_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('service_key_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_key_id'], ['service_keys.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('gateway_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gateway_tokens_prefix'), ['prefix'], unique=True)
        batch_op.create_index(batch_op.f('ix_gateway_tokens_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gateway_tokens_service_key_id'), ['service_key_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('gateway_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gateway_tokens_service_key_id'))
        batch_op.drop_index(batch_op.f('ix_gateway_tokens_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_gateway_tokens_prefix'))

    op.drop_table('gateway_tokens')
