"""Meta's events to the tenant's endpoint (the CRM): read the lead when the event is one, sign
in the Standard Webhooks format, POST. A sender for crm_meta.notify's outbox (rows `meta.*`):
claimed, retried with backoff for WEBHOOK_FORWARD_RETRY_HOURS, then dead-lettered (kept)."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests

from crm_meta.infra import metrics
from crm_meta.infra.clock import Clock
from crm_meta.infra.crypto import TokenCipher
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.meta import channels
from crm_meta.meta.errors import GraphError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.store import TokenStore
from crm_meta.meta.types import JsonObject
from crm_meta.meta.webhooks import leads
from crm_meta.models import EventEndpoint, MetaConnection, NotificationOutbox
from crm_meta.notify.channels import PerThreadSession
from crm_meta.notify.outbox import RetryPolicy
from crm_meta.notify.signing import signed_headers

log = logging.getLogger(__name__)
CHANNEL = "crm"


def endpoint_context(tenant_id: int) -> str:
    """What an endpoint's secret ciphertext is bound to (crm_meta.infra.crypto)."""
    return f"event-endpoint:{tenant_id}"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def set_endpoint(cipher: TokenCipher, tenant_id: int, url: str, secret: str) -> None:
    """Create or replace a tenant's endpoint (the caller commits)."""
    row = db.session.get(EventEndpoint, tenant_id) or EventEndpoint(tenant_id=tenant_id)
    row.url = url
    row.secret_ciphertext = cipher.encrypt(secret, context=endpoint_context(tenant_id))
    db.session.add(row)


def lead_token(store: TokenStore, connection: MetaConnection, page_id: str | None) -> str:
    """The Page's own token when the channels have it (Meta: a Page or user token reads a lead),
    else the connection's user token."""
    for channel in connection.channels:
        if channel.asset_type == "page" and channel.asset_id == str(page_id) and channel.token_ciphertext:
            return channels.read_page_token(store, channel)
    return store.read(connection)


@dataclass(frozen=True)
class Outgoing:
    """One claimed outbox row, with what sending it needs (read while the claim is fresh)."""

    id: str
    tenant_id: int | None
    event: str
    payload: JsonObject
    url: str | None
    secret: str | None
    token: str | None  # the connection's token, for reading a lead
    leads_access: str | None


@dataclass(frozen=True)
class ForwardSettings:
    """How events are forwarded to the CRM (config.py holds the defaults): the timeout of a POST,
    and the retries, bounded by time rather than by count."""

    timeout: float
    policy: RetryPolicy

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ForwardSettings:
        timeout = float(config["WEBHOOK_FORWARD_TIMEOUT"])
        return cls(timeout=timeout, policy=RetryPolicy(
            max_attempts=1_000_000,  # bounded by time, not by count
            base=timedelta(seconds=float(config["WEBHOOK_FORWARD_RETRY_BASE_SECONDS"])),
            cap=timedelta(seconds=float(config["WEBHOOK_FORWARD_RETRY_MAX_SECONDS"])),
            lease=timedelta(seconds=max(30.0, 3 * timeout)),
            keep=timedelta(days=float(config["NOTIFY_OUTBOX_KEEP_DAYS"])),
            give_up_after=timedelta(hours=float(config["WEBHOOK_FORWARD_RETRY_HOURS"])),
            audit=False))


class EventSender:
    """The outbox sender of Meta's events; the outbox calls `load`, `channels_for`, `deliver`."""

    events = True

    def __init__(self, *, cipher: TokenCipher, store: TokenStore, graph: GraphClient, clock: Clock,
                 settings: ForwardSettings) -> None:
        self.cipher, self.store, self.graph, self.clock = cipher, store, graph, clock
        self.timeout = settings.timeout
        self.policy = settings.policy
        self._sessions = PerThreadSession()

    def load(self, row: NotificationOutbox) -> Outgoing:
        tenant_id = row.tenant_id  # set on every meta.* row (inbox.outbox_row); else no endpoint
        endpoint = db.session.get(EventEndpoint, tenant_id) if tenant_id is not None else None
        url: str | None = None
        secret: str | None = None
        token: str | None = None
        access: str | None = None
        if endpoint is not None:
            url = endpoint.url
            secret = self.cipher.decrypt(endpoint.secret_ciphertext,
                                         context=endpoint_context(endpoint.tenant_id))
        data = row.payload.get("data") or {}
        if tenant_id is not None and row.event == "meta.lead" and "lead" not in data:
            connection = self.store.for_tenant(tenant_id)
            if connection is not None:
                token = lead_token(self.store, connection, data.get("page_id"))
                access = connection.leads_access
        return Outgoing(row.id, tenant_id, row.event, dict(row.payload or {}), url, secret, token, access)

    def channels_for(self, item: Outgoing) -> list[str]:
        return [CHANNEL]

    def deliver(self, item: Outgoing, channels: list[str]) -> dict[str, str]:
        outcome = self._send(item) if channels else "delivered"
        if outcome != "delivered":
            metrics.WEBHOOK_FORWARD_FAILURES.labels(reason=outcome.split(":")[0]).inc()
        return {CHANNEL: outcome} if channels else {}

    def _send(self, item: Outgoing) -> str:
        if not item.url or not item.secret:
            return "no_endpoint"
        data = dict(item.payload.get("data") or {})
        if item.event == "meta.lead" and "lead" not in data:
            lead = self._read_lead(item, data)
            if isinstance(lead, str):
                return lead
            data["lead"] = lead
        body = json.dumps({"type": item.payload.get("type"), "timestamp": iso(self.clock.now()),
                           "data": {"tenant_id": item.tenant_id, **data}},
                          separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **signed_headers(item.secret, item.id, body)}
        try:
            response = self._sessions.get().post(item.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return f"unreachable:{type(exc).__name__}"
        if response.status_code < 300:
            metrics.WEBHOOK_FORWARDED.labels(type=item.payload.get("type") or "").inc()
            return "delivered"
        return f"refused:{response.status_code}"

    def _read_lead(self, item: Outgoing, data: JsonObject) -> JsonObject | str:
        if not item.token or item.tenant_id is None:
            return "not_connected"
        now = self.clock.now()
        try:
            lead = leads.read_lead(self.graph, item.token, data.get("leadgen_id", ""))
        except leads.LeadAccessRefused as exc:
            leads.record_access(item.tenant_id, exc.state, str(exc), now)
            return f"lead_access:{exc.state}"
        except GraphError as exc:
            return f"lead_read:{exc.kind}"
        if item.leads_access != "ok":
            leads.record_access(item.tenant_id, "ok", None, now)
        return lead


def dead_letter_count() -> int:
    """Events given up (kept for `flask webhooks replay`)."""
    Row = NotificationOutbox
    return db.session.scalar(db.select(db.func.count()).select_from(Row).where(
        Row.event.startswith("meta."), Row.delivered_at.is_(None), Row.next_attempt_at.is_(None))) or 0

