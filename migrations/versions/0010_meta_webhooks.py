"""Meta's webhooks: the inbox of signed deliveries, parked entries, the CRM's event endpoints,
and the connection's lead-access state

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'webhook_inbox',
        sa.Column('id', BIG_ID, primary_key=True, autoincrement=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('route', sa.String(length=64), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('malformed', sa.Boolean(), nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(length=200), nullable=True),
    )
    op.create_index('ix_webhook_inbox_processed_at', 'webhook_inbox', ['processed_at'])
    op.create_table(
        'webhook_parked',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('object', sa.String(length=40), nullable=False),
        sa.Column('asset_kind', sa.String(length=40), nullable=False),
        sa.Column('asset_id', sa.String(length=64), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('event', sa.JSON(), nullable=False),
        sa.Column('inbox_id', BIG_ID, nullable=True),
        sa.Column('parked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rerouted_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_webhook_parked_asset_id', 'webhook_parked', ['asset_id'])
    op.create_index('ix_webhook_parked_rerouted_at', 'webhook_parked', ['rerouted_at'])
    op.create_table(
        'event_endpoints',
        sa.Column('tenant_id', sa.Integer(), sa.ForeignKey('tenants.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('secret_ciphertext', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table('meta_tokens') as batch:
        batch.add_column(sa.Column('leads_access', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('leads_access_error', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('leads_access_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('meta_tokens') as batch:
        batch.drop_column('leads_access_at')
        batch.drop_column('leads_access_error')
        batch.drop_column('leads_access')
    op.drop_table('event_endpoints')
    op.drop_index('ix_webhook_parked_rerouted_at', table_name='webhook_parked')
    op.drop_index('ix_webhook_parked_asset_id', table_name='webhook_parked')
    op.drop_table('webhook_parked')
    op.drop_index('ix_webhook_inbox_processed_at', table_name='webhook_inbox')
    op.drop_table('webhook_inbox')
