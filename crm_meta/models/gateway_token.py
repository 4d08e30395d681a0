"""Gateway tokens: the credential a CRM service uses on the drop-in Graph endpoint (/graph/...).

One per service key and tenant: it opens that tenant only, for that service only. Only its
SHA-256 is stored, with the random nonce it is derived from (HMAC with a server secret), so the
service can be handed the same token again while the table alone cannot produce it.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime, utcnow


class GatewayToken(db.Model):
    __tablename__ = "gateway_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    service_key_id: Mapped[int] = mapped_column(ForeignKey("service_keys.id", ondelete="CASCADE"),
                                                index=True)
    # The token's first characters ("cmg_" + 8): finds the row and names the token in listings.
    prefix: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    # SHA-256 of the whole token, hex; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64))
    # Random; the token is HMAC(server secret, nonce): a rotation draws a new one.
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
