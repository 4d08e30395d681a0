"""Reading a caller's JWT claims and headers: strict shapes, so bad input is a 4xx, never a 500."""

from __future__ import annotations

import re

from crm_meta.http.errors import AppError, NotAuthenticated

ACTOR_PREFIX = "jwt:"
# Actors land in String(100) columns (oauth_states.user_ref, meta_tokens.connected_by).
MAX_SUBJECT = 100 - len(ACTOR_PREFIX)
MAX_TENANT_ID = 2**31 - 1  # the largest id an INTEGER column holds
# What a tenant header may hold: an id or a slug; visible ASCII, kept short.
TENANT_HEADER = re.compile(r"[\x21-\x7e]{1,64}")


def subject(claims: dict, names: list[str]) -> str:
    """The caller's subject: the first of `names` present (`sub`, else CRM Ventas' `user_id`)."""
    value = next((claims[name] for name in names if claims.get(name) is not None), None)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise NotAuthenticated(f"The token names no subject ({', '.join(names)})",
                               code="invalid_token")
    if len(value) > MAX_SUBJECT or not value.isprintable():
        raise NotAuthenticated(f"The token's subject must be printable, at most {MAX_SUBJECT} "
                               "characters", code="invalid_token")
    return value


def tenant_ref(value) -> int | str:
    """The token's `tenant_id` when it is a number or a string (auth.tenancy.reference reads it)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise NotAuthenticated("The token's tenant_id must be a number or a string",
                               code="invalid_token")
    return value


def role(value) -> str:
    if not isinstance(value, str):
        raise NotAuthenticated("The token's role must be a string", code="invalid_token")
    return value


def tenant_header(value: str | None) -> str | None:
    """X-Tenant-ID as sent, once it has the shape of an id or a slug."""
    if value is None:
        return None
    if not TENANT_HEADER.fullmatch(value):
        raise AppError("X-Tenant-ID must be the tenant's id or slug (visible ASCII, at most 64)",
                       code="invalid_tenant_header", status=400)
    return value
