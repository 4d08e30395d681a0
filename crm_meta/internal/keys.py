"""Service keys: issue, list and revoke them; check a presented key in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from limits import parse
from sqlalchemy import false, update

from crm_meta.http.errors import Forbidden, NotAuthenticated
from crm_meta.infra.database import db
from crm_meta.infra.metrics import SERVICE_KEY_REFUSALS
from crm_meta.models import MetaConnection, ServiceKey, Tenant, audit
from crm_meta.models.types import utcnow
from crm_meta.runtime import runtime

log = logging.getLogger(__name__)

KEY_PREFIX = "cms_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8  # the stored, displayable start of a key
SCOPES = ("credentials:read", "graph:proxy", "audit:read")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_KEY = re.compile(r"^cms_[A-Za-z0-9_-]{43}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is kept to the minute
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
# Refused attempts are audited, but a flood of them must not flood the audit table: a row for the
# first refusal of a key prefix and reason in a window, at most AUDIT_PER_CLIENT rows a window per
# client address; the next row of that prefix and reason counts the ones not written (`repeats`).
AUDIT_PER_KEY = parse("1/minute")
AUDIT_PER_CLIENT = parse("20/minute")
REPEATS_KEPT = 7 * 24 * 3600  # seconds a count of unwritten refusals waits for its next row


@dataclass(frozen=True)
class Caller:
    """The service behind an accepted key."""

    name: str
    scopes: tuple[str, ...]
    tenant_ids: tuple[int, ...] | None = None  # None: every tenant

    def opens(self, tenant_id: int) -> bool:
        """Whether this key may reach that tenant (least privilege: `--tenant` at creation)."""
        return self.tenant_ids is None or tenant_id in self.tenant_ids


@dataclass(frozen=True)
class Issued:
    """A new key: shown once to whoever created it, then only its hash remains."""

    row: ServiceKey
    key: str = field(repr=False)


def digest(key: str) -> str:
    """SHA-256 hex of a key: keys are 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def active(name: str) -> ServiceKey | None:
    return db.session.scalar(db.select(ServiceKey).filter_by(name=name, revoked_at=None))


def create(name: str, scopes: list[str], *, actor: str = "cli",
           tenant_ids: list[int] | None = None) -> Issued:
    """A new key for service NAME with the given scopes, limited to `tenant_ids` when given
    (None: every tenant); ValueError when a name or scope is wrong."""
    if not NAME.match(name):
        raise ValueError("NAME: lowercase letters, digits, dots, dashes and underscores, up to 64")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    if active(name) is not None:
        raise ValueError(f"service {name!r} already has a key; revoke it first")
    while True:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        if db.session.scalar(db.select(ServiceKey.id).filter_by(prefix=key[:PREFIX_LENGTH])) is None:
            break
    row = ServiceKey(name=name, prefix=key[:PREFIX_LENGTH], key_hash=digest(key),
                     scopes=sorted(set(scopes)),
                     tenant_ids=sorted(set(tenant_ids)) if tenant_ids is not None else None)
    db.session.add(row)
    audit.record("service_key.create", actor=actor, details={"service": name, "prefix": row.prefix,
                                                            "scopes": row.scopes,
                                                            "tenant_ids": row.tenant_ids})
    db.session.commit()
    return Issued(row=row, key=key)


def listing() -> list[ServiceKey]:
    return list(db.session.scalars(db.select(ServiceKey).order_by(ServiceKey.name, ServiceKey.id)))


def revoke(name: str, *, actor: str = "cli") -> int:
    """Revoke service NAME's active key(s); returns how many."""
    rows = db.session.scalars(db.select(ServiceKey).filter_by(name=name, revoked_at=None)).all()
    for row in rows:
        row.revoked_at = utcnow()
        audit.record("service_key.revoke", actor=actor, details={"service": name, "prefix": row.prefix})
    db.session.commit()
    return len(rows)


def presented(header: str | None) -> str:
    """The key of `Authorization: Bearer cms_...`; a user's JWT or session never opens /internal/."""
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX):
        raise NotAuthenticated("A service key is required: Authorization: Bearer cms_...",
                               code="service_key_required")
    return key


def lookup(key: str):
    """The SELECT of a key's row by its prefix (callers may join more to it); None if malformed."""
    if not _KEY.match(key):
        return None
    return (db.select(ServiceKey.id, ServiceKey.name, ServiceKey.key_hash, ServiceKey.scopes,
                      ServiceKey.revoked_at, ServiceKey.last_used_at, ServiceKey.tenant_ids)
            .where(ServiceKey.prefix == key[:PREFIX_LENGTH]))


