"""A tenant's connection as the CRM's other services see it: usable or not, and its credentials."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.meta import channels
from crm_meta.meta.errors import ConnectionUnusable
from crm_meta.meta.status import effective_status
from crm_meta.models import MetaConnection, audit
from crm_meta.models.statuses import FAILING_STATUSES

REASONS = {
    "not_connected": "This tenant has no Meta connection",
    "needs_reauth": "The tenant's Meta connection needs to be reconnected",
    "expired": "The tenant's Meta token has expired; the tenant must reconnect",
    "revoked": "The tenant revoked the Meta connection; the tenant must reconnect",
}
CRM_VENTAS = "crm-ventas"  # the names CRM Ventas' services read from their credentials table


def usable_status(row: MetaConnection | None, now: datetime, required: list[str]) -> str:
    """The connection's status when a service may use it; ConnectionUnusable otherwise."""
    status = effective_status(row, now, required)
    if row is None or status in FAILING_STATUSES:
        reason = "not_connected" if row is None else status
        raise ConnectionUnusable(reason, REASONS[reason])
    return status


def crm_ventas(token: str, row: MetaConnection) -> dict:
    """The names and shapes CRM Ventas keeps in its credentials table: the expiry as naive UTC
    ISO (it does `datetime.fromisoformat(v) - datetime.now()`), the ad account as bare digits
    (its `connect_ad_account` strips `act_`; its client adds it back)."""
    expires = row.expires_at
    account = row.selected_ad_account_id
    return {"META_USER_LONG_TOKEN": token,
            "META_AD_ACCOUNT_ID": account.removeprefix("act_") if account else None,
            "META_TOKEN_EXPIRES_AT": (expires.astimezone(UTC).replace(tzinfo=None, microsecond=0)
                                      .isoformat() if expires else None)}


def read(*, store, graph, tenant_id: int, row: MetaConnection | None, service: str, now: datetime,
         required: list[str], fmt: str | None = None, ip: str | None = None) -> dict:
    """The tenant's token with its proof and facts; every read is audited, never the token."""
    try:
        status = usable_status(row, now, required)
        token = store.read(row)
    except (ConnectionUnusable, CryptoError) as exc:
        reason = getattr(exc, "reason", "token_unreadable")
        audit.record("meta.credentials.read", actor=f"service:{service}", tenant_id=tenant_id,
                     outcome="refused", ip=ip, details={"service": service, "reason": reason},
                     commit=True)
        raise
    audit.record("meta.credentials.read", actor=f"service:{service}", tenant_id=tenant_id, ip=ip,
                 details={"service": service, "status": status, "format": fmt or "default"})
    db.session.commit()
    pages = channels.page_tokens(store, row)
    if fmt == CRM_VENTAS:  # CRM Ventas keeps each Page's token as META_PAGE_TOKEN_<page_id>
        return {**crm_ventas(token, row), **{f"META_PAGE_TOKEN_{p}": t for p, t in pages.items()}}
    return {
        "page_tokens": [{"page_id": p, "access_token": t, "appsecret_proof": graph.proof(t)}
                        for p, t in pages.items()],
        "access_token": token,
        "appsecret_proof": graph.proof(token),
        "token_type": row.token_type,
        "expires_at": iso(row.expires_at),
        "data_access_expires_at": iso(row.data_access_expires_at),
        "scopes": list(row.scopes or []),
        "ad_account_id": row.selected_ad_account_id,
        "business_id": row.selected_business_id,
        "status": status,
    }
