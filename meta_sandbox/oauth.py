"""`/oauth/access_token` (code, fb_exchange_token, client_credentials) and `/debug_token`."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from . import auth
from .errors import GraphRefusal, bad_param, token_error
from .state import epoch
from .tokens import LONG_LIVED_THRESHOLD, TokenRecord, expiry

GRANULAR = {
    "business_management": "businesses",
    "ads_management": "ad_accounts",
    "ads_read": "ad_accounts",
    "pages_show_list": "pages",
    "pages_read_engagement": "pages",
    "pages_manage_metadata": "pages",
    "pages_manage_posts": "pages",
    "whatsapp_business_management": "wabas",
    "whatsapp_business_messaging": "wabas",
}


# Meta's answer to an exchange that carries a PKCE verifier: its web dialog keeps no challenge.
PKCE_REFUSED = "code_verifier param is provided without a code_challenge in authorization request."
SIXTY_DAYS = 60 * 86400
DEBUG_TOKEN_METHODS = ("GET",)  # Meta documents debug_token as a read only


def _check_client(sandbox, params: dict[str, str]) -> None:
    client_id = params.get("client_id")
    if not client_id:
        raise GraphRefusal("Missing client_id parameter.", 101)
    if client_id != sandbox.app_id:
        raise GraphRefusal("Error validating application. Invalid application ID.", 101)
    secret = params.get("client_secret")
    if not secret or not hmac.compare_digest(secret.encode(), sandbox.app_secret.encode()):
        raise GraphRefusal("Error validating client secret.", 1, is_transient=False, status=400)


def _token_response(token: str, expires_at: datetime | None, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
    if expires_at is not None:
        body["expires_in"] = max(0, int((expires_at - now).total_seconds()))
    return body


def access_token(sandbox, method: str, params: dict[str, str]) -> dict[str, Any]:
    """Dispatch on grant_type, as Meta's /oauth/access_token does."""
    if method not in ("GET", "POST"):
        raise bad_param(f"Unsupported {method.lower()} request.")
    grant_type = params.get("grant_type") or "authorization_code"
    _check_client(sandbox, params)
    now = sandbox.now()
    if grant_type == "authorization_code" and params.get("code_verifier"):
        raise GraphRefusal(PKCE_REFUSED, 1, status=400, is_transient=False)
    if grant_type == "authorization_code":
        return _exchange_code(sandbox, params, now)
    if grant_type == "fb_exchange_token":
        return _exchange_token(sandbox, params, now)
    if grant_type == "client_credentials":
        return {"access_token": sandbox.store.issue_app_token(sandbox.app_id), "token_type": "bearer"}
    raise bad_param(f"Unsupported grant_type: {grant_type}")


def _exchange_code(sandbox, params: dict[str, str], now: datetime) -> dict[str, Any]:
    code = params.get("code")
    if not code:
        raise bad_param("Missing authorization code")
    record = sandbox.store.codes.get(code)
    if record is None:
        raise bad_param("Invalid verification code format.")
    if record.used:
        raise bad_param("This authorization code has been used.", 36009)
    if now - record.created_at > timedelta(seconds=sandbox.config["code_ttl_seconds"]):
        raise bad_param("This authorization code has expired.", 36007)
    # A code from the JavaScript SDK was issued for no redirect URI: it is exchanged with none
    # (or an empty one), and refused with any other; a dialog code needs its own, exactly.
    if (params.get("redirect_uri") or "") != record.redirect_uri:
        raise bad_param(
            "Error validating verification code. Please make sure your redirect_uri is "
            "identical to the one you used in the OAuth dialog request",
            36008,
        )
    record.used = True
    if record.kind == "SYSTEM_USER":
        expires_at = expiry(now, sandbox.config["system_user_expires_in"])
        long_lived = True
    else:
        lifetime = sandbox.config["code_token_expires_in"]
        expires_at = expiry(now, lifetime)
        long_lived = expires_at is None or lifetime > LONG_LIVED_THRESHOLD
    token = sandbox.store.issue(record.kind, record.user_id, record.grant, now, expires_at, long_lived)
    return _token_response(token, expires_at, now)


