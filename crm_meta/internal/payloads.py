"""What the services' API says: the domain's credentials in the default shape, or in the names
and shapes CRM Ventas keeps in its credentials table (`?format=crm-ventas`)."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_meta.infra.timestamps import iso
from crm_meta.meta.credentials import Credentials

CRM_VENTAS = "crm-ventas"  # the names CRM Ventas' services read from their credentials table


def credentials(found: Credentials) -> dict:
    return {
        "page_tokens": [{"page_id": p.page_id, "access_token": p.access_token,
                         "appsecret_proof": p.appsecret_proof} for p in found.pages],
        "access_token": found.access_token,
        "appsecret_proof": found.appsecret_proof,
        "token_type": found.token_type,
        "expires_at": iso(found.expires_at),
        "data_access_expires_at": iso(found.data_access_expires_at),
        "scopes": list(found.scopes),
        "ad_account_id": found.ad_account_id,
        "business_id": found.business_id,
        "status": found.status,
    }


def crm_ventas_credentials(found: Credentials) -> dict:
    """CRM Ventas' names, each Page's token as META_PAGE_TOKEN_<page_id>."""
    return {**crm_ventas(found.access_token, found.expires_at, found.ad_account_id),
            **{f"META_PAGE_TOKEN_{p.page_id}": p.access_token for p in found.pages}}


def crm_ventas(token: str, expires_at: datetime | None, ad_account_id: str | None) -> dict:
    """The names and shapes CRM Ventas keeps in its credentials table: the expiry as naive UTC
    ISO (it does `datetime.fromisoformat(v) - datetime.now()`), the ad account as bare digits
    (its `connect_ad_account` strips `act_`; its client adds it back)."""
    return {"META_USER_LONG_TOKEN": token,
            "META_AD_ACCOUNT_ID": ad_account_id.removeprefix("act_") if ad_account_id else None,
            "META_TOKEN_EXPIRES_AT": (expires_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
                                      .isoformat() if expires_at else None)}
