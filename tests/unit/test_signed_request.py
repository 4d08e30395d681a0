"""Meta's signed_request: signature, algorithm and age are all checked."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from crm_meta.meta.signed_request import InvalidSignedRequest, parse

SECRET = "app-secret"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def sign(payload: dict, secret: str = SECRET) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    sig = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(sig).decode().rstrip("=") + "." + encoded


def payload(**extra):
    return {"algorithm": "HMAC-SHA256", "issued_at": int(NOW.timestamp()), "user_id": "1234", **extra}


def test_valid_request_parses():
    assert parse(sign(payload()), SECRET, NOW)["user_id"] == "1234"


@pytest.mark.parametrize("signed", [
    None, "", "nodot", "a.b.c",
    sign(payload(), secret="other-secret"),
    sign(payload(algorithm="HMAC-SHA1")),
    sign(payload(issued_at=int(NOW.timestamp()) - 3 * 24 * 3600)),
    sign(payload(issued_at=int(NOW.timestamp()) + 3600)),
    sign(payload(user_id="../../etc")),
    "!!!." + "???",
])
def test_invalid_requests_are_refused(signed):
    with pytest.raises(InvalidSignedRequest):
        parse(signed, SECRET, NOW)
