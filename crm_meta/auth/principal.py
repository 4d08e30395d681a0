"""Who is calling: a session user or a bearer JWT, resolved once per request."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, g, request
from flask_login import current_user

from crm_meta.errors import AppError, Forbidden, NotAuthenticated
from crm_meta.extensions import db
from crm_meta.models import Tenant, User

REQUIRED_CLAIMS = ["sub", "tenant_id", "role", "exp"]


@dataclass(frozen=True)
class Principal:
    tenant: Tenant
    actor: str  # "user:<id>" for a session, "jwt:<sub>" for a bearer token
    role: str
    is_admin: bool
    user: User | None = None


def mint_jwt(secret: str, *, tenant_id: int, sub: str, role: str, ttl: int = 3600) -> str:
    """An HS256 bearer token with the contract's claims."""
    now = datetime.now(UTC)
    claims = {"sub": str(sub), "tenant_id": tenant_id, "role": role,
              "iat": now, "exp": now + timedelta(seconds=ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _tenant_by_ref(ref) -> Tenant | None:
    if isinstance(ref, bool):  # JSON true is an int to Python, never a tenant id
        return None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return db.session.get(Tenant, int(ref))
    if isinstance(ref, str):
        return db.session.scalar(db.select(Tenant).filter_by(slug=ref))
    return None


def _from_jwt(token: str) -> Principal:
    config = current_app.config
    try:
        claims = jwt.decode(token, config["JWT_SECRET_KEY"], algorithms=["HS256"],
                            options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("The bearer token has expired", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise NotAuthenticated("The bearer token is invalid", code="invalid_token") from None
    tenant = _tenant_by_ref(claims["tenant_id"])
    if tenant is None:
        raise NotAuthenticated("The token's tenant does not exist", code="unknown_tenant")
    header = request.headers.get("X-Tenant-ID")
    if header is not None and not any(
        hmac.compare_digest(header, str(ref)) for ref in (tenant.id, tenant.slug)
    ):
        raise Forbidden("X-Tenant-ID does not match the token's tenant", code="tenant_mismatch")
    role = str(claims["role"])
    return Principal(tenant=tenant, actor=f"jwt:{claims['sub']}", role=role,
                     is_admin=role in config["META_ADMIN_ROLES"])


def _resolve() -> Principal | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Use 'Authorization: Bearer <token>'", code="invalid_token")
        return _from_jwt(token.strip())
    if current_user.is_authenticated:
        user: User = current_user._get_current_object()
        header = request.headers.get("X-Tenant-ID")
        if header is not None and header not in (str(user.tenant_id), user.tenant.slug):
            raise Forbidden("X-Tenant-ID does not match your tenant", code="tenant_mismatch")
        return Principal(tenant=user.tenant, actor=f"user:{user.id}", role=user.role,
                         is_admin=user.is_admin, user=user)
    return None


def current_principal() -> Principal | None:
    """The caller of this request, resolved once and cached on `g`."""
    if "principal" not in g:
        g.principal = _resolve()
    return g.principal


def rate_limit_key() -> str:
    """Authenticated calls count per tenant; anonymous ones per client address."""
    try:
        principal = current_principal()
    except AppError:
        principal = None
    if principal is not None:
        return f"tenant:{principal.tenant.id}"
    return f"ip:{request.remote_addr or 'unknown'}"
