"""Server-side OAuth states: shared by every process through the database."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime


class OAuthState(db.Model):
    __tablename__ = "oauth_states"

    # SHA-256 of the state: a database leak does not hand out live states.
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_ref: Mapped[str] = mapped_column(String(100))  # "user:<id>" or "jwt:<sub>"
    browser_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the binding cookie
    rerequest: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
