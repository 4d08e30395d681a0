"""Meta's signed_request: signature, algorithm and age are all checked."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from crm_meta.meta.signed_request import InvalidSignedRequest, parse
from tests.helpers.sandbox import encode, sign

SECRET = "app-secret"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def payload(**extra):
    return {"algorithm": "HMAC-SHA256", "issued_at": int(NOW.timestamp()), "user_id": "1234", **extra}


def test_valid_request_parses():
    assert parse(sign(payload(), SECRET), SECRET, NOW)["user_id"] == "1234"


@pytest.mark.parametrize("signed", [
    None, "", "nodot", "a.b.c",
    sign(payload(), "other-secret"),
    sign(payload(algorithm="HMAC-SHA1"), SECRET),
    sign(payload(issued_at=int(NOW.timestamp()) - 3 * 24 * 3600), SECRET),
    sign(payload(issued_at=int(NOW.timestamp()) + 3600), SECRET),
    sign(payload(user_id="../../etc"), SECRET),
    "!!!." + "???",
])
def test_invalid_requests_are_refused(signed):
    with pytest.raises(InvalidSignedRequest):
        parse(signed, SECRET, NOW)


def test_the_signature_is_checked_before_the_payload_is_parsed(monkeypatch):
    """An anonymous caller's payload is never parsed: a forged one never reaches json.loads."""
    parsed = []
    monkeypatch.setattr(json, "loads", lambda *a, **k: parsed.append(a) or {})
    with pytest.raises(InvalidSignedRequest):
        parse(encode(b"not-the-signature") + "." + encode(b'{"user_id": "1"}'), SECRET, NOW)
    assert parsed == []


def test_an_unsigned_deeply_nested_payload_is_refused_cleanly():
    nested = encode(b"[" * 2500 + b"]" * 2500)[:4000]
    with pytest.raises(InvalidSignedRequest):
        parse(encode(b"x" * 32) + "." + nested, SECRET, NOW)


def test_a_signed_deeply_nested_payload_is_refused_cleanly():
    payload_part = encode(b"[" * 2500 + b"]" * 2500)[:4000]
    sig = hmac.new(SECRET.encode(), payload_part.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidSignedRequest):
        parse(encode(sig) + "." + payload_part, SECRET, NOW)


@pytest.mark.parametrize("issued_at", [None, "1700000000", True, 10**400, float("nan")],
                         ids=["missing", "string", "bool", "huge", "nan"])
def test_issued_at_is_required_and_a_number(issued_at):
    body = payload()
    if issued_at is None:
        del body["issued_at"]
    else:
        body["issued_at"] = issued_at
    with pytest.raises(InvalidSignedRequest):
        parse(sign(body, SECRET), SECRET, NOW)
