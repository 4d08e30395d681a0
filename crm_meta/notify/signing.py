"""The webhook's signature: HMAC-SHA256 of the raw body with the shared secret."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-CRM-Meta-Signature"  # "sha256=<hex HMAC-SHA256 of the raw body>"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: constant-time comparison of the signature."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)
