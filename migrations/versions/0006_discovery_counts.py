"""status reads: the discovery's sizes beside it, and triggers that NOTIFY status changes

token-status reads the sizes of the discovery, never the discovery; on PostgreSQL, triggers
NOTIFY a tenant's id on channel crm_meta_status whenever its status read may have changed,
so each process's status cache drops it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00.000000

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


CHANNEL = "crm_meta_status"
# The columns of a status read (crm_meta.meta.status.STATUS_FIELDS when this was written).
STATUS_COLUMNS = ("status, expires_at, data_access_expires_at, throttled_until, last_checked_at, "
                  "scopes, declined_scopes, login_config_id, meta_user_name, selected_business_id, "
                  "selected_ad_account_id, selected_ad_account_name, business_count, "
                  "ad_account_count")
FUNCTION = f"""
CREATE OR REPLACE FUNCTION crm_meta_notify_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('{CHANNEL}', '*');
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('{CHANNEL}', OLD.id::text);
    ELSE
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('{CHANNEL}', OLD.tenant_id::text);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('{CHANNEL}', NEW.tenant_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGERS = (
    "CREATE TRIGGER crm_meta_status_tokens AFTER INSERT OR DELETE OR UPDATE OF "
    f"tenant_id, {STATUS_COLUMNS} ON meta_tokens "
    "FOR EACH ROW EXECUTE FUNCTION crm_meta_notify_status()",
    "CREATE TRIGGER crm_meta_status_tokens_truncate AFTER TRUNCATE ON meta_tokens "
    "FOR EACH STATEMENT EXECUTE FUNCTION crm_meta_notify_status()",
    "CREATE TRIGGER crm_meta_status_tenants AFTER DELETE OR UPDATE OF id, slug ON tenants "
    "FOR EACH ROW EXECUTE FUNCTION crm_meta_notify_status()",
)


def _counts(businesses, personal) -> tuple[int, int]:
    """Businesses, and distinct ad accounts across them and the personal ones (the model's rule)."""
    businesses = json.loads(businesses) if isinstance(businesses, str) else businesses or []
    personal = json.loads(personal) if isinstance(personal, str) else personal or []
    ids = {account["id"] for business in businesses for account in business.get("ad_accounts", [])}
    ids |= {account["id"] for account in personal}
    return len(businesses), len(ids)


def upgrade():
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_count', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('ad_account_count', sa.Integer(), nullable=False,
                                      server_default='0'))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT id, business_managers, personal_ad_accounts FROM meta_tokens")).all()
    for row in rows:
        businesses, accounts = _counts(row.business_managers, row.personal_ad_accounts)
        connection.execute(sa.text("UPDATE meta_tokens SET business_count = :b, "
                                   "ad_account_count = :a WHERE id = :id"),
                           {"b": businesses, "a": accounts, "id": row.id})
    if connection.dialect.name == "postgresql":
        for statement in (FUNCTION, *TRIGGERS):
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS crm_meta_status_tenants ON tenants")
        op.execute("DROP TRIGGER IF EXISTS crm_meta_status_tokens_truncate ON meta_tokens")
        op.execute("DROP TRIGGER IF EXISTS crm_meta_status_tokens ON meta_tokens")
        op.execute("DROP FUNCTION IF EXISTS crm_meta_notify_status()")
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.drop_column('ad_account_count')
        batch_op.drop_column('business_count')
