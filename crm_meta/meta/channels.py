"""A tenant's messaging channels (Pages, Instagram accounts, WhatsApp accounts and numbers):
kept in step with the discovery, chosen by an admin, subscribed at Meta while chosen, released
before the grant is revoked. CRM Ventas' panel reads them as `assets` and `bindings`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crm_meta.infra.database import db
from crm_meta.meta import subscriptions
from crm_meta.meta.assets import Discovery
from crm_meta.meta.errors import UnknownAsset
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.store import SealedPage, TokenStore
from crm_meta.meta.types import JsonObject
from crm_meta.models import MetaChannel, MetaConnection, audit


@dataclass(frozen=True)
class Parts:
    """What a channel operation needs: the Graph client, the token store and the time."""

    graph: GraphClient
    store: TokenStore
    now: datetime


@dataclass(frozen=True)
class Who:
    actor: str
    ip: str | None = None


def write_page_token(store: TokenStore, channel: MetaChannel, token: str) -> None:
    store.write_page_token(channel, token)  # encrypted, bound to tenant and Page (store.py)


def read_page_token(store: TokenStore, channel: SealedPage) -> str:
    return store.read_page_token(channel)


def _entries(discovery: Discovery) -> list[JsonObject]:
    """Every channel the discovery found, in CRM Ventas' (platform, asset_type) terms."""
    found: list[JsonObject] = []
    instagram = {ig["page_id"]: ig for ig in discovery.instagram}
    for page in discovery.pages:
        ig = instagram.get(page["id"])
        found.append({"platform": "facebook", "asset_type": "page", "asset_id": page["id"],
                      "asset_name": page.get("name") or "", "parent": None,
                      "details": {"category": page.get("category") or "",
                                  "has_instagram": ig is not None,
                                  "instagram_account_id": ig["id"] if ig else None}})
        if ig:
            found.append({"platform": "instagram", "asset_type": "instagram_account",
                          "asset_id": ig["id"], "parent": page["id"],
                          "asset_name": ig.get("username") or ig.get("name") or "",
                          "details": {"username": ig.get("username"), "linked_page_id": page["id"]}})
    for business in discovery.businesses:
        for waba in business.get("whatsapp_business_accounts", []):
            found.append({"platform": "whatsapp", "asset_type": "waba", "asset_id": waba["id"],
                          "asset_name": waba.get("name") or "", "parent": None,
                          "details": {"business_id": business["id"],
                                      "business_name": business.get("name") or "",
                                      "relationship": waba.get("relationship")}})
            for phone in waba.get("phone_numbers", []):
                found.append({"platform": "whatsapp", "asset_type": "phone_number",
                              "asset_id": phone["id"], "parent": waba["id"],
                              "asset_name": phone.get("display_phone_number") or "",
                              "details": {"display_phone_number": phone.get("display_phone_number"),
                                          "verified_name": phone.get("verified_name") or "",
                                          "quality_rating": phone.get("quality_rating") or ""}})
    return found


def sync(store: TokenStore, row: MetaConnection, discovery: Discovery) -> None:
    """Make the stored channels what the discovery found; selections of those still there stay,
    Page tokens are replaced with the new ones (a new user token made them). A partial
    discovery only adds and updates: nothing is removed until a complete one says so."""
    existing = {(c.platform, c.asset_id): c for c in row.channels}
    seen = set()
    for position, entry in enumerate(_entries(discovery)):
        key = (entry["platform"], entry["asset_id"])
        if key in seen:  # a WhatsApp account owned by one business and shared with another
            continue
        seen.add(key)
        channel = existing.get(key)
        if channel is None:
            channel = MetaChannel(tenant_id=row.tenant_id, platform=entry["platform"],
                                  asset_id=entry["asset_id"], active=False, subscribed_fields=[],
                                  left_out_fields=[], trouble_warned=False)
            row.channels.append(channel)
        channel.asset_type = entry["asset_type"]
        channel.asset_name = entry["asset_name"][:200]
        channel.parent_asset_id = entry["parent"]
        channel.details = entry["details"]
        channel.position = position
        token = discovery.page_tokens.get(entry["asset_id"]) if entry["asset_type"] == "page" else None
        if token:
            write_page_token(store, channel, token)
            if channel.trouble == "token_invalid":
                channel.trouble, channel.trouble_warned = None, False
        elif channel.asset_type == "page":
            channel.token_ciphertext = channel.key_id = None
    if not discovery.complete:  # a partial discovery: what it did not reach may still be there
        return
    for key, channel in existing.items():
        if key not in seen:
            row.channels.remove(channel)


def _targets(channels: list[MetaChannel]) -> set[str | None]:
    """Pages and WhatsApp accounts that must be subscribed: chosen ones, and the parents of
    chosen Instagram accounts (their messages come through the Page) and phone numbers."""
    wanted: set[str | None] = set()
    for c in channels:
        if c.active:
            wanted.add(c.parent_asset_id if c.asset_type in ("instagram_account", "phone_number")
                       else c.asset_id)
    return wanted


