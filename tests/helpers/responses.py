"""Reading the product's answers: the contract's error envelope, a rendered page's CSRF token."""

from __future__ import annotations

import re
from datetime import datetime

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    """The contract's error envelope, with that status (and that code when given)."""
    assert response.status_code == status, response.data[:500]
    assert response.mimetype == "application/json", response.data[:500]
    body = response.get_json()
    assert set(body) == {"success", "detail", "error", "timestamp"}, body
    assert body["success"] is False
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["error"] == {"code": body["error"]["code"], "message": body["detail"]}
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["error"]["code"]), body
    stamp = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def csrf_token_from(html: bytes | str) -> str:
    """The value of a rendered page's `csrf_token` hidden input."""
    if isinstance(html, bytes):
        html = html.decode()
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token input on the page"
    return match.group(1) or match.group(2)
