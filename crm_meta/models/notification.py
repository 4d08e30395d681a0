"""The notification outbox: notices committed with the check that decided them, delivered later.

A row is written in the same transaction as the keep-alive check (so a crash can never lose a
recorded warning) and removed from the due set once every configured channel has taken it.
`next_attempt_at` is both the retry schedule and the sender's lease: claiming a row moves it
forward by the lease, so a sender killed mid-delivery strands nothing.
"""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime


class NotificationOutbox(db.Model):
    __tablename__ = "notification_outbox"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the notice id (X-CRM-Meta-Delivery)
    # None for an app-wide notice (the Meta app itself is misconfigured).
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                                  index=True)
    event: Mapped[str] = mapped_column(String(32))  # warning | status_changed
    payload: Mapped[dict] = mapped_column(JSON, default=dict)  # the Notice's other fields, recipients too
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # domain clock, like every time here
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted when a sender claims the row
    # Due when <= now; None once delivered or given up. A claim moves it ahead by the lease.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))  # fencing: who holds the lease
    channels_done: Mapped[list] = mapped_column(JSON, default=list)  # never sent twice on a retry
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_outcome: Mapped[str | None] = mapped_column(String(200))  # e.g. "webhook=failed:503"
