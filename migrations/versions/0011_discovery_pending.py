"""A connection's discovery still running: a connect reads what its round budget allows, the
discovery job reads the rest (a status column: the status trigger watches it too)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 12:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# The status trigger's columns (migration 0006), then with the new one.
BEFORE = ("status, expires_at, data_access_expires_at, throttled_until, last_checked_at, "
          "scopes, declined_scopes, login_config_id, meta_user_name, selected_business_id, "
          "selected_ad_account_id, selected_ad_account_name, business_count, "
          "ad_account_count")
AFTER = f"{BEFORE}, discovery_pending_since"


def _trigger(columns: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS crm_meta_status_tokens ON meta_tokens")
    op.execute("CREATE TRIGGER crm_meta_status_tokens AFTER INSERT OR DELETE OR UPDATE OF "
               f"tenant_id, {columns} ON meta_tokens "
               "FOR EACH ROW EXECUTE FUNCTION crm_meta_notify_status()")


def upgrade():
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discovery_pending_since', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_meta_tokens_discovery_pending_since',
                              ['discovery_pending_since'])
    _trigger(AFTER)


def downgrade():
    _trigger(BEFORE)
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_meta_tokens_discovery_pending_since')
        batch_op.drop_column('discovery_pending_since')
