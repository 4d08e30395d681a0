"""Who is calling: token lookup, Meta's 190 errors, app tokens and appsecret_proof."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from .errors import TOKEN_MESSAGES, GraphRefusal, token_error
from .tokens import TokenRecord

PROOF_MESSAGE = "Invalid appsecret_proof provided in the API argument"
PROOF_MISSING = "API calls from the server require an appsecret_proof argument"
PROOF_WINDOW_SECONDS = 300
_CLOCK_SKEW_SECONDS = 60
_TIME_FORMAT = "%A, %d-%b-%y %H:%M:%S UTC"


def token_message(sandbox, subcode: int, record: TokenRecord | None, now: datetime) -> str:
    """Meta's text for a 190 subcode."""
    expired = record.expires_at if record is not None and record.expires_at else now
    return TOKEN_MESSAGES[subcode].format(
        app_id=sandbox.app_id,
        expired=expired.strftime(_TIME_FORMAT),
        now=now.strftime(_TIME_FORMAT),
    )


def is_app_token(sandbox, token: str) -> bool:
    """APP_ID|APP_SECRET, or an app token this sandbox issued (client_credentials)."""
    return token == f"{sandbox.app_id}|{sandbox.app_secret}" or token in sandbox.store.app_tokens


def lookup(sandbox, token: str, now: datetime) -> TokenRecord:
    """The record of a usable user, system-user or page token, else a 190 GraphRefusal."""
    record = sandbox.store.tokens.get(token)
    if record is None:
        if token.startswith("EAA"):
            raise token_error(467, token_message(sandbox, 467, None, now))
        raise token_error(None, "Invalid OAuth access token - Cannot parse access token")
    subcode = sandbox.store.problem(record, now)
    if subcode is not None:
        raise token_error(subcode, token_message(sandbox, subcode, record, now))
    return record


def authenticate(sandbox, token: str | None, params: dict[str, str], about_me: bool, now):
    """Resolve the caller's token for a node call and enforce appsecret_proof."""
    if not token:
        if about_me:
            raise GraphRefusal(
                "An active access token must be used to query information about the current user.",
                2500,
            )
        raise GraphRefusal("An access token is required to request this resource.", 104)
    if is_app_token(sandbox, token):
        if about_me:
            raise GraphRefusal(
                "An active access token must be used to query information about the current user.",
                2500,
            )
        return None  # app tokens see no user assets; callers answer "unsupported"
    record = lookup(sandbox, token, now)
    check_proof(sandbox, token, params, now)
    return record


def proof_for(app_secret: str, token: str, timestamp: int | None = None) -> str:
    """hex HMAC-SHA256 of the token (or of "token|time") keyed by the app secret."""
    message = token if timestamp is None else f"{token}|{timestamp}"
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def check_proof(sandbox, token: str, params: dict[str, str], now: datetime) -> None:
    """A proof must be right when sent, and must be sent when the app requires it."""
    proof = params.get("appsecret_proof")
    if not proof:
        if sandbox.config["require_appsecret_proof"]:
            raise GraphRefusal(PROOF_MISSING, 100, type_="GraphMethodException")
        return
    timestamp = None
    raw_time = params.get("appsecret_time")
    if raw_time:
        try:
            timestamp = int(raw_time)
        except ValueError:
            raise GraphRefusal(PROOF_MESSAGE, 100, type_="GraphMethodException") from None
        age = now.timestamp() - timestamp
        if age > PROOF_WINDOW_SECONDS or age < -_CLOCK_SKEW_SECONDS:
            raise GraphRefusal(PROOF_MESSAGE, 100, type_="GraphMethodException")
    expected = proof_for(sandbox.app_secret, token, timestamp)
    if not hmac.compare_digest(proof.lower().encode(), expected.encode()):
        raise GraphRefusal(PROOF_MESSAGE, 100, type_="GraphMethodException")
