"""tenant slugs are never digits only: a number always means a tenant id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHECK = "length(trim(slug, '0123456789')) > 0"


def numeric_slugs(connection) -> list[tuple[int, str]]:
    """Existing tenants whose slug would read as another tenant's id."""
    rows = connection.execute(sa.text("SELECT id, slug FROM tenants ORDER BY id")).all()
    return [(row.id, row.slug) for row in rows if row.slug.isdigit()]


def upgrade():
    found = numeric_slugs(op.get_bind())
    if found:
        listed = ", ".join(f"id {tid} slug {slug!r}" for tid, slug in found)
        raise RuntimeError(
            f"tenant slugs of digits only are read as tenant ids ({listed}); give each a slug "
            "with a letter (e.g. UPDATE tenants SET slug = 't-<slug>' WHERE id = <id>), then "
            "run `flask db upgrade` again")
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.create_check_constraint('ck_tenants_slug_not_numeric', CHECK)


def downgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_constraint('ck_tenants_slug_not_numeric', type_='check')
