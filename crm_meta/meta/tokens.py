"""Token facts from Meta: code exchange, long-lived exchange, debug_token inspection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crm_meta import metrics
from crm_meta.errors import MetaFailed

SHORT_LIVED_BELOW = timedelta(days=7)  # anything shorter is worth a long-lived exchange


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


def _issued(body: dict) -> IssuedToken:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise MetaFailed("Meta did not return an access token")
    expires_in = body.get("expires_in")
    return IssuedToken(token, int(expires_in) if expires_in not in (None, "") else None)


def exchange_code(graph, *, code: str, redirect_uri: str, code_verifier: str | None) -> IssuedToken:
    """Authorization code -> user token (single use: never retried)."""
    body = graph.call("POST", "oauth/access_token", retry=False, params={
        "grant_type": "authorization_code", **graph.client_params(), "redirect_uri": redirect_uri,
        "code": code, "code_verifier": code_verifier,
    })
    return _issued(body)


def exchange_long_lived(graph, token: str) -> IssuedToken:
    """fb_exchange_token: a short-lived user token -> a ~60-day one (new string)."""
    body = graph.call("GET", "oauth/access_token", params={
        "grant_type": "fb_exchange_token", **graph.client_params(), "fb_exchange_token": token,
    })
    return _issued(body)


def ensure_long_lived(graph, issued: IssuedToken) -> IssuedToken:
    """Skip the second exchange when the first already returned a long-lived token."""
    if issued.expires_in is None or issued.expires_in >= SHORT_LIVED_BELOW.total_seconds():
        return issued
    return exchange_long_lived(graph, issued.access_token)


def _moment(value) -> datetime | None:
    value = int(value or 0)
    return datetime.fromtimestamp(value, UTC) if value else None


def inspect(graph, token: str) -> TokenInfo:
    """debug_token with the app token; refuses a token issued to another app."""
    data = graph.get("debug_token", token=graph.app_token, input_token=token).get("data") or {}
    metrics.TOKEN_VALIDATIONS.labels(result="valid" if data.get("is_valid") else "invalid").inc()
    if data.get("is_valid") and str(data.get("app_id")) != str(graph.app_id):
        raise MetaFailed("The token was issued for another Meta app")
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
    )
