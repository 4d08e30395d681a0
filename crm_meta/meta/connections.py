"""A tenant's connection: connect from the callback, inspect, select, rediscover, disconnect."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Event

from crm_meta.infra.clock import Clock
from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.meta import assets, channels, exchange, tokens
from crm_meta.meta.errors import GraphError, InvalidCallback, NotConnected, OAuthDenied, UnknownAsset
from crm_meta.meta.exchange import apply_discovery, apply_token_info  # noqa: F401  (re-exported)
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.oauth import Asker, AuthorizationRequest, MetaDialog, consume_state, start_authorization
from crm_meta.meta.store import TokenStore
from crm_meta.meta.types import JsonObject
from crm_meta.models import AuditEvent, MetaConnection, audit
from crm_meta.models.statuses import FAILING_STATUSES

log = logging.getLogger(__name__)
ASSET_ID = re.compile(r"^(act_)?\d{1,30}$")


@dataclass(frozen=True)
class TokenReport:
    """What Meta's debug_token says of the tenant's token (the token itself only masked)."""

    token_preview: str
    is_valid: bool
    token_type: str | None
    app_id: str
    user_id: str | None
    expires_at: datetime | None
    data_access_expires_at: datetime | None
    issued_at: datetime | None
    scopes: list[str]
    error_code: int | None = None
    error_subcode: int | None = None


@dataclass(frozen=True)
class Selection:
    """The ad account the CRM works with, and its business."""

    account_id: str
    account_name: str | None
    business_id: str | None


@dataclass(frozen=True)
class Disconnected:
    """A disconnect's result: whether Meta revoked the grant, how many channels it unsubscribed."""

    revoked_at_meta: bool = False
    unsubscribed: int = 0


@dataclass(frozen=True)
class Callback:
    """What Meta's redirect brought to the callback: its query, the browser's binding secret, who
    the browser says it is ((tenant id, actor); None: no credential), and its address."""

    args: Mapping[str, str]
    browser_secret: str | None
    caller: tuple[int, str] | None
    ip: str | None = None


@dataclass(frozen=True)
class ConnectFlow:
    """The OAuth connect flow, built once by the runtime with its collaborators; both front ends
    drive it (crm_meta.connect) with what their request brought."""

    dialog: MetaDialog  # the app's client for Meta's login dialog (its callback, its scopes)
    graph: GraphClient
    store: TokenStore
    clock: Clock
    settings: exchange.Settings  # what a connect needs: required scopes, login configuration, outbox

    def parts(self) -> channels.Parts:
        """The collaborators of a connection operation, at this moment."""
        return channels.Parts(graph=self.graph, store=self.store, now=self.clock.now())

    def begin(self, asker: Asker, browser_secret: str) -> AuthorizationRequest:
        """Meta's dialog URL for `asker`, its state remembered and bound to the browser."""
        return start_authorization(self.dialog, asker, browser_secret=browser_secret, now=self.clock.now())

    def complete(self, callback: Callback) -> MetaConnection:
        """The callback: state, then the code's exchange into the tenant's one connection."""
        parts, args, ip = self.parts(), callback.args, callback.ip
        consumed = consume_state(state=args.get("state"), browser_secret=callback.browser_secret,
                                 now=parts.now, caller=callback.caller)
        if args.get("error"):
            audit.record_now("meta.connect", actor=audit.Actor(consumed.user_ref, ip),
                             tenant_id=consumed.tenant_id, outcome="denied",
                             details={"reason": args.get("error_reason")})
            raise OAuthDenied()
        code = args.get("code")
        if not code or len(code) > 2048:
            raise InvalidCallback()
        grant = exchange.CodeGrant(tenant_id=consumed.tenant_id, code=code,
                                   redirect_uri=self.dialog.redirect_uri, actor=consumed.user_ref, ip=ip)
        return exchange.connect(parts, grant, self.settings)


def require(store: TokenStore, tenant_id: int) -> MetaConnection:
    row = store.for_tenant(tenant_id)
    if row is None:
        raise NotConnected()
    return row


def mask(token: str) -> str:
    """A preview that identifies a token without revealing it."""
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