def with_tenant(statement, tenant_ref: int | str | None):
    """One row: `statement`'s key columns, the tenant named by `tenant_ref` (an id, a slug, or
    None for a reference that names nothing) as `tenant_id`, and its MetaConnection; None when
    no key matched. One query: the key decides before the tenant is told."""
    if tenant_ref is None:
        named = false()
    else:
        named = Tenant.id == tenant_ref if isinstance(tenant_ref, int) else Tenant.slug == tenant_ref
    return db.session.execute(
        statement.add_columns(Tenant.id.label("tenant_id"), MetaConnection).select_from(ServiceKey)
        .outerjoin(Tenant, named).outerjoin(MetaConnection, MetaConnection.tenant_id == Tenant.id)).first()


def verify(key: str, found, scope: str) -> Caller:
    """Accept the key if `found` (lookup's row, or None) matches it in constant time, is live
    and holds `scope`. The last use is recorded to the minute (the caller's commit stores it):
    a busy service costs a write a minute, not a write and a disk flush per call."""
    expected = found.key_hash if found is not None else _DUMMY_HASH
    if not hmac.compare_digest(digest(key).encode(), expected.encode()) or found is None:
        raise NotAuthenticated("The service key is not valid", code="invalid_service_key")
    if found.revoked_at is not None:
        raise NotAuthenticated("The service key was revoked", code="service_key_revoked")
    if scope not in (found.scopes or []):
        raise Forbidden(f"The service key lacks the scope {scope}", code="insufficient_scope")
    now = utcnow()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        db.session.execute(update(ServiceKey).where(ServiceKey.id == found.id)
                           .values(last_used_at=now).execution_options(synchronize_session=False))
    limited = found.tenant_ids
    return Caller(name=found.name, scopes=tuple(found.scopes),
                  tenant_ids=tuple(limited) if limited is not None else None)


def shown_prefix(key: str | None) -> str | None:
    """What a refusal may record of a presented key: the displayable prefix of a well-formed
    one (as `services list` shows it), never more and never a malformed value as typed."""
    return key[:PREFIX_LENGTH] if key and _KEY.match(key) else None


@dataclass(frozen=True)
class Refusal:
    """A refused call to /internal/: its route and method, why, from where; the service and
    tenant when the key was known and the tenant resolved."""

    route: str
    method: str
    reason: str
    ip: str | None
    service: str | None = None
    tenant_ref: str | None = None
    tenant_id: int | None = None


def record_refusal(header: str | None, refusal: Refusal) -> None:
    """Audit a refused call to /internal/: which key (prefix), which route, why."""
    _, _, key = (header or "").partition(" ")
    prefix = shown_prefix(key.strip())
    service, tenant_ref = refusal.service, refusal.tenant_ref
    actor = f"service:{service}" if service else (f"service-key:{prefix}" if prefix else "anonymous")
    details = {"prefix": prefix, "route": refusal.route, "method": refusal.method, "reason": refusal.reason}
    if service:
        details["service"] = service
    if tenant_ref is not None:
        details["tenant_ref"] = tenant_ref[:64]
    repeats = _unwritten_before(prefix or "-", refusal.reason, refusal.ip or "-")
    SERVICE_KEY_REFUSALS.labels(reason=refusal.reason, audited="no" if repeats is None else "yes").inc()
    if repeats is None:
        return
    if repeats:
        details["repeats"] = repeats  # refused since the last row of this prefix and reason
    # A known tenant's admins see it on their page.
    audit.record_now("service_key.refused", actor=audit.Actor(actor, refusal.ip), outcome="refused",
                     details=details, tenant_id=refusal.tenant_id)


def _unwritten_before(prefix: str, reason: str, ip: str) -> int | None:
    """None when this refusal is not to be written (its prefix and reason, or its client, had
    their rows this window); else how many of that prefix and reason were not written before it.
    Counted in the rate limiter's storage (Redis when shared); without one (RATELIMIT_ENABLED
    off) or when it fails, every refusal is written: the trail matters more than the bound."""
    limiter = runtime().limiter
    if limiter is None or not limiter.enabled:
        return 0
    names = (current_app.config["RATELIMIT_KEY_PREFIX"], "refused-key-audit")
    repeats = "/".join((*names, "repeats", prefix, reason))
    try:
        strategy = limiter.limiter
        if not (strategy.hit(AUDIT_PER_KEY, *names, prefix, reason)
                and strategy.hit(AUDIT_PER_CLIENT, *names, "client", ip)):
            strategy.storage.incr(repeats, REPEATS_KEPT)
            return None
        count = strategy.storage.get(repeats)
        if count:
            strategy.storage.clear(repeats)
        return count
    except Exception as exc:  # the storage is away: write the row
        log.warning("refused-key audit not bounded (%s)", type(exc).__name__)
        return 0


def authenticate(header: str | None, scope: str) -> Caller:
    """The service presenting `Authorization: Bearer cms_...`, if its key is live and holds `scope`."""
    key = presented(header)
    statement = lookup(key)
    return verify(key, db.session.execute(statement).first() if statement is not None else None, scope)
