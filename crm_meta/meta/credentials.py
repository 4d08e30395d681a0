"""A tenant's connection as the CRM's other services see it: usable or not, and its credentials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
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


@dataclass(frozen=True)
class Caller:
    """A service's call about a tenant: the tenant, its connection row (None: not connected), the
    service's name."""

    tenant_id: int
    row: MetaConnection | None
    service: str


@dataclass(frozen=True)
class PageCredential:
    """A Page's token with its proof."""

    page_id: str
    access_token: str
    appsecret_proof: str


@dataclass(frozen=True)
class Credentials:
    """What a service may use of a tenant's connection: its token with its proof, and facts.
    The front ends shape it (crm_meta.internal.payloads)."""

    access_token: str
    appsecret_proof: str
    token_type: str | None
    expires_at: datetime | None
    data_access_expires_at: datetime | None
    scopes: tuple[str, ...]
    ad_account_id: str | None
    business_id: str | None
    status: str
    pages: tuple[PageCredential, ...] = ()


def usable(row: MetaConnection | None, now: datetime, required: Sequence[str]) -> tuple[MetaConnection, str]:
    """The connection and its status when a service may use it; ConnectionUnusable otherwise."""
    status = effective_status(row, now, required)
    if row is None or status in FAILING_STATUSES:
        reason = "not_connected" if row is None else status
        raise ConnectionUnusable(reason, REASONS[reason])
    return row, status


def usable_status(row: MetaConnection | None, now: datetime, required: Sequence[str]) -> str:
    """The connection's status when a service may use it; ConnectionUnusable otherwise."""
    return usable(row, now, required)[1]


def read(parts: channels.Parts, caller: Caller, required: Sequence[str], *, fmt: str | None = None,
         ip: str | None = None) -> Credentials:
    """The tenant's token with its proof and facts; every read is audited (with the `fmt` the
    service asked for), never the token."""
    store, graph, now = parts.store, parts.graph, parts.now
    tenant_id, service = caller.tenant_id, caller.service
    try:
        row, status = usable(caller.row, now, required)
        token = store.read(row)
    except (ConnectionUnusable, CryptoError) as exc:
        reason = getattr(exc, "reason", "token_unreadable")
        audit.record_now("meta.credentials.read", actor=audit.Actor(f"service:{service}", ip),
                         tenant_id=tenant_id, outcome="refused",
                         details={"service": service, "reason": reason})
        raise
    audit.record("meta.credentials.read", actor=audit.Actor(f"service:{service}", ip), tenant_id=tenant_id,
                 details={"service": service, "status": status, "format": fmt or "default"})
    db.session.commit()
    pages = channels.page_tokens(store, row)
    return Credentials(
        access_token=token, appsecret_proof=graph.proof(token), token_type=row.token_type,
        expires_at=row.expires_at, data_access_expires_at=row.data_access_expires_at,
        scopes=tuple(row.scopes or ()), ad_account_id=row.selected_ad_account_id,
        business_id=row.selected_business_id, status=status,
        pages=tuple(PageCredential(p, t, graph.proof(t)) for p, t in pages.items()))
