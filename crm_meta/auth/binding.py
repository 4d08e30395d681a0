"""The cookie that binds an OAuth state to the browser that asked for it.

A fresh value on every start: a value the browser presents (perhaps planted by a same-site
host or a script) is never taken over. Where cookies are Secure (https, always in production)
the name carries the `__Host-` prefix, so browsers accept it only from this host, Secure, with
`Path=/` and no Domain; on http://localhost (development) it is the plain name.
"""

import secrets

from flask import current_app, request

COOKIE = "crm_meta_oauth"
HOST_COOKIE = "__Host-" + COOKIE
MAX_AGE = 600


def cookie_name() -> str:
    """The binding cookie's name here: `__Host-` prefixed when cookies are Secure."""
    return HOST_COOKIE if current_app.config["SESSION_COOKIE_SECURE"] else COOKIE


def browser_secret() -> str | None:
    value = request.cookies.get(cookie_name())
    return value if value and 20 <= len(value) <= 100 else None


def new_browser_secret() -> str:
    """A fresh binding value for this start (never the one the browser presents)."""
    return secrets.token_urlsafe(32)


def attach(response, value: str):
    """Set the binding cookie: HttpOnly, SameSite=Lax (sent on Meta's top-level redirect),
    Path=/ and no Domain (what `__Host-` requires), Secure when cookies are."""
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    response.set_cookie(cookie_name(), value, max_age=MAX_AGE, httponly=True, samesite="Lax",
                        secure=secure, path="/")
    return response
