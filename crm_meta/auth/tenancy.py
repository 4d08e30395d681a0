"""The caller's tenant and its connection's status columns, read together in one query: the
only database round trip of a status read, whichever credential the caller brings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy import bindparam, select

from crm_meta.auth import claims as claims_
from crm_meta.infra import statuscache
from crm_meta.infra.database import db
from crm_meta.infra.dbreads import first_read
from crm_meta.meta.status import STATUS_FIELDS, ConnectionStatus
from crm_meta.models import MetaConnection, Tenant, User
from crm_meta.models.tenant import SLUG

TENANTS, TOKENS = Tenant.__table__, MetaConnection.__table__
# The connection's key tells "no connection" from the outer join's row of NULLs.
COLUMNS = (TENANTS.c.id, TENANTS.c.slug, TOKENS.c.id.label("connection_id"),
           *(TOKENS.c[name] for name in STATUS_FIELDS))
WITH_STATUS = TENANTS.outerjoin(TOKENS, TOKENS.c.tenant_id == TENANTS.c.id)
# Built once: plain table statements (no ORM entities to load) whose cache key is computed
# once, not per request; a JWT names its tenant by id or by slug.
BY_ID = select(*COLUMNS).select_from(WITH_STATUS).where(TENANTS.c.id == bindparam("ref"))
BY_SLUG = select(*COLUMNS).select_from(WITH_STATUS).where(TENANTS.c.slug == bindparam("ref"))
SESSION_KEY = "_crm_meta_session_tenant"
# An id in a string: ASCII digits only, as many as an INTEGER's largest value has (zeros lead).
DIGITS = re.compile(r"[0-9]{1,20}")  # on `g`: what the session user's loader read


@dataclass(frozen=True, slots=True)
class TenantRef:
    """A tenant as authentication read it: what checks and scoping need, no ORM object."""

    id: int
    slug: str


Found = tuple[TenantRef, ConnectionStatus | None]


def _found(values) -> Found:
    tenant_id, slug, connection_id, *status = values
    return TenantRef(tenant_id, slug), (ConnectionStatus(*status) if connection_id else None)


def reference(value: int | str) -> int | str | None:
    """The one rule for a tenant reference, wherever it comes from (a token's `tenant_id`, the
    `X-Tenant-ID` header, an /internal/ path): an int, or a string of ASCII digits (leading
    zeros too: "01" is tenant 1), is an id; any other string a slug (slugs are never digits
    only); None when it can name no tenant (out of an id's range, or not a slug's shape)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        if not DIGITS.fullmatch(value):
            return None  # more digits than any id has: no slug is digits only either
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= claims_.MAX_TENANT_ID else None
    if isinstance(value, str) and SLUG.fullmatch(value):
        return value
    return None


def names(ref: int | str | None, tenant: TenantRef) -> bool:
    """Whether a reference (read by `reference`) names this tenant."""
    return ref == (tenant.id if isinstance(ref, int) else tenant.slug) if ref is not None else False


def tenant_by_ref(ref) -> Found | None:
    """A tenant by id or by slug (`reference`'s rule), with its connection's status."""
    ref = reference(claims_.tenant_ref(ref))
    if ref is None:
        return None
    statement = BY_ID if isinstance(ref, int) else BY_SLUG
    cache = statuscache.for_engine(db.engine, current_app.config["STATUS_CACHE_SECONDS"])
    if cache is None:
        row = first_read(statement, {"ref": ref}).first()
        return None if row is None else _found(row)
    key = (statement is BY_ID, ref)
    found = cache.get(key)
    if found is None:
        generation = cache.generation()
        row = first_read(statement, {"ref": ref}).first()
        if row is None:
            return None  # never cached: a tenant created next must be found at once
        found = _found(row)
        cache.put(key, found[0].id, found, generation)
    return found


def load_session_user(user_id: str) -> User | None:
    """flask-login's loader: the user, its tenant and the connection's status in one query."""
    if not user_id.isdigit():
        return None
    query = (select(User, *COLUMNS).join(Tenant, Tenant.id == User.tenant_id)
             .outerjoin(MetaConnection, MetaConnection.tenant_id == Tenant.id).where(User.id == int(user_id)))
    row = first_read(query).first()
    if row is None:
        return None
    user, *rest = row
    setattr(g, SESSION_KEY, (user.id, _found(rest)))
    return user


def of_session_user(user: User) -> Found | None:
    """The logged-in user's tenant and connection status (as its loader read them)."""
    loaded = g.get(SESSION_KEY)
    if loaded is not None and loaded[0] == user.id:
        return loaded[1]
    return tenant_by_ref(user.tenant_id)
