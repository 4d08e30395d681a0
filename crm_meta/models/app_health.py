"""App-wide health of the Meta app itself (not of any tenant's token), shared by every process."""

from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime


class AppHealth(db.Model):
    __tablename__ = "app_health"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # "meta_app"
    misconfigured: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which app credential the verdict is about (a truncated hash, never the secret): after the
    # operator fixes META_APP_ID/META_APP_SECRET, an old verdict no longer applies.
    credential: Mapped[str | None] = mapped_column(String(32))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it was last found broken
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(500))  # Meta's message, never a secret
