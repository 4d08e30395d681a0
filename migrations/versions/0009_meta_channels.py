"""channels: the Pages, Instagram accounts, WhatsApp accounts and phone numbers of a tenant's
Meta connection, the ones the CRM uses, each Page's encrypted token and its subscriptions

Revision ID: 0009
Revises: 0007 (written on 0006; chained here after the gateway's 0007, itself put after
main's 0008, so this branch has one head: the lead re-chains at merge)
Create Date: 2026-12-06 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'meta_channels',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('connection_id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.Column('asset_type', sa.String(length=30), nullable=False),
        sa.Column('asset_id', sa.String(length=64), nullable=False),
        sa.Column('asset_name', sa.String(length=200), nullable=False),
        sa.Column('parent_asset_id', sa.String(length=64), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('token_ciphertext', sa.Text(), nullable=True),
        sa.Column('key_id', sa.String(length=16), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('bound_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('subscribed_fields', sa.JSON(), nullable=False),
        sa.Column('left_out_fields', sa.JSON(), nullable=False),
        sa.Column('trouble', sa.String(length=40), nullable=True),
        sa.Column('trouble_warned', sa.Boolean(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['connection_id'], ['meta_tokens.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'platform', 'asset_id', name='uq_meta_channels_tenant_asset'),
    )
    with op.batch_alter_table('meta_channels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meta_channels_connection_id'), ['connection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meta_channels_tenant_id'), ['tenant_id'], unique=False)


def downgrade():
    with op.batch_alter_table('meta_channels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meta_channels_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_meta_channels_connection_id'))
    op.drop_table('meta_channels')
