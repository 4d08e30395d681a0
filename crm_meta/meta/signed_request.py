"""Meta's signed_request (deauthorize and data-deletion callbacks): verify before trusting."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from datetime import datetime

from crm_meta.meta.errors import InvalidSignedRequest
from crm_meta.meta.types import JsonObject

MAX_AGE_SECONDS = 24 * 3600
MAX_SKEW_SECONDS = 300


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse(signed_request: str | None, app_secret: str, now: datetime) -> JsonObject:
    """The payload of a genuine, recent signed_request; InvalidSignedRequest otherwise."""
    if not signed_request or len(signed_request) > 4096 or signed_request.count(".") != 1:
        raise InvalidSignedRequest()
    encoded_sig, payload = signed_request.split(".", 1)
    # The signature first: nothing an anonymous caller sends is parsed before it is verified.
    try:
        signature = _b64decode(encoded_sig)
        signed = payload.encode("ascii")
    except (ValueError, binascii.Error):
        raise InvalidSignedRequest() from None
    expected = hmac.new(app_secret.encode(), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidSignedRequest()
    try:
        data = json.loads(_b64decode(payload))
    except (ValueError, TypeError, RecursionError):
        raise InvalidSignedRequest() from None
    if not isinstance(data, dict) or str(data.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise InvalidSignedRequest()
    issued_at = data.get("issued_at")  # Meta always sends it; without it a replay never ages
    if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
        raise InvalidSignedRequest()
    try:
        age = now.timestamp() - float(issued_at)
    except OverflowError:
        raise InvalidSignedRequest() from None
    if not math.isfinite(age):
        raise InvalidSignedRequest()
    if age > MAX_AGE_SECONDS or age < -MAX_SKEW_SECONDS:
        raise InvalidSignedRequest("The signed_request is too old")
    if not str(data.get("user_id") or "").isdigit():
        raise InvalidSignedRequest()
    return data
