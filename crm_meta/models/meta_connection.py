"""One Meta connection per tenant (table meta_tokens): the encrypted token and what it gave
access to."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.attributes import get_history

from crm_meta.infra.database import db
from crm_meta.models.types import UTCDateTime, utcnow


class MetaConnection(db.Model):
    __tablename__ = "meta_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True, index=True
    )
    # Ciphertext from crm_meta.infra.crypto (bound to the tenant, names its key); never the token.
    # The column keeps its first name, access_token: no migration for a rename in Python.
    token_ciphertext: Mapped[str] = mapped_column("access_token", Text)
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    # Bumped whenever a different token is stored (connect, extension), never by re-encryption:
    # part of the notices' de-duplication key, and how a late verdict knows it is stale.
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    token_type: Mapped[str] = mapped_column(String(20), default="USER")  # debug_token `type`
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: never expires
    data_access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[list] = mapped_column(JSON, default=list)  # granted
    declined_scopes: Mapped[list] = mapped_column(JSON, default=list)
    # debug_token's granular_scopes: [{"scope", "target_ids"}], which assets each permission covers.
    granular_scopes: Mapped[list] = mapped_column(JSON, default=list)
    # Discovery: businesses with their ad accounts and WhatsApp accounts, plus personal assets.
    business_managers: Mapped[list] = mapped_column(JSON, default=list)
    personal_ad_accounts: Mapped[list] = mapped_column(JSON, default=list)
    pages: Mapped[list] = mapped_column(JSON, default=list)  # id/name/category only, no page tokens
    # Sizes of the discovery, kept with it (below) so a status read never loads the assets.
    business_count: Mapped[int] = mapped_column(Integer, default=0)
    ad_account_count: Mapped[int] = mapped_column(Integer, default=0)
    # Set when a connect's discovery stopped at its round budget (crm_meta.meta.exchange): the
    # discovery job (crm_meta.jobs) reads the rest, merges it and clears this. None: complete.
    discovery_pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The discovery job's last try at it (its backoff: crm_meta.meta.connections); None: untried.
    discovery_attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    meta_user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    meta_user_name: Mapped[str | None] = mapped_column(String(200))
    login_config_id: Mapped[str | None] = mapped_column(String(64))
    selected_business_id: Mapped[str | None] = mapped_column(String(64))
    selected_ad_account_id: Mapped[str | None] = mapped_column(String(64))
    selected_ad_account_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="connected", index=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))  # Meta's message, never a token
    # Reading leads (Meta's webhooks): None until tried, `ok`, or why Meta refused
    # (`blocked`: the Page's Leads Access Manager; `permission_missing`: leads_retrieval...).
    leads_access: Mapped[str | None] = mapped_column(String(32))
    leads_access_error: Mapped[str | None] = mapped_column(String(500))
    leads_access_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_by: Mapped[str | None] = mapped_column(String(100))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Keep-alive bookkeeping (crm_meta.meta.keepalive.verdicts).
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warnings_sent: Mapped[dict] = mapped_column(JSON, default=dict)
    extension_attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def all_ad_accounts(self) -> list[dict]:
        """Every ad account the connection can see, each once (business ones first)."""
        seen: dict[str, dict] = {}
        for business in self.business_managers or []:
            for account in business.get("ad_accounts", []):
                seen.setdefault(account["id"], account)
        for account in self.personal_ad_accounts or []:
            seen.setdefault(account["id"], account)
        return list(seen.values())


DISCOVERY = ("business_managers", "personal_ad_accounts")
# The columns a status answer reads (crm_meta.meta.status.ConnectionStatus, same order): what
# the status triggers (status_triggers; migrations 0006, 0011, 0012) watch.
STATUS_COLUMNS = ("status", "expires_at", "data_access_expires_at", "throttled_until",
                  "last_checked_at", "scopes", "declined_scopes", "login_config_id",
                  "meta_user_name", "selected_business_id", "selected_ad_account_id",
                  "selected_ad_account_name", "business_count", "ad_account_count",
                  "discovery_pending_since", "leads_access", "leads_access_error",
                  "leads_access_at")


def _count_discovery(row: MetaConnection) -> None:
    row.business_count = len(row.business_managers or [])
    row.ad_account_count = len(row.all_ad_accounts())


@event.listens_for(MetaConnection, "before_insert")
def _count_on_insert(mapper, connection, row: MetaConnection) -> None:
    _count_discovery(row)


@event.listens_for(MetaConnection, "before_update")
def _count_on_update(mapper, connection, row: MetaConnection) -> None:
    """Keep the counts equal to the discovery, whoever writes it."""
    if any(get_history(row, name).has_changes() for name in DISCOVERY):
        _count_discovery(row)