def reconcile(parts: Parts, row: MetaConnection) -> list[subscriptions.Outcome]:
    """Subscribe what is chosen and not yet subscribed; unsubscribe what is no longer chosen."""
    wanted = _targets(row.channels)
    granted = set(row.scopes or [])
    outcomes = []
    for c in row.channels:
        if c.asset_type not in ("page", "waba"):
            continue
        if c.asset_id in wanted and (not c.subscribed or c.trouble):
            outcome = _subscribe(parts, row, c, granted)
            c.subscribed_fields, c.left_out_fields = outcome.fields, outcome.left_out
            c.trouble = outcome.error if outcome.error == "token_invalid" else None
            c.trouble_warned = False
            outcomes.append(outcome)
        elif c.asset_id not in wanted and c.subscribed:
            token = _token_of(parts, row, c)
            if token:
                subscriptions.unsubscribe(parts.graph, c.asset_id, token)
            c.subscribed_fields, c.left_out_fields, c.trouble = [], [], None
    return outcomes


def _token_of(parts: Parts, row: MetaConnection, channel: MetaChannel) -> str | None:
    if channel.asset_type == "page":
        return read_page_token(parts.store, channel) if channel.token_ciphertext else None
    return parts.store.read(row)


def _subscribe(parts: Parts, row: MetaConnection, channel: MetaChannel,
               granted: set[str]) -> subscriptions.Outcome:
    if channel.asset_type == "waba":  # with the connection's own token
        return subscriptions.subscribe_waba(parts.graph, channel.asset_id, parts.store.read(row), granted)
    token = _token_of(parts, row, channel)
    if not token:
        return subscriptions.Outcome(channel.asset_id, error="token_invalid")
    return subscriptions.subscribe_page(parts.graph, channel.asset_id, token, granted)


def select(parts: Parts, row: MetaConnection, asset_ids: list[str], who: Who) -> JsonObject:
    """The whole chosen set (CRM Ventas sends it all): it replaces the previous one."""
    by_id = {c.asset_id: c for c in row.channels}
    unknown = [a for a in asset_ids if a not in by_id]
    if unknown:
        raise UnknownAsset(f"Unknown asset ids: {', '.join(unknown[:10])}")
    chosen = set(asset_ids)
    for c in row.channels:
        c.active = c.asset_id in chosen
        if c.active and c.bound_at is None:
            c.bound_at = parts.now
    if any(c.active and c.trouble == "token_invalid" for c in row.channels):
        refresh_page_tokens(parts, row)
    outcomes = reconcile(parts, row)
    activated = [{"asset_id": c.asset_id, "asset_name": c.asset_name, "channel": c.platform,
                  "asset_type": c.asset_type} for c in row.channels if c.active]
    audit.record("meta.select_channels", actor=audit.Actor(who.actor, who.ip), tenant_id=row.tenant_id,
                 details={"asset_ids": sorted(chosen), "subscribed": [o.asset_id for o in outcomes
                                                                      if o.fields]})
    db.session.commit()
    return {"activated": activated, "subscriptions": [o.as_dict() for o in outcomes],
            "message": _message(len(activated), outcomes, by_id)}


def _message(count: int, outcomes: list[subscriptions.Outcome], by_id: dict[str, MetaChannel]) -> str:
    text = f"{count} channel(s) activated."
    for o in outcomes:
        name = by_id[o.asset_id].asset_name or o.asset_id
        if o.error:
            text += f" {name}: webhook subscription failed ({o.error})."
        elif o.left_out:
            text += (f" {name}: webhooks for {', '.join(o.left_out)} were left out because the"
                     " Meta grant lacks their permission.")
    return text


def release(parts: Parts, row: MetaConnection) -> int:
    """Unsubscribe everything at Meta; before a revoke, which kills the Page tokens it needs."""
    released = 0
    for c in row.channels:
        if c.subscribed:
            token = _token_of(parts, row, c)
            released += bool(token and subscriptions.unsubscribe(parts.graph, c.asset_id, token))
            c.subscribed_fields = []
    return released


def page_tokens(store: TokenStore, row: MetaConnection) -> dict[str, str]:
    """Every Page token of the connection, by Page id (the services' credentials)."""
    return {c.asset_id: read_page_token(store, c) for c in row.channels
            if c.asset_type == "page" and c.token_ciphertext}


def refresh_page_tokens(parts: Parts, row: MetaConnection) -> None:
    """New Page tokens from the connection's token (`GET me/accounts`), for Pages whose token
    Meta stopped accepting; the Pages stay what the discovery found."""
    pages = {c.asset_id: c for c in row.channels if c.asset_type == "page"}
    page: tuple[str, JsonObject] | None = ("me/accounts", {"fields": "id,access_token", "limit": 100})
    token = parts.store.read(row)
    while page is not None:
        path, params = page
        body = parts.graph.get(path, token=token, **params)
        for item in body.get("data") or []:
            channel = pages.get(str(item.get("id")))
            if channel is not None and item.get("access_token"):
                write_page_token(parts.store, channel, item["access_token"])
                if channel.trouble == "token_invalid":
                    channel.trouble, channel.trouble_warned = None, False
                    channel.subscribed_fields = []  # subscribed again with the new token
        page = parts.graph.next_page_params(body)


def repair(parts: Parts, row: MetaConnection) -> None:
    """After a reconnect: chosen channels that lost their subscription get it back."""
    if any(c.active for c in row.channels):
        reconcile(parts, row)
        db.session.commit()


def page_token_for(store: TokenStore, row: MetaConnection, asset_id: str) -> str | None:
    """The Page's own token when `asset_id` is one of the connection's Pages, else None."""
    channel = next((c for c in row.channels if c.asset_type == "page" and c.asset_id == asset_id
                    and c.token_ciphertext), None)
    return read_page_token(store, channel) if channel is not None else None
