"""The one lookup from a Meta asset to its tenant: `tenant_for(kind, asset_id)`.

Built from the tenants' channels (crm_meta.meta.channels: Pages, Instagram accounts, WhatsApp
Business accounts and phone numbers, as discovered) and, for connections stored before
channels existed, their discovery (Pages, WhatsApp accounts). A process keeps the index for
WEBHOOK_ROUTING_CACHE_SECONDS; a miss reads it again first (at most once a second), so a tenant
that has just connected is found. When two tenants can see the same asset, the one that chose
it as a channel wins, then the one that saw it as a channel, then the most recent connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import load_only

from crm_meta.infra.database import db
from crm_meta.models import MetaChannel, MetaConnection

KINDS = ("page", "instagram", "whatsapp_business_account", "phone_number")
# CRM Ventas' asset types (MetaChannel.asset_type) as the webhook objects name them.
CHANNEL_KINDS = {"page": "page", "instagram_account": "instagram", "waba": "whatsapp_business_account",
                 "phone_number": "phone_number"}
REFRESH_ON_MISS = 1.0  # seconds between two re-reads caused by misses

Asset = tuple[str, str]  # (kind, id)
Rank = tuple[int, float]  # (how the tenant holds it, when): the highest wins


def assets_of(row: MetaConnection) -> list[tuple[str, str]]:
    """(kind, id) of every asset a connection discovered that Meta can send webhooks about."""
    found = []
    for page in row.pages or []:
        found.append(("page", str(page.get("id"))))
        instagram = page.get("instagram_business_account") or page.get("instagram")
        if isinstance(instagram, dict) and instagram.get("id"):
            found.append(("instagram", str(instagram["id"])))
    for business in row.business_managers or []:
        for waba in business.get("whatsapp_business_accounts", []):
            found.append(("whatsapp_business_account", str(waba.get("id"))))
            for phone in waba.get("phone_numbers", []) or []:
                found.append(("phone_number", str(phone.get("id") if isinstance(phone, dict) else phone)))
    return found


def build_index() -> dict[tuple[str, str], int]:
    """(kind, asset id) -> tenant id, from every tenant's channels and discovery (two queries)."""
    ranked: dict[Asset, tuple[Rank, int]] = {}

    def offer(asset: Asset, rank: Rank, tenant_id: int) -> None:
        if asset not in ranked or rank >= ranked[asset][0]:
            ranked[asset] = (rank, tenant_id)

    rows = db.session.scalars(db.select(MetaConnection).options(load_only(
        MetaConnection.tenant_id, MetaConnection.pages, MetaConnection.business_managers,
        MetaConnection.connected_at))).all()
    for row in rows:
        for asset in assets_of(row):
            offer(asset, (0, row.connected_at.timestamp()), row.tenant_id)
    channels = db.session.execute(db.select(MetaChannel.asset_type, MetaChannel.asset_id,
                                            MetaChannel.tenant_id, MetaChannel.active,
                                            MetaChannel.created_at)).all()
    for asset_type, asset_id, tenant_id, active, created in channels:
        kind = CHANNEL_KINDS.get(asset_type)
        if kind:
            offer((kind, str(asset_id)), (2 if active else 1, created.timestamp()), tenant_id)
    return {asset: tenant for asset, (_, tenant) in ranked.items()}


class Router:
    """This process's asset index, behind the one lookup function."""

    def __init__(self, ttl: float = 30.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self._index: dict[tuple[str, str], int] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def _load(self) -> dict[tuple[str, str], int]:
        index = build_index()
        with self._lock:
            self._index, self._read_at = index, self.monotonic()
        return index

    def tenant_for(self, kind: str, asset_id: str) -> int | None:
        """The tenant owning this asset, or None (the entry is parked)."""
        with self._lock:
            index, age = self._index, self.monotonic() - self._read_at
        if index is None or age > self.ttl:
            index, age = self._load(), 0.0
        found = index.get((kind, str(asset_id)))
        if found is None and age > REFRESH_ON_MISS:
            found = self._load().get((kind, str(asset_id)))
        return found

    def route(self, assets: Sequence[Asset]) -> tuple[int | None, Asset]:
        """The first of an event's assets that a tenant owns: (tenant, asset); else (None, first)."""
        for kind, asset_id in assets:
            if asset_id:
                tenant = self.tenant_for(kind, asset_id)
                if tenant is not None:
                    return tenant, (kind, asset_id)
        return None, assets[0]
