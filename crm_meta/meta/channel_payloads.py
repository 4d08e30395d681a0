"""What CRM Ventas' panel reads about a connection's channels (`/admin/meta/status`, the
connect's answer), from storage: never a token."""

from __future__ import annotations

from datetime import datetime

from crm_meta.meta.status import effective_status
from crm_meta.meta.types import JsonObject
from crm_meta.meta.webhooks import leads
from crm_meta.models import MetaChannel, MetaConnection
from crm_meta.models.statuses import FAILING_STATUSES

CHANNELS = ("facebook", "instagram", "whatsapp")
EMPTY_CHANNELS = dict.fromkeys(CHANNELS, False)


def asset(channel: MetaChannel) -> JsonObject:
    details = dict(channel.details or {})
    if channel.asset_type in ("page", "waba"):
        details.update(subscribed=channel.subscribed, subscribed_fields=list(channel.subscribed_fields or []),
                       left_out_fields=list(channel.left_out_fields or []), trouble=channel.trouble)
    return {"id": channel.id, "platform": channel.platform, "asset_type": channel.asset_type,
            "asset_id": channel.asset_id, "asset_name": channel.asset_name,
            "parent_asset_id": channel.parent_asset_id, "metadata": details}


def discovery_running(row: MetaConnection) -> bool:
    """True while the discovery job still reads assets a connect's round budget left unread:
    `assets` (and `pages`, `wabas`) are then a part of what the connection sees."""
    return row.discovery_pending_since is not None


def status(row: MetaConnection | None, now: datetime, required: list[str]) -> JsonObject:
    """CRM Ventas' /admin/meta/status, from storage (no Meta call): `channels` and `bindings`
    always present, `token_expires_at` epoch seconds (0: never expires, or not connected);
    `leads_access` as token-status says it (null when not connected)."""
    state = effective_status(row, now, required)
    if row is None:
        return {"connected": False, "status": state, "token_valid": False, "token_expires_at": 0,
                "token_scopes": [], "channels": dict(EMPTY_CHANNELS), "assets": [], "bindings": [],
                "leads_access": None,
                "discovery_running": False}
    active = {c.platform for c in row.channels if c.active}
    return {
        "connected": True,
        "status": state,
        "token_valid": state not in FAILING_STATUSES,
        "token_expires_at": int(row.expires_at.timestamp()) if row.expires_at else 0,
        "token_scopes": sorted(row.scopes or []),
        "channels": {name: name in active for name in CHANNELS},
        "assets": [asset(c) for c in row.channels],
        "bindings": [{"id": c.id, "channel": c.platform, "asset_id": c.asset_id,
                      "asset_name": c.asset_name, "active": bool(c.active)}
                     for c in row.channels if c.bound_at is not None],
        "leads_access": leads.access_summary(row),
        "discovery_running": discovery_running(row),
    }


def connected_summary(row: MetaConnection, now: datetime, required: list[str]) -> JsonObject:
    """The connect's answer (CRM Ventas' shape): what was found, never a token."""
    by_type: dict[str, list[MetaChannel]] = {}
    for c in row.channels:
        by_type.setdefault(c.asset_type, []).append(c)
    instagram = {c.parent_asset_id: c.asset_id for c in by_type.get("instagram_account", [])}
    pages = [{"id": c.asset_id, "name": c.asset_name, "category": (c.details or {}).get("category", ""),
              "platform": "facebook", "asset_type": "page",
              **({"instagram_account": {"id": instagram[c.asset_id]}} if c.asset_id in instagram else {})}
             for c in by_type.get("page", [])]
    wabas = [{"id": c.asset_id, "name": c.asset_name, "platform": "whatsapp", "asset_type": "waba",
              "phone_numbers": [{"id": p.asset_id, "display_phone_number": p.asset_name,
                                 "verified_name": (p.details or {}).get("verified_name", ""),
                                 "quality_rating": (p.details or {}).get("quality_rating", "")}
                                for p in by_type.get("phone_number", []) if p.parent_asset_id == c.asset_id]}
             for c in by_type.get("waba", [])]
    return {"connected": True, "status": effective_status(row, now, required),
            "token_expires_at": int(row.expires_at.timestamp()) if row.expires_at else 0,
            "pages": pages, "wabas": wabas, "discovery_running": discovery_running(row),
            "message": "Meta account connected successfully. Select channels to activate."}
