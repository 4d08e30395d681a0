"""From an authorization code to the tenant's one MetaConnection, whichever front end got the
code: the wizard's dialog (its redirect URI) or the JavaScript SDK of CRM Ventas' panel (an
empty redirect URI, as Meta requires for SDK codes). A second connect replaces the first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from crm_meta.infra.database import db
from crm_meta.infra.i18n import N_
from crm_meta.meta import app_health, assets, channels, tokens
from crm_meta.meta.errors import (
    AppMisconfiguredError,
    BadRequestError,
    DomainError,
    GraphError,
    InvalidCode,
    MetaRefused,
)
from crm_meta.meta.graph import GraphClient
from crm_meta.models import MetaConnection, audit
from crm_meta.models.statuses import Status

SDK_REDIRECT_URI = ""  # a code from FB.login is exchanged with an empty redirect_uri
# Issue 23: at most 5 sequential Graph round trips on the connect's critical path. Code exchange,
# debug_token and /me take 3; the discovery's batches get the other 2 (100 pages of each edge:
# ~9,900 Pages). What is left is read after the answer by the discovery job (crm_meta.jobs).
CONNECT_BATCH_ROUNDS = 2


@dataclass(frozen=True)
class CodeGrant:
    """One code to exchange, and who and what it is for."""

    tenant_id: int
    code: str
    redirect_uri: str
    actor: str
    ip: str | None = None
    via: str = "dialog"  # dialog (the wizard, the API) or sdk (CRM Ventas' panel)


@dataclass(frozen=True)
class Settings:
    """The app's settings a connect needs."""

    required: list[str]
    config_id: str
    outbox: bool = False


def connect(parts: channels.Parts, grant: CodeGrant, settings: Settings) -> MetaConnection:
    """Exchange, inspect, discover (channels included), then one transaction stores it all."""
    graph = parts.graph
    try:
        issued = tokens.ensure_long_lived(graph, _exchange(graph, grant))
        info = tokens.inspect(graph, issued.access_token)
        app_health.report_healthy(now=parts.now, credential=graph.credential, app_id=graph.app_id,
                                  actor=grant.actor)
        if not info.is_valid:
            raise MetaRefused(N_("Meta says the new token is not valid"))
        discovery = assets.discover(graph, issued.access_token, set(info.scopes),
                                    rounds=CONNECT_BATCH_ROUNDS)
    except (GraphError, DomainError) as exc:
        audit.record_now("meta.connect", actor=audit.Actor(grant.actor, grant.ip), tenant_id=grant.tenant_id,
                         outcome="failure",
                         details={"error": getattr(exc, "code", None), "kind": getattr(exc, "kind", None),
                                  "via": grant.via})
        if isinstance(exc, AppMisconfiguredError):
            app_health.report_misconfigured(exc, now=parts.now, app=graph, outbox=settings.outbox,
                                            actor=grant.actor)
        raise
    row = _save(parts, grant, settings, (issued.access_token, info, discovery))
    audit.record("meta.connect", actor=audit.Actor(grant.actor, grant.ip), tenant_id=grant.tenant_id,
                 details={"meta_user_id": discovery.user_id, "status": row.status, "via": grant.via,
                          "businesses": len(discovery.businesses), "pages": len(discovery.pages),
                          "discovery_complete": discovery.complete})
    db.session.commit()
    channels.repair(parts, row)  # after the commit: no transaction waits on these calls
    return row


def _exchange(graph: GraphClient, grant: CodeGrant) -> tokens.IssuedToken:
    try:
        return tokens.exchange_code(graph, code=grant.code, redirect_uri=grant.redirect_uri)
    except BadRequestError as exc:
        # The panel's code is the caller's input: Meta refusing it is a 400, not Meta failing.
        # (The dialog callback keeps the contract's 502 meta_error.)
        if grant.via == "sdk":
            raise InvalidCode() from exc
        raise


def _save(parts: channels.Parts, grant: CodeGrant, settings: Settings,
          facts: tuple[str, tokens.TokenInfo, assets.Discovery]) -> MetaConnection:
    """Upsert the tenant's one row (a second connect replaces the first, audited); keep its
    chosen ad account and channels when they are still visible."""
    token, info, discovery = facts
    store, now = parts.store, parts.now
    for attempt in range(2):
        row = store.for_tenant(grant.tenant_id, lock=True)
        if row is None:
            row = MetaConnection(tenant_id=grant.tenant_id, warnings_sent={})
            db.session.add(row)
        elif row.token_ciphertext:
            audit.record("meta.connection_replaced", actor=audit.Actor(grant.actor, grant.ip),
                         tenant_id=grant.tenant_id,
                         details={"via": grant.via, "previous_connected_by": row.connected_by,
                                  "previous_meta_user_id": row.meta_user_id,
                                  "same_meta_user": row.meta_user_id == discovery.user_id})
        store.replace(row, token)
        _apply(row, info, discovery, now, settings)
        row.connected_by = grant.actor
        channels.sync(store, row, discovery)
        try:
            db.session.flush()
            return row
        except IntegrityError:  # another callback for this tenant inserted first: update it
            db.session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def apply_token_info(row: MetaConnection, info: tokens.TokenInfo, now: datetime) -> None:
    """Record what debug_token said about the stored token."""
    row.token_type = info.token_type
    row.expires_at = info.expires_at
    row.data_access_expires_at = info.data_access_expires_at
    row.issued_at = info.issued_at
    if info.is_valid:
        row.scopes = sorted(set(info.scopes))
        row.granular_scopes = list(info.granular_scopes)
    row.last_checked_at = now


def apply_discovery(row: MetaConnection, discovery: assets.Discovery, now: datetime) -> None:
    """Store what the discovery found; a partial one marks the row for the discovery job and
    keeps the chosen ad account (it may be among what is still unread)."""
    row.business_managers = discovery.businesses
    row.personal_ad_accounts = discovery.personal_ad_accounts
    row.pages = discovery.pages
    if not discovery.complete:
        row.discovery_pending_since = row.discovery_pending_since or now
        return
    row.discovery_pending_since = row.discovery_attempted_at = None
    visible = {a["id"] for a in row.all_ad_accounts()}
    if row.selected_ad_account_id and row.selected_ad_account_id not in visible:
        row.selected_ad_account_id = row.selected_ad_account_name = None
        row.selected_business_id = None


def _apply(row: MetaConnection, info: tokens.TokenInfo, discovery: assets.Discovery, now: datetime,
           settings: Settings) -> None:
    apply_token_info(row, info, now)
    scopes = set(info.scopes)
    row.declined_scopes = [] if settings.config_id else [s for s in settings.required if s not in scopes]
    row.login_config_id = settings.config_id or None
    row.meta_user_id = discovery.user_id
    row.meta_user_name = discovery.user_name
    # A new grant: what an earlier connect left unread, and the job's tries at it, are moot.
    row.discovery_pending_since = row.discovery_attempted_at = None
    apply_discovery(row, discovery, now)
    row.status = Status.CONNECTED
    row.connected_at = now
    row.consecutive_failures = 0
    row.throttled_until = None
    row.last_error = row.last_error_code = None
    row.warnings_sent = {}
