"""The cookie that binds an OAuth state to the browser that asked for it."""

import secrets

from flask import current_app, request

COOKIE = "crm_meta_oauth"
MAX_AGE = 600


def browser_secret() -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value and 20 <= len(value) <= 100 else None


def ensure_browser_secret() -> str:
    """This browser's binding value (a fresh one when it has none)."""
    return browser_secret() or secrets.token_urlsafe(32)


def attach(response, value: str):
    """Set the binding cookie: HttpOnly, SameSite=Lax (sent on Meta's top-level redirect)."""
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"],
                        path="/crm/")
    return response
