"""A tenant's messaging channels (table meta_channels): the Pages, Instagram accounts, WhatsApp
Business accounts and phone numbers its Meta connection can reach, which ones the CRM uses,
each Page's token (encrypted like the user token) and the webhook subscriptions kept at Meta."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from crm_meta.infra.database import db
from crm_meta.models.meta_connection import MetaConnection
from crm_meta.models.types import UTCDateTime, utcnow

# (platform, asset_type) pairs, exactly as CRM Ventas' panel groups them.
KINDS = (("facebook", "page"), ("instagram", "instagram_account"), ("whatsapp", "waba"),
         ("whatsapp", "phone_number"))


class MetaChannel(db.Model):
    __tablename__ = "meta_channels"
    __table_args__ = (UniqueConstraint("tenant_id", "platform", "asset_id",
                                       name="uq_meta_channels_tenant_asset"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("meta_tokens.id", ondelete="CASCADE"),
                                               index=True)
    platform: Mapped[str] = mapped_column(String(20))  # facebook, instagram, whatsapp
    asset_type: Mapped[str] = mapped_column(String(30))  # page, instagram_account, waba, phone_number
    asset_id: Mapped[str] = mapped_column(String(64))  # Meta's id, always a string
    asset_name: Mapped[str] = mapped_column(String(200), default="")
    parent_asset_id: Mapped[str | None] = mapped_column(String(64))  # page of an IG account, WABA of a phone
    details: Mapped[dict] = mapped_column("metadata", JSON, default=dict)  # never a token
    # A Page's token: ciphertext bound to tenant and page (crm_meta.meta.channels); None otherwise.
    token_ciphertext: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(16))
    # A binding: selected once (bound_at), in use while active.
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The webhook subscription at Meta (Pages and WhatsApp accounts): fields kept, fields the grant
    # does not allow, and the trouble the keep-alive found (subscription_lost, token_invalid).
    subscribed_fields: Mapped[list] = mapped_column(JSON, default=list)
    left_out_fields: Mapped[list] = mapped_column(JSON, default=list)
    trouble: Mapped[str | None] = mapped_column(String(40))
    trouble_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    position: Mapped[int] = mapped_column(Integer, default=0)  # discovery order
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Deleting the connection (disconnect, deauthorize, data deletion) deletes its channels.
    connection = relationship(MetaConnection, backref=backref(
        "channels", cascade="all, delete-orphan", order_by="MetaChannel.position"))

    @property
    def subscribed(self) -> bool:
        return bool(self.subscribed_fields)
