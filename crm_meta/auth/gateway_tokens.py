"""Gateway tokens (`cmg_...`): one per service key and tenant, opening that tenant only.

A token is HMAC-SHA256(server secret, nonce), base64url: the row keeps the random nonce and the
token's SHA-256, never the token. So the credentials endpoint can hand the same token out again
(stable across the tenant's reconnects and Meta token refreshes: it is not Meta's token), while
the table alone cannot produce it. Rotating draws a new nonce; revoking refuses it at once; a
revoked service key closes its tokens with it. Checks are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from flask import current_app
from sqlalchemy import bindparam, inspect, update
from sqlalchemy.orm import make_transient_to_detached

from crm_meta.http.errors import AppError
from crm_meta.infra import statuscache
from crm_meta.infra.database import db
from crm_meta.models import GatewayToken, MetaConnection, ServiceKey, Tenant, audit
from crm_meta.models.types import utcnow

TOKEN_PREFIX = "cmg_"  # noqa: S105  (a prefix, not a secret)
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8  # the stored, displayable start of a token
_TOKEN = re.compile(r"^cmg_[A-Za-z0-9_-]{43}$")
_CONTEXT = b"crm-meta gateway token v1"
LAST_USED_RESOLUTION = timedelta(minutes=1)
_DUMMY_HASH = hashlib.sha256(b"no such gateway token").hexdigest()
SCOPE = "graph:proxy"
# How long an accepted token's lookup is reused by this process (crm_meta.infra.statuscache)
# when nothing says it changed. Revoking or rotating a token, revoking a key or changing its
# scopes or tenants (any write through crm-meta) reaches every process at its COMMIT, as does
# any change of the connection's status, token expiry, tenant or existence (the status
# triggers); this bound is for what neither sees: hand-written SQL on the credentials' tables,
# and a discovery refresh that leaves the counts as they were.
CACHE_SECONDS = 5.0


class BadCredential(AppError):
    """No gateway token, a wrong one, or a revoked one (Graph clients read it as code 190)."""

    status, code, message = 401, "invalid_gateway_token", "The gateway token is not valid"


@dataclass(frozen=True)
class Opened:
    """What an accepted token opens: one service's access to one tenant's connection."""

    service: str
    tenant_id: int
    row: MetaConnection | None = field(repr=False)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derive(secret: str, nonce: str) -> str:
    """The token of a nonce under this server's secret."""
    key = hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()
    mac = hmac.new(key, nonce.encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _active(service_key_id: int, tenant_id: int) -> GatewayToken | None:
    return db.session.scalar(db.select(GatewayToken).filter_by(
        service_key_id=service_key_id, tenant_id=tenant_id, revoked_at=None).order_by(GatewayToken.id))


def _new_row(service_key_id: int, tenant_id: int, secret: str) -> tuple[GatewayToken, str]:
    while True:
        nonce = secrets.token_urlsafe(32)
        token = derive(secret, nonce)
        taken = db.session.scalar(db.select(GatewayToken.id).filter_by(prefix=token[:PREFIX_LENGTH]))
        if taken is None:
            break
    row = GatewayToken(service_key_id=service_key_id, tenant_id=tenant_id, nonce=nonce,
                       prefix=token[:PREFIX_LENGTH], token_hash=digest(token))
    db.session.add(row)
    return row, token


def issue(*, service_key_id: int, service: str, tenant_id: int, secret: str,
          actor: str | None = None) -> str:
    """The service's token for this tenant: the active one, or a new one (audited, committed).
    A token whose stored hash no longer matches (the server secret changed) is replaced."""
    row = _active(service_key_id, tenant_id)
    if row is not None:
        token = derive(secret, row.nonce)
        if hmac.compare_digest(digest(token).encode(), row.token_hash.encode()):
            return token
        row.revoked_at = utcnow()  # made under another secret: it can never be handed out again
    row, token = _new_row(service_key_id, tenant_id, secret)
    audit.record("gateway_token.issue", actor=actor or f"service:{service}", tenant_id=tenant_id,
                 details={"service": service, "prefix": row.prefix})
    db.session.commit()
    return token


def _rows(tenant_id: int, service: str | None):
    statement = (db.select(GatewayToken).join(ServiceKey, ServiceKey.id == GatewayToken.service_key_id)
                 .where(GatewayToken.tenant_id == tenant_id, GatewayToken.revoked_at.is_(None)))
    if service:
        statement = statement.where(ServiceKey.name == service)
    return db.session.scalars(statement).all()


def revoke(tenant_id: int, service: str | None = None, *, actor: str = "cli") -> int:
    """Refuse the tenant's active tokens (one service's, or every service's) from now on."""
    rows = _rows(tenant_id, service)
    for row in rows:
        row.revoked_at = utcnow()
        audit.record("gateway_token.revoke", actor=actor, tenant_id=tenant_id,
                     details={"prefix": row.prefix})
    db.session.commit()
    return len(rows)


def rotate(tenant_id: int, secret: str, service: str | None = None, *, actor: str = "cli") -> list[str]:
    """Replace the tenant's active tokens with new ones; the prefixes of the new ones. The
    services get them from the credentials endpoint (?format=crm-ventas)."""
    prefixes = []
    for old in _rows(tenant_id, service):
        old.revoked_at = utcnow()
        row, _ = _new_row(old.service_key_id, tenant_id, secret)
        audit.record("gateway_token.rotate", actor=actor, tenant_id=tenant_id,
                     details={"old": old.prefix, "new": row.prefix})
        prefixes.append(row.prefix)
    db.session.commit()
    return prefixes


def listing() -> list:
    """(tenant slug, service, token row) for every token, newest first within a tenant."""
    return db.session.execute(
        db.select(Tenant.slug, ServiceKey.name, GatewayToken)
        .join(Tenant, Tenant.id == GatewayToken.tenant_id)
        .join(ServiceKey, ServiceKey.id == GatewayToken.service_key_id)
        .order_by(Tenant.slug, ServiceKey.name, GatewayToken.id.desc())).all()


@cache
def _lookup():
    # Built once: the prefix is a bound parameter (SQLAlchemy caches the compiled form too).
    return (db.select(GatewayToken.id, GatewayToken.token_hash, GatewayToken.revoked_at,
                      GatewayToken.last_used_at, GatewayToken.tenant_id, ServiceKey.name,
                      ServiceKey.scopes, ServiceKey.tenant_ids, ServiceKey.revoked_at.label("key_revoked_at"),
                      MetaConnection)
            .join(ServiceKey, ServiceKey.id == GatewayToken.service_key_id)
            .outerjoin(MetaConnection, MetaConnection.tenant_id == GatewayToken.tenant_id)
            .where(GatewayToken.prefix == bindparam("prefix")))


_CONNECTION_CLASS = inspect(MetaConnection).class_manager


@dataclass(frozen=True)
class _Found:
    """One lookup's answer, as kept between requests: the row's columns, the connection's as
    plain values (each request gets an instance of its own, `connection()`)."""

    id: int
    token_hash: str
    revoked_at: object
    last_used_at: object
    tenant_id: int
    name: str
    scopes: list
    tenant_ids: list | None
    key_revoked_at: object
    connection_values: dict | None

    @classmethod
    def of(cls, row) -> _Found:
        connection = row.MetaConnection
        values = None if connection is None else {
            attribute.key: getattr(connection, attribute.key)
            for attribute in inspect(MetaConnection).column_attrs}
        return cls(row.id, row.token_hash, row.revoked_at, row.last_used_at, row.tenant_id, row.name,
                   row.scopes, row.tenant_ids, row.key_revoked_at, values)

    def connection(self) -> MetaConnection | None:
        """The tenant's connection as read, detached: no query, no session (a warm call opens
        none); `db.session.merge(row, load=False)` attaches it where a relationship is needed."""
        if self.connection_values is None:
            return None
        # Built as a query's row is (values straight into the instance's state: no constructor,
        # no attribute events; `MetaConnection(**values)` and a merge set every column twice).
        row = _CONNECTION_CLASS.new_instance()
        row.__dict__.update(self.connection_values)
        make_transient_to_detached(row)
        return row


def _cache():
    return statuscache.for_engine(db.engine, current_app.config["STATUS_CACHE_SECONDS"])


def _find(prefix: str) -> tuple[_Found | None, MetaConnection | None]:
    """The token's lookup: from this process's cache when nothing changed since it was read
    and its last use is recorded to the minute, else one SELECT (then kept)."""
    cache = _cache()
    key = ("gateway_token", prefix)
    kept = cache.get(key) if cache is not None else None
    if kept is not None and not _last_use_due(kept.last_used_at):
        return kept, kept.connection()
    generation = cache.generation() if cache is not None else None
    row = db.session.execute(_lookup(), {"prefix": prefix}).first()
    if row is None:
        return None, None  # never kept: a token issued next must open at once
    found = _Found.of(row)
    if cache is not None:
        cache.put(key, found.tenant_id, found, generation, ttl=CACHE_SECONDS)
    return found, row.MetaConnection


def _last_use_due(last_used_at) -> bool:
    return last_used_at is None or utcnow() - last_used_at >= LAST_USED_RESOLUTION


def open_with(token: str | None) -> Opened:
    """What `token` opens, if it is a live gateway token of a live key with graph:proxy (one
    SELECT of the token, its service key and its tenant's connection, or none while this
    process's copy of that answer holds: `_find`); the comparison takes the same time for a
    wrong token as for a right one, cached or not."""
    token = token or ""
    found, connection = _find(token[:PREFIX_LENGTH]) if _TOKEN.match(token) else (None, None)
    expected = found.token_hash if found is not None else _DUMMY_HASH
    if not hmac.compare_digest(digest(token).encode(), expected.encode()) or found is None:
        raise BadCredential()
    if found.revoked_at is not None or found.key_revoked_at is not None:
        raise BadCredential("The gateway token was revoked", code="gateway_token_revoked")
    if SCOPE not in (found.scopes or []) or (found.tenant_ids is not None
                                              and found.tenant_id not in found.tenant_ids):
        raise BadCredential("The service's key no longer opens this tenant", code="gateway_token_revoked")
    if _last_use_due(found.last_used_at):
        db.session.execute(update(GatewayToken).where(GatewayToken.id == found.id)
                           .values(last_used_at=utcnow()).execution_options(synchronize_session=False))
        cache = _cache()
        if cache is not None:  # the copy kept still has the old last use: read it again next time
            cache.invalidate(found.tenant_id)
    return Opened(service=found.name, tenant_id=found.tenant_id, row=connection)
