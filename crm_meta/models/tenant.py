"""Tenants: the companies using the CRM."""

import re
from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime, utcnow

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# A slug of digits only would read as a tenant id (X-Tenant-ID and `tenant_id` send ids as
# digit strings), so the database refuses one too. trim(x, chars): SQLite and PostgreSQL 14+.
SLUG_NOT_NUMERIC = "length(trim(slug, '0123456789')) > 0"


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot name a tenant, or None."""
    if not SLUG.fullmatch(slug):
        return "must be lowercase letters, digits and dashes, 1-63 characters"
    if slug.isdigit():
        return "must not be digits only (a number means a tenant id)"
    return None


class Tenant(db.Model):
    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint(SLUG_NOT_NUMERIC, name="ck_tenants_slug_not_numeric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"
