"""What /metrics reads at each scrape, and who may read it (no Flask globals here)."""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime

from sqlalchemy import case, func
from sqlalchemy.orm import load_only

from crm_meta.http.errors import Forbidden, NotAuthenticated
from crm_meta.infra.database import db
from crm_meta.infra.metrics import ConnectionState, State
from crm_meta.meta import app_health
from crm_meta.meta.keepalive.probing import EXTEND_WITHIN, EXTENDABLE_TYPES
from crm_meta.meta.status import effective_status
from crm_meta.meta.versions import RETIRED, SUNSETS
from crm_meta.meta.webhooks import watch
from crm_meta.models import MetaConnection, NotificationOutbox, Tenant, WebhookInbox, WebhookParked

# Headers a proxy adds: a request carrying one came through a proxy, whatever the socket says.
FORWARDED_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host")


def check_access(*, token: str, socket_addr: str | None, authorization: str | None,
                 forwarded: bool = False, loopback_allowed: bool = True) -> None:
    """METRICS_TOKEN set: `Authorization: Bearer <it>` from anywhere. Unset: the socket's own
    peer must be loopback and nothing forwarded (a same-host proxy's requests come from
    127.0.0.1 too), and only where allowed (production: METRICS_ALLOW_LOOPBACK=1)."""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise NotAuthenticated("Send the metrics token as 'Authorization: Bearer <token>'",
                                   code="metrics_token_required")
        return
    if not loopback_allowed:
        raise NotAuthenticated("Metrics need METRICS_TOKEN in production "
                               "(or METRICS_ALLOW_LOOPBACK=1 for a same-host scraper)",
                               code="metrics_token_required")
    if forwarded or not _loopback(socket_addr):
        raise Forbidden("Metrics are served to this host only; set METRICS_TOKEN to scrape from elsewhere",
                        code="metrics_loopback_only")


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def extendable(row: MetaConnection) -> bool:
    """Whether the keep-alive may still extend this token: an expiring user or system-user token
    it has not tried to extend since it entered the extension window (a try that worked moves
    expires_at out)."""
    if row.token_type not in EXTENDABLE_TYPES or row.expires_at is None:
        return False
    tried = row.extension_attempted_at
    return tried is None or row.expires_at - tried > EXTEND_WITHIN


def days_to_sunset(version: str, today) -> int | None:
    """Days until Meta retires `version` (0 once retired); None when no sunset is announced."""
    if version in RETIRED:
        return 0
    sunset = SUNSETS.get(version)
    return None if sunset is None else max(0, (sunset - today).days)


def read_state(*, now: datetime, required: list[str], version: str, credential: str) -> State:
    """One query of status columns (the discovered assets stay in the database) and one count."""
    columns = load_only(
        MetaConnection.status, MetaConnection.expires_at, MetaConnection.data_access_expires_at,
        MetaConnection.throttled_until, MetaConnection.scopes, MetaConnection.declined_scopes,
        MetaConnection.login_config_id, MetaConnection.token_type, MetaConnection.extension_attempted_at,
        raiseload=True)
    rows = db.session.execute(db.select(Tenant.slug, MetaConnection).join(
        MetaConnection, MetaConnection.tenant_id == Tenant.id).options(columns)).all()
    connections = [ConnectionState(slug, effective_status(row, now, required), row.expires_at,
                                   row.data_access_expires_at, extendable(row)) for slug, row in rows]
    state_of = case((NotificationOutbox.next_attempt_at.is_(None), "given_up"), else_="pending")
    is_event = NotificationOutbox.event.startswith("meta.")
    outbox = dict(db.session.execute(
        db.select(state_of, func.count()).where(NotificationOutbox.delivered_at.is_(None), ~is_event)
        .group_by(state_of)).all())
    webhooks = read_webhooks(now, state_of, is_event)
    misconfigured = app_health.is_misconfigured(credential)
    unsubscribed = watch.is_lost()
    db.session.rollback()  # nothing to keep: end the read transaction
    return State(now=now, connections=connections, outbox=outbox, graph_version=version,
                 days_to_sunset=days_to_sunset(version, now.date()), app_misconfigured=misconfigured,
                 webhooks=webhooks, webhook_subscription_lost=unsubscribed)


def read_webhooks(now: datetime, state_of, is_event) -> dict[str, float]:
    """The inbox's backlog and age, parked entries, events pending and given up."""
    pending, oldest = db.session.execute(db.select(func.count(), func.min(WebhookInbox.received_at))
                                         .where(WebhookInbox.processed_at.is_(None))).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite forgets the zone in aggregates
        oldest = oldest.replace(tzinfo=now.tzinfo)
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
    parked = db.session.scalar(db.select(func.count()).select_from(WebhookParked)
                               .where(WebhookParked.rerouted_at.is_(None)))
    events = dict(db.session.execute(
        db.select(state_of, func.count()).where(NotificationOutbox.delivered_at.is_(None), is_event)
        .group_by(state_of)).all())
    return {"inbox_pending": pending or 0,
            "inbox_oldest_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
            "parked": parked or 0, "events_pending": events.get("pending", 0),
            "dead_letters": events.get("given_up", 0)}
