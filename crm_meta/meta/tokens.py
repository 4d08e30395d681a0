"""Token facts from Meta: code exchange, long-lived exchange, debug_token inspection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_meta.infra import metrics
from crm_meta.infra.i18n import N_
from crm_meta.meta.errors import (
    BadRequestError,
    MetaRefused,
    PermissionMissingError,
    TokenInvalidError,
    app_misconfigured,
)
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.types import JsonObject

SHORT_LIVED_BELOW = timedelta(days=7)  # anything shorter is worth a long-lived exchange
# Codes with which /oauth/access_token refuses the app itself (1: "Error validating client
# secret.", 101: invalid application id), whatever token or code it was given.
APP_REFUSED_CODES = frozenset({1, 101})


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int | None  # None: Meta gave no expiry (system-user tokens)

    def __repr__(self) -> str:  # never print the token
        return f"IssuedToken(expires_in={self.expires_in})"


@dataclass(frozen=True)
class TokenInfo:
    is_valid: bool
    token_type: str
    user_id: str | None
    expires_at: datetime | None  # None: never
    data_access_expires_at: datetime | None
    issued_at: datetime | None
    scopes: list[str]
    error_code: int | None = None
    error_subcode: int | None = None
    error_message: str | None = None
    granular_scopes: list[JsonObject] = field(default_factory=list)  # [{"scope", "target_ids"}]


def _issued(body: JsonObject | list[Any]) -> IssuedToken:
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise MetaRefused(N_("Meta did not return an access token"))
    expires_in = body.get("expires_in") if isinstance(body, dict) else None
    return IssuedToken(token, int(expires_in) if expires_in not in (None, "") else None)


def _exchange(graph: GraphClient, params: dict[str, str], *, retry: bool) -> IssuedToken:
    # POST: the documented practice of the widely used clients, and it keeps the app secret
    # and the tokens out of every URL.
    try:
        body = graph.call("POST", "oauth/access_token", retry=retry,
                          params={**graph.client_params(), **params})
    except BadRequestError as exc:
        if exc.code in APP_REFUSED_CODES:
            raise app_misconfigured(exc) from None
        raise
    return _issued(body)


def exchange_code(graph: GraphClient, *, code: str, redirect_uri: str) -> IssuedToken:
    """Authorization code -> user token (single use: never retried; no PKCE, Meta refuses it)."""
    return _exchange(graph, {"grant_type": "authorization_code", "redirect_uri": redirect_uri,
                             "code": code}, retry=False)


def exchange_long_lived(graph: GraphClient, token: str, *, system_user: bool = False) -> IssuedToken:
    """fb_exchange_token: a new ~60-day token (new string). For an expiring system-user token
    Meta's refresh also takes `set_token_expires_in_60_days=true`."""
    params = {"grant_type": "fb_exchange_token", "fb_exchange_token": token}
    if system_user:
        params["set_token_expires_in_60_days"] = "true"  # noqa: S105 - a flag, not a secret
    return _exchange(graph, params, retry=True)


def ensure_long_lived(graph: GraphClient, issued: IssuedToken) -> IssuedToken:
    """Skip the second exchange when the first already returned a long-lived token."""
    if issued.expires_in is None or issued.expires_in >= SHORT_LIVED_BELOW.total_seconds():
        return issued
    return exchange_long_lived(graph, issued.access_token)


def _moment(value: int | str | None) -> datetime | None:
    value = int(value or 0)
    return datetime.fromtimestamp(value, UTC) if value else None


def _granular(raw: object) -> list[JsonObject]:
    result: list[JsonObject] = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and entry.get("scope"):
            targets = entry.get("target_ids")
            item: JsonObject = {"scope": str(entry["scope"])}
            if isinstance(targets, list):
                item["target_ids"] = [str(t) for t in targets]
            result.append(item)
    return result


def inspect(graph: GraphClient, token: str) -> TokenInfo:
    """debug_token (a GET: `input_token` in the query, the app token in the header); refuses a
    token issued to another app.

    Meta answers 200 for any problem of the inspected token (inside `data`); an error at the
    top level is about the caller, the app's own credential: AppMisconfiguredError.
    """
    try:
        body = graph.get("debug_token", token=graph.app_token, input_token=token)
    except (TokenInvalidError, PermissionMissingError, BadRequestError) as exc:
        raise app_misconfigured(exc) from None
    data = (body.get("data") or {}) if isinstance(body, dict) else {}
    metrics.TOKEN_VALIDATIONS.labels(result="valid" if data.get("is_valid") else "invalid").inc()
    if data.get("is_valid") and str(data.get("app_id")) != str(graph.app_id):
        raise MetaRefused(N_("The token was issued for another Meta app"))
    error = data.get("error") or {}
    return TokenInfo(
        is_valid=bool(data.get("is_valid")),
        token_type=str(data.get("type") or "USER"),
        user_id=str(data["user_id"]) if data.get("user_id") else None,
        expires_at=_moment(data.get("expires_at")),
        data_access_expires_at=_moment(data.get("data_access_expires_at")),
        issued_at=_moment(data.get("issued_at")),
        scopes=[str(s) for s in data.get("scopes") or []],
        error_code=error.get("code"),
        error_subcode=error.get("subcode") or error.get("error_subcode"),
        error_message=error.get("message"),
        granular_scopes=_granular(data.get("granular_scopes")),
    )