def debug_token(*, graph: GraphClient, store: TokenStore, row: MetaConnection) -> TokenReport:
    token = store.read(row)
    info = tokens.inspect(graph, token)
    return TokenReport(token_preview=mask(token), is_valid=info.is_valid, token_type=info.token_type,
                       app_id=graph.app_id, user_id=info.user_id, expires_at=info.expires_at,
                       data_access_expires_at=info.data_access_expires_at, issued_at=info.issued_at,
                       scopes=info.scopes, error_code=info.error_code, error_subcode=info.error_subcode)


def rediscover(*, graph: GraphClient, store: TokenStore, row: MetaConnection) -> None:
    discovery = assets.discover(graph, store.read(row), set(row.scopes or []))
    apply_discovery(row, discovery, row.updated_at)  # complete: clears what a connect left pending
    channels.sync(store, row, discovery)
    db.session.commit()


# A discovery the job could not finish (Meta down, its calls refused, a page that keeps timing
# out) is tried again after as long as it had been pending at the last attempt, so the waits
# double from the job's tick (30 s, 1, 2, 4... minutes) up to this: a tenant whose Meta calls
# keep failing costs one full listing per half hour, not one per tick.
DISCOVERY_RETRY_CAP = timedelta(minutes=30)


def discovery_due(pending_since: datetime, attempted_at: datetime | None, now: datetime) -> bool:
    """Whether the discovery job may try this pending discovery now (the backoff above)."""
    if attempted_at is None:  # never tried since the connect left it pending
        return True
    wait = min(max(attempted_at - pending_since, timedelta(0)), DISCOVERY_RETRY_CAP)
    return now >= attempted_at + wait


def pending_discoveries(now: datetime) -> list[int]:
    """Tenants whose connect left part of the discovery unread, token still usable, due a try."""
    query = (db.select(MetaConnection.tenant_id, MetaConnection.discovery_pending_since,
                       MetaConnection.discovery_attempted_at)
             .where(MetaConnection.discovery_pending_since.is_not(None),
                    MetaConnection.status.not_in(sorted(FAILING_STATUSES)))
             .order_by(MetaConnection.discovery_pending_since))
    tenants = [tenant_id for tenant_id, pending_since, attempted_at in db.session.execute(query)
               if discovery_due(pending_since, attempted_at, now)]
    db.session.commit()
    return tenants


def finish_discoveries(*, graph: GraphClient, store: TokenStore, now: datetime,
                       stopping: Event | None = None) -> int:
    """Finish every pending discovery that is due; one failing (Meta down, a token gone) keeps
    its marker for a later run and does not stop the others."""
    done = 0
    for tenant_id in pending_discoveries(now):
        if stopping is not None and stopping.is_set():
            break
        try:
            done += finish_discovery(graph=graph, store=store, tenant_id=tenant_id, now=now)
        except (GraphError, CryptoError) as exc:
            db.session.rollback()
            log.warning("meta discovery for tenant %s failed: %s", tenant_id, type(exc).__name__)
    return done


def finish_discovery(*, graph: GraphClient, store: TokenStore, tenant_id: int, now: datetime) -> bool:
    """The discovery job's step: read everything the token sees (no round budget, no lock held
    while Meta answers), then merge it under the row's lock unless a newer token came meanwhile.
    Idempotent: a second run, or a run after a restart, finds the marker clear or redoes it."""
    row = store.for_tenant(tenant_id)
    if row is None or row.discovery_pending_since is None:
        return False
    # Committed before Meta is asked: the backoff counts from here whatever comes of the attempt
    # (a failure, a listing still partial, the process killed meanwhile).
    row.discovery_attempted_at = now
    generation, scopes = row.token_generation, set(row.scopes or [])
    db.session.commit()  # no transaction waits on Meta
    discovery = assets.discover(graph, store.read(row), scopes)
    row = store.for_tenant(tenant_id, lock=True)
    if row is None or row.discovery_pending_since is None or row.token_generation != generation:
        db.session.rollback()
        return False
    apply_discovery(row, discovery, row.discovery_pending_since)
    channels.sync(store, row, discovery)
    audit.record("meta.discovery_completed", actor=audit.Actor("system"), tenant_id=tenant_id,
                 details={"businesses": len(discovery.businesses), "pages": len(discovery.pages)})
    db.session.commit()
    return True


def _checked_id(value: object) -> str:
    checked = str(value or "").strip()
    if not ASSET_ID.match(checked):
        raise UnknownAsset()
    return checked


