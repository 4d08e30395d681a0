"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="


def sign(app_secret: str, body: bytes) -> str:
    """The header's value for these exact bytes (what Meta, and the sandbox, send)."""
    return PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(app_secret: str, body: bytes, header: str | None) -> bool:
    """The raw bytes match the header, compared in constant time; no secret, no pass."""
    if not app_secret or not header:
        return False
    given = header.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(sign(app_secret, body).encode(), given)
