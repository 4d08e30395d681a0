"""The proxy's second line of defence: whatever Meta answered, no token goes back to a service.

crm_meta.meta.exposure refuses the calls that would read a token; this strips any that still
comes back: keys named like a token or secret (at any depth, in any list), token-looking values
(Meta's tokens are long words starting with `EAA`; app tokens are `<app id>|<secret>`), token
and proof parameters of any URL (paging links, `metadata` connections), and headers carrying one.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TOKEN_KEY = re.compile(r"token|secret", re.IGNORECASE)
TOKEN_VALUE = re.compile(r"\bEAA[A-Za-z0-9_-]{32,}|\b\d{6,}\|[A-Za-z0-9_-]{16,}")
URL_SECRET = re.compile(r"(access_token|appsecret_proof|appsecret_time|client_secret)=", re.IGNORECASE)
_SECRET_PARAMS = {"access_token", "appsecret_proof", "appsecret_time", "client_secret"}
# Bytes that no answer without a token contains: most answers are passed without being parsed
# (an escaped ASCII letter could hide a key's name; accented letters, escaped too, do not count).
_ESCAPED_ASCII = re.compile(rb"\\u00[2-7]")
_RAW_SECRET = re.compile(rb"\bEAA[A-Za-z0-9_-]{32,}|\b\d{6,}\|[A-Za-z0-9_-]{16,}"
                         rb"|(access_token|appsecret_proof|client_secret)=[^&\s\"'<]*", re.IGNORECASE)
_DROP = object()


def escapes_ascii(raw: bytes) -> bool:
    """Whether a JSON body escapes an ASCII letter (`\\u0061`): a key's name could hide behind it
    from a byte search (accented letters, escaped too, do not count)."""
    return b"\\u00" in raw and _ESCAPED_ASCII.search(raw) is not None


def _maybe(raw: bytes) -> bool:
    lowered = raw.lower()
    return (b"token" in lowered or b"secret" in lowered or b"EAA" in raw or b"|" in raw
            or escapes_ascii(raw))


def body(raw: bytes, content_type: str) -> bytes:
    """Meta's body without a token anywhere (unchanged, byte for byte, when it had none)."""
    if not _maybe(raw):
        return raw
    if "json" in content_type:
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            payload = _DROP
        if payload is not _DROP:
            cleaned = _clean(payload)
            return raw if cleaned == payload else json.dumps(
                None if cleaned is _DROP else cleaned, ensure_ascii=False).encode()
    return _RAW_SECRET.sub(b"", raw)


def headers(found: dict[str, str]) -> dict[str, str]:
    """The headers that carry no token."""
    return {name: value for name, value in found.items() if not _carries_token(value)}


def _carries_token(value: str) -> bool:
    # Both patterns need one of these (an `EAA` token, an app token's `|`, a parameter's `=`):
    # most of Meta's headers (usage JSON, versions, trace ids) are passed without a search.
    if "EAA" not in value and "|" not in value and "=" not in value:
        return False
    return TOKEN_VALUE.search(value) is not None or URL_SECRET.search(value) is not None


def _clean(node: object) -> object:
    """A JSON value without its tokens (_DROP: drop it whole)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if TOKEN_KEY.search(key):
                continue
            value = _clean(value)
            if value is not _DROP:
                out[key] = value
        return out
    if isinstance(node, list):
        return [item for item in (_clean(value) for value in node) if item is not _DROP]
    if isinstance(node, str):
        return _string(node)
    return node


def _string(value: str) -> object:
    if URL_SECRET.search(value):
        parts = urlsplit(value)
        kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                if k.lower() not in _SECRET_PARAMS]
        value = urlunsplit(parts._replace(query=urlencode(kept)))
        if URL_SECRET.search(value):
            return _DROP
    return _DROP if TOKEN_VALUE.search(value) else value
