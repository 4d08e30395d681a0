"""Who is calling: a bearer JWT, a session user or the CRM's JWT cookie, resolved once per request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, g, request
from flask_login import current_user

from crm_meta.auth import claims as claims_
from crm_meta.auth import tenancy
from crm_meta.auth.tenancy import TenantRef
from crm_meta.http.errors import AppError, Forbidden, NotAuthenticated
from crm_meta.infra.i18n import N_
from crm_meta.meta.status import ConnectionStatus
from crm_meta.models import User

# The subject is not required by name: it comes from JWT_SUBJECT_CLAIMS (`sub` or `user_id`).
REQUIRED_CLAIMS = ["tenant_id", "role", "exp"]
# JWTs this process verified, with their expiry: the same token string under the same key and
# checks verifies the same way every time (HS256, claims fixed by the signature), so what is
# left to check again is the clock (`exp`; `nbf` and `iat` only become truer). A token that
# failed is never kept; a token changed by one character is another entry. Bounded.
_VERIFIED: dict[tuple, tuple[float, dict]] = {}
VERIFIED_MAX = 10_000
TOKEN_MAX = 4096  # longer tokens are verified every time, never kept


@dataclass(frozen=True)
class Principal:
    tenant: TenantRef
    actor: str  # "user:<id>" for a session, "jwt:<subject>" for a JWT (header or cookie)
    role: str
    is_admin: bool
    user: User | None = None
    # The tenant's connection as its status columns, read with the tenant (None: not connected).
    connection: ConnectionStatus | None = None


def mint_jwt(secret: str, *, tenant_id: int, sub: str, role: str, ttl: int = 3600) -> str:
    """An HS256 bearer token with the contract's claims."""
    now = datetime.now(UTC)
    claims = {"sub": str(sub), "tenant_id": tenant_id, "role": role,
              "iat": now, "exp": now + timedelta(seconds=ttl)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _check_tenant_header(tenant: TenantRef) -> None:
    # The header as WSGI holds it: werkzeug's Headers.get raises and catches a KeyError when
    # it is absent (nearly every call).
    header = claims_.tenant_header(request.environ.get("HTTP_X_TENANT_ID"))
    if header is not None and not tenancy.names(tenancy.reference(header), tenant):
        raise Forbidden(N_("X-Tenant-ID does not match your tenant"), code="tenant_mismatch")


def _from_jwt(token: str) -> Principal:
    config = current_app.config
    required, checked = list(REQUIRED_CLAIMS), {}
    for claim, setting, argument in (("aud", "JWT_AUDIENCE", "audience"), ("iss", "JWT_ISSUER", "issuer")):
        if config.get(setting):  # optional: checked only when configured
            required.append(claim)
            checked[argument] = config[setting]
    try:
        claims = _verified(token, config["JWT_SECRET_KEY"], required, checked)
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("The token has expired", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise NotAuthenticated("The token is invalid", code="invalid_token") from None
    sub = claims_.subject(claims, config["JWT_SUBJECT_CLAIMS"])
    role = claims_.role(claims["role"])
    found = tenancy.tenant_by_ref(claims["tenant_id"])
    if found is None:
        raise NotAuthenticated("The token's tenant does not exist", code="unknown_tenant")
    tenant, connection = found
    _check_tenant_header(tenant)
    is_admin = role in config["META_ADMIN_ROLES"]
    if not is_admin and role not in config["META_MEMBER_ROLES"]:
        raise Forbidden("This role has no access to the Meta integration", code="unknown_role")
    return Principal(tenant=tenant, actor=f"{claims_.ACTOR_PREFIX}{sub}", role=role,
                     is_admin=is_admin, connection=connection)


def _verified(token: str, secret: str, required: list[str], checked: dict) -> dict:
    """The token's claims: PyJWT's full check, or its answer for this very token while the
    token has not expired (PyJWT: expired once `exp <= now`)."""
    key = (token, secret, tuple(required), repr(sorted(checked.items())))
    kept = _VERIFIED.get(key)
    if kept is not None and time.time() < kept[0]:
        return dict(kept[1])
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": required}, **checked)
    if len(token) <= TOKEN_MAX:
        if len(_VERIFIED) >= VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[key] = (float(claims["exp"]), dict(claims))
    return claims


def bearer_token() -> str | None:
    """The JWT of an `Authorization: Bearer` header (None without the header)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Use 'Authorization: Bearer <token>'", code="invalid_token")
    return token.strip()


def cookie_token() -> str | None:
    """The CRM's JWT from its login cookie (JWT_COOKIE_NAME), when the browser sent one."""
    return request.cookies.get(current_app.config["JWT_COOKIE_NAME"]) or None


def _resolve() -> Principal | None:
    # Order: an explicit bearer header; our own login session; the CRM's login cookie. A bad
    # header is never rescued by a session; a stale CRM cookie never hides a valid session.
    token = bearer_token()
    if token is not None:
        return _from_jwt(token)
    if current_user.is_authenticated:
        user: User = current_user._get_current_object()
        found = tenancy.of_session_user(user)
        if found is None:  # the tenant went away after the user was read
            raise NotAuthenticated()
        tenant, connection = found
        _check_tenant_header(tenant)
        return Principal(tenant=tenant, actor=f"user:{user.id}", role=user.role,
                         is_admin=user.is_admin, user=user, connection=connection)
    token = cookie_token()
    if token is not None:
        return _from_jwt(token)
    return None


def current_principal() -> Principal | None:
    """The caller of this request, resolved once and cached on `g`."""
    here = g._get_current_object()  # one context lookup: several hooks and the view ask
    if "principal" not in here:
        here.principal = _resolve()
    return here.principal


def rate_limit_key() -> str:
    """Authenticated calls count per tenant; anonymous ones per client address."""
    try:
        principal = current_principal()
    except AppError:
        principal = None
    if principal is not None:
        return f"tenant:{principal.tenant.id}"
    return f"ip:{request.remote_addr or 'unknown'}"
