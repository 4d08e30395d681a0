"""Meta's webhooks: the durable inbox of signed deliveries, the entries no tenant owns (parked),
and each tenant's endpoint for the events forwarded to the CRM."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime, utcnow

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class WebhookInbox(db.Model):
    """One signed delivery from Meta, exactly the bytes received, stored before the 200."""

    __tablename__ = "webhook_inbox"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)  # domain clock
    route: Mapped[str] = mapped_column(String(64))  # the path Meta called (CRM Ventas' paths too)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # raw: never re-serialised
    # None until routed; set in the same transaction as the events it produced.
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    malformed: Mapped[bool] = mapped_column(Boolean, default=False)  # not JSON / not Meta's shape
    entries: Mapped[int] = mapped_column(Integer, default=0)  # changes/messages found in it
    outcome: Mapped[str | None] = mapped_column(String(200))  # e.g. "3 queued, 1 parked"


class WebhookParked(db.Model):
    """An entry whose asset no tenant owns: kept, counted, listed, re-routed on request."""

    __tablename__ = "webhook_parked"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the event's de-duplication key
    object: Mapped[str] = mapped_column(String(40))  # page | whatsapp_business_account | instagram
    asset_kind: Mapped[str] = mapped_column(String(40))
    asset_id: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict] = mapped_column(JSON, default=dict)  # what would have been forwarded
    inbox_id: Mapped[int | None] = mapped_column(BIG_ID)
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rerouted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class EventEndpoint(db.Model):
    """Where a tenant's events go (the CRM), and the Standard Webhooks secret, encrypted."""

    __tablename__ = "event_endpoints"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_ciphertext: Mapped[str] = mapped_column(Text)  # crm_meta.infra.crypto, bound to the tenant
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
