"""What the API and the pages say about a connection, computed from storage (no Meta call)."""

from __future__ import annotations

from datetime import datetime

from crm_meta.infra.timestamps import iso
from crm_meta.meta.connections import Disconnected, Selection, TokenReport
from crm_meta.meta.status import (
    ConnectionStatus,
    days_left,
    effective_status,
    missing_scopes,
)
from crm_meta.meta.webhooks import leads
from crm_meta.models import MetaConnection
from crm_meta.models.statuses import FAILING_STATUSES, NEEDS_RECONNECT


def status_payload(row: MetaConnection | ConnectionStatus | None, now: datetime, required: list[str],
                   connect_url: str, rerequest_url: str | None = None) -> dict:
    """token-status: everything from storage (the status columns are enough), no Meta call."""
    status = effective_status(row, now, required)
    missing = missing_scopes(row, required)
    return {
        "connected": row is not None,
        "status": status,
        "expires_at": iso(row.expires_at) if row else None,
        "data_access_expires_at": iso(row.data_access_expires_at) if row else None,
        "days_left": days_left(row, now),
        "needs_reconnect": status in NEEDS_RECONNECT,
        "scopes": list(row.scopes or []) if row else [],
        "missing_scopes": missing,
        "rerequest_url": rerequest_url if missing else None,
        "business_managers": (row.business_count or 0) if row else 0,
        "ad_accounts": (row.ad_account_count or 0) if row else 0,
        "selected_ad_account": _selected(row),
        "meta_user_name": row.meta_user_name if row else None,
        "last_checked_at": iso(row.last_checked_at) if row else None,
        "throttled_until": iso(row.throttled_until) if row else None,
        "connect_url": connect_url,
        "leads_access": leads.access_summary(row) if row else None,
        # True while the discovery job reads what a connect's round budget left unread
        "discovery_running": row is not None and row.discovery_pending_since is not None,
    }


def _selected(row) -> dict | None:
    if row is None or not row.selected_ad_account_id:
        return None
    return {"account_id": row.selected_ad_account_id, "account_name": row.selected_ad_account_name,
            "business_id": row.selected_business_id}


def connected_payload(row: MetaConnection, now: datetime, required: list[str],
                      rerequest_url: str) -> dict:
    """The callback's answer to a JSON client: what was connected, and what is missing."""
    missing = missing_scopes(row, required)
    return {
        "connected": True,
        "status": effective_status(row, now, required),
        "business_managers": portfolios(row),
        "personal_ad_accounts": row.personal_ad_accounts,
        "token_expires_at": iso(row.expires_at),
        "scopes": list(row.scopes or []),
        "missing_scopes": missing,
        "rerequest_url": rerequest_url if missing else None,
    }


def portfolios(row: MetaConnection) -> list[dict]:
    """The tenant's businesses with their ad accounts, as meta-portfolios answers."""
    return [{"id": b["id"], "name": b["name"], "ad_accounts_count": len(b["ad_accounts"]),
             "ad_accounts": b["ad_accounts"]} for b in row.business_managers or []]


def checked_payload(row: MetaConnection, info, now: datetime, required: list[str]) -> dict:
    """test-connection's answer: what Meta said just now (`info`: debug_token's TokenInfo,
    None when it could not even inspect the token), and the status that follows."""
    status = effective_status(row, now, required)
    expires_at = info.expires_at if info else row.expires_at
    return {
        "connected": True,
        "valid": status not in FAILING_STATUSES and bool(info and info.is_valid),
        "status": status,
        "user_id": (info.user_id if info else None) or row.meta_user_id,
        "user_name": row.meta_user_name,
        "token_type": info.token_type if info else row.token_type,
        "expires_at": iso(expires_at),
        "expires_in_seconds": int((expires_at - now).total_seconds()) if expires_at else None,
        "data_access_expires_at": iso(info.data_access_expires_at if info else row.data_access_expires_at),
        "scopes": list(row.scopes or []),
        "missing_scopes": missing_scopes(row, required),
        "checked_at": iso(now),
        "leads_access": leads.access_summary(row),
    }


def token_report(report: TokenReport) -> dict:
    """debug-token's answer."""
    return {
        "token_preview": report.token_preview,
        "is_valid": report.is_valid,
        "type": report.token_type,
        "app_id": report.app_id,
        "user_id": report.user_id,
        "expires_at": iso(report.expires_at),
        "data_access_expires_at": iso(report.data_access_expires_at),
        "issued_at": iso(report.issued_at),
        "scopes": report.scopes,
        "error": ({"code": report.error_code, "subcode": report.error_subcode}
                  if report.error_code else None),
    }


def selection(chosen: Selection) -> dict:
    """The answer to choosing an ad account."""
    return {"connected": True, "account_id": chosen.account_id, "account_name": chosen.account_name,
            "business_id": chosen.business_id}


def disconnected(result: Disconnected, *, unsubscribed: bool = False) -> dict:
    """The answer to a disconnect (`unsubscribed`: with the channels' count, as the panel reads it)."""
    answer = {"disconnected": True, "revoked_at_meta": result.revoked_at_meta}
    if unsubscribed:
        answer["unsubscribed"] = result.unsubscribed
    return answer
