"""service keys limited to tenants; audit events paged per tenant

`service_keys.tenant_ids`: the tenants a key may open (a JSON list of ids); NULL keeps a key
multi-tenant, as every key was before. An index on audit_events (tenant_id, created_at, id)
serves the tenant admins' audit page and the CRM's audit API, newest first, page by page.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('service_keys') as batch:
        batch.add_column(sa.Column('tenant_ids', sa.JSON(), nullable=True))
    op.create_index('ix_audit_events_tenant_created', 'audit_events',
                    ['tenant_id', 'created_at', 'id'])


def downgrade():
    op.drop_index('ix_audit_events_tenant_created', table_name='audit_events')
    with op.batch_alter_table('service_keys') as batch:
        batch.drop_column('tenant_ids')
