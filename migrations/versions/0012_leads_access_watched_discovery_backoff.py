"""The status trigger watches the connection's lead-access columns too (migration 0010 added
them to the status read but not to the trigger, so their writer announced its changes itself);
the discovery job's last try at a pending discovery, from which its backoff counts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The status trigger's columns as migration 0011 left them, then with the lead access.
BEFORE = ("status, expires_at, data_access_expires_at, throttled_until, last_checked_at, "
          "scopes, declined_scopes, login_config_id, meta_user_name, selected_business_id, "
          "selected_ad_account_id, selected_ad_account_name, business_count, "
          "ad_account_count, discovery_pending_since")
AFTER = f"{BEFORE}, leads_access, leads_access_error, leads_access_at"


def _trigger(columns: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS crm_meta_status_tokens ON meta_tokens")
    op.execute("CREATE TRIGGER crm_meta_status_tokens AFTER INSERT OR DELETE OR UPDATE OF "
               f"tenant_id, {columns} ON meta_tokens "
               "FOR EACH ROW EXECUTE FUNCTION crm_meta_notify_status()")


def upgrade():
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discovery_attempted_at', sa.DateTime(timezone=True),
                                      nullable=True))
    _trigger(AFTER)


def downgrade():
    _trigger(BEFORE)
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.drop_column('discovery_attempted_at')