def accounts(row: MetaConnection, portfolio_id: str | None) -> list[JsonObject]:
    """Ad accounts of one of the tenant's businesses, or every one the connection sees."""
    if portfolio_id is None:
        every: list[JsonObject] = row.all_ad_accounts()
        return every
    portfolio_id = _checked_id(portfolio_id)
    for business in row.business_managers or []:
        if business["id"] == portfolio_id:
            found: list[JsonObject] = business["ad_accounts"]
            return found
    raise UnknownAsset()


def select_account(*, row: MetaConnection, account_id: object, business_id: object = None,
                   account_name: str | None = None, who: channels.Who) -> Selection:
    """Choose the ad account the CRM works with; only one the connection discovered."""
    account_id = _checked_id(account_id)
    wanted = account_id if account_id.startswith("act_") else f"act_{account_id}"
    pool = accounts(row, _checked_id(business_id) if business_id else None)
    account = next((a for a in pool if a["id"] == wanted), None)
    if account is None:
        raise UnknownAsset()
    row.selected_ad_account_id = account["id"]
    row.selected_ad_account_name = account_name or account["name"]
    row.selected_business_id = str(business_id) if business_id else account.get("business_id")
    audit.record("meta.select_account", actor=audit.Actor(who.actor, who.ip), tenant_id=row.tenant_id,
                 details={"account_id": account["id"], "business_id": row.selected_business_id})
    db.session.commit()
    return Selection(row.selected_ad_account_id, row.selected_ad_account_name, row.selected_business_id)


def disconnect(parts: channels.Parts, tenant_id: int, who: channels.Who) -> Disconnected:
    """Unsubscribe the channels at Meta (before the revoke kills the Page tokens that needs),
    revoke the grant (best effort, and only if no other tenant shares it), then delete."""
    store = parts.store
    row = store.for_tenant(tenant_id, lock=True)
    if row is None:
        return Disconnected()
    revoked, unsubscribed = False, 0
    shared = row.meta_user_id and db.session.scalar(
        db.select(db.func.count()).select_from(MetaConnection).where(
            MetaConnection.meta_user_id == row.meta_user_id, MetaConnection.tenant_id != tenant_id))
    try:
        unsubscribed = channels.release(parts, row)
        if not shared:
            parts.graph.call("DELETE", "me/permissions", token=store.read(row))
            revoked = True
    except GraphError as exc:
        log.warning("revoking at Meta failed (%s); disconnecting locally", exc.kind,
                    extra={"graph": exc.log_fields()})
    except CryptoError as exc:  # a token we cannot open is still ours to delete
        log.error("stored token of tenant %s does not decrypt (%s); deleting it", tenant_id, exc)
    db.session.delete(row)
    audit.record("meta.disconnect", actor=audit.Actor(who.actor, who.ip), tenant_id=tenant_id,
                 details={"revoked_at_meta": revoked, "unsubscribed": unsubscribed})
    db.session.commit()
    return Disconnected(revoked_at_meta=revoked, unsubscribed=unsubscribed)


def drop_meta_user(*, meta_user_id: str, action: str, forget: bool = False) -> list[int]:
    """Meta's deauthorize/data-deletion: delete every connection of that Meta user.

    `forget` (data deletion): the user's id also leaves the audit trail, where connect
    events recorded it; the events themselves stay, without it.
    """
    rows = db.session.scalars(db.select(MetaConnection).filter_by(meta_user_id=meta_user_id)).all()
    tenants = [row.tenant_id for row in rows]
    for row in rows:
        db.session.delete(row)
        audit.record(action, actor="meta", tenant_id=row.tenant_id,
                     details={} if forget else {"meta_user_id": meta_user_id})
    if forget:
        forget_meta_user(meta_user_id)
    return tenants


def forget_meta_user(meta_user_id: str) -> int:
    """Remove the Meta user's id from every audit event that names it, whatever tenant or row
    it belonged to (deauthorize usually came first and deleted the rows already)."""
    named = AuditEvent.details["meta_user_id"].as_string() == meta_user_id
    events = db.session.scalars(db.select(AuditEvent).where(named)).all()
    for event in events:
        event.details = {k: v for k, v in event.details.items() if k != "meta_user_id"}
    return len(events)
