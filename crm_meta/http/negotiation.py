"""One rule for "does this caller want HTML or JSON", for the error pages and the OAuth callback."""

from __future__ import annotations

from flask import request

HTML, JSON = "text/html", "application/json"


def preferred() -> str | None:
    """"html" or "json" when the request's Accept ranks one strictly above the other; None on a
    tie (`*/*`, no header), where the caller's own default applies."""
    accept = request.accept_mimetypes
    html, json = accept[HTML], accept[JSON]
    if html > json:
        return "html"
    if json > html:
        return "json"
    return None
