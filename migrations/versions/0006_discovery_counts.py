"""discovery counts: token-status reads the sizes of the discovery, never the discovery

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


def downgrade():
    with op.batch_alter_table('meta_tokens', schema=None) as batch_op:
        batch_op.drop_column('ad_account_count')
        batch_op.drop_column('business_count')
