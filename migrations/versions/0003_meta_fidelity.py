"""meta fidelity: no PKCE verifier, granular scopes, token generation, app health

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # Meta's web dialog drops code_challenge and refuses a code_verifier: nothing to keep.
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_column('code_verifier')

    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('granular_scopes', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), nullable=False,
                                      server_default='0'))

    # App-wide notices (the Meta app itself is misconfigured) belong to no tenant.
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.Integer(), nullable=True)

    op.create_table('app_health',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('misconfigured', sa.Boolean(), nullable=False),
    sa.Column('credential', sa.String(length=32), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade():
    op.drop_table('app_health')
    op.execute("DELETE FROM notification_outbox WHERE tenant_id IS NULL")
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.drop_column('token_generation')
        batch_op.drop_column('granular_scopes')
    # Pending states cannot get a verifier back: they are dropped (they live five minutes).
    op.execute("DELETE FROM oauth_states")
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_verifier', sa.Text(), nullable=False,
                                      server_default=''))
