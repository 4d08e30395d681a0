"""Meta's signed_request (deauthorize and data-deletion callbacks): verify before trusting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime

from crm_meta.errors import AppError

MAX_AGE_SECONDS = 24 * 3600
MAX_SKEW_SECONDS = 300


class InvalidSignedRequest(AppError):
    status, code, message = 400, "invalid_signed_request", "Invalid signed_request"


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse(signed_request: str | None, app_secret: str, now: datetime) -> dict:
    """The payload of a genuine, recent signed_request; InvalidSignedRequest otherwise."""
    if not signed_request or len(signed_request) > 4096 or signed_request.count(".") != 1:
        raise InvalidSignedRequest()
    encoded_sig, payload = signed_request.split(".", 1)
    try:
        signature = _b64decode(encoded_sig)
        data = json.loads(_b64decode(payload))
    except (ValueError, TypeError):
        raise InvalidSignedRequest() from None
    if not isinstance(data, dict) or str(data.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise InvalidSignedRequest()
    expected = hmac.new(app_secret.encode(), payload.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidSignedRequest()
    issued_at = data.get("issued_at")
    if issued_at is not None:
        try:
            age = now.timestamp() - float(issued_at)
        except (TypeError, ValueError):
            raise InvalidSignedRequest() from None
        if age > MAX_AGE_SECONDS or age < -MAX_SKEW_SECONDS:
            raise InvalidSignedRequest("The signed_request is too old")
    if not str(data.get("user_id") or "").isdigit():
        raise InvalidSignedRequest()
    return data
