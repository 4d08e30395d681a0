"""Service keys: how the CRM's other services (marketing, leads, messaging) call /internal/."""

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime, utcnow


class ServiceKey(db.Model):
    __tablename__ = "service_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)  # the service, e.g. "marketing"
    # The key's first characters ("cms_" + 8): finds the row and names the key in listings.
    prefix: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    # SHA-256 of the whole key, hex: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list] = mapped_column(JSON, default=list)  # credentials:read, graph:proxy, audit:read
    # The tenant ids this key may open; None: every tenant (a multi-tenant service).
    tenant_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