def _exchange_token(sandbox, params: dict[str, str], now: datetime) -> dict[str, Any]:
    old = params.get("fb_exchange_token")
    if not old:
        raise bad_param("Missing fb_exchange_token parameter.")
    if auth.is_app_token(sandbox, old):
        raise bad_param("(#100) An app access token cannot be exchanged.")
    record = auth.lookup(sandbox, old, now)
    if record.expires_at is None:
        expires_at = None
    elif record.kind == "SYSTEM_USER":
        # Meta's expiring system-user tokens: a refresh with set_token_expires_in_60_days=true
        # gives a new token valid 60 days; without it the end stays where it was.
        refresh = (params.get("set_token_expires_in_60_days") or "").lower() == "true"
        expires_at = now + timedelta(seconds=SIXTY_DAYS) if refresh else record.expires_at
    elif record.long_lived and not sandbox.config["extend_long_lived"]:
        expires_at = record.expires_at  # observed at Meta: the expiry is not pushed out
    else:
        expires_at = now + timedelta(seconds=sandbox.config["long_lived_expires_in"])
    token = sandbox.store.issue(
        record.kind, record.user_id, record.grant, now, expires_at, True, record.page_id
    )
    return _token_response(token, expires_at, now)


def _granular(sandbox, record: TokenRecord) -> list[dict[str, Any]]:
    access = sandbox.fixtures.access(record.user_id, record.grant.business_ids)
    result = []
    for scope in sorted(record.grant.granted):
        entry: dict[str, Any] = {"scope": scope}
        kind = GRANULAR.get(scope)
        if kind:
            ids = access[kind]
            if kind == "ad_accounts":
                ids = [i.removeprefix("act_") for i in ids]
            if record.kind == "PAGE" and kind == "pages":
                ids = [record.page_id]
            if ids:
                entry["target_ids"] = [str(i) for i in ids]
        result.append(entry)
    return result


def inspect_error(code: int, subcode: int | None, message: str | None) -> dict[str, Any]:
    """debug_token's answer for an unusable input token (an injected fault)."""
    error: dict[str, Any] = {"code": code, "message": message or "Error validating access token."}
    if subcode is not None:
        error["subcode"] = subcode
    return {"data": {"error": error, "is_valid": False, "scopes": [], "granular_scopes": []}}


def debug_token(sandbox, bearer: str | None, params: dict[str, str]) -> dict[str, Any]:
    """Inspect input_token; always HTTP 200 for the input token's own problems."""
    app_token = params.get("access_token") or bearer
    if not app_token:
        raise GraphRefusal("An access token is required to request this resource.", 104)
    if not auth.is_app_token(sandbox, app_token):
        if "|" in app_token:
            raise token_error(None, "Invalid OAuth access token signature.")
        raise bad_param(
            "(#100) You must provide an app access token, or a user access token that is an "
            "owner or developer of the app"
        )
    input_token = params.get("input_token")
    if not input_token:
        raise bad_param("(#100) The parameter input_token is required")
    now = sandbox.now()
    if auth.is_app_token(sandbox, input_token):
        return {
            "data": {
                "app_id": sandbox.app_id,
                "type": "APP",
                "application": sandbox.config["app_name"],
                "is_valid": True,
                "scopes": [],
                "granular_scopes": [],
            }
        }
    record = sandbox.store.tokens.get(input_token)
    if record is None:
        message = "Invalid OAuth access token - Cannot parse access token"
        if input_token.startswith("EAA"):
            message = auth.token_message(sandbox, 467, None, now)
        return {
            "data": {
                "error": {"code": 190, "message": message, "subcode": 467},
                "is_valid": False,
                "scopes": [],
                "granular_scopes": [],
            }
        }
    subcode = sandbox.store.problem(record, now)
    data: dict[str, Any] = {
        "app_id": sandbox.app_id,
        "type": record.kind,
        "application": sandbox.config["app_name"],
        "data_access_expires_at": epoch(record.grant.data_access_expires_at),
        "expires_at": epoch(record.expires_at),
        "is_valid": subcode is None,
        "issued_at": epoch(record.issued_at),
        "scopes": sorted(record.grant.granted),
        "granular_scopes": _granular(sandbox, record),
        "user_id": record.user_id,
    }
    if record.kind == "PAGE":
        data["profile_id"] = record.page_id
    if subcode is not None:
        data["error"] = {
            "code": 190,
            "message": auth.token_message(sandbox, subcode, record, now),
            "subcode": subcode,
        }
    return {"data": data}
