"""Checks at the API's edge for the CRM's browser frontend: admin token, origins, CSRF."""

from __future__ import annotations

import hmac
import re
from urllib.parse import urlsplit

from flask import Request, current_app, request
from flask_login import current_user

from crm_meta.auth.principal import cookie_token
from crm_meta.http import params
from crm_meta.http.errors import Forbidden, NotAuthenticated
from crm_meta.http.extensions import csrf
from crm_meta.infra import dbreads

# Headers a cross-site form or link cannot send; a cross-origin script can only after a CORS
# preflight, which only CRM_ORIGINS pass. CRM Ventas' client sends both on every call.
CRM_HEADERS = ("X-Tenant-ID", "X-Admin-Token")
# Headers the CRM's frontend sends, answered in CORS preflights.
CORS_HEADERS = ["Authorization", "Content-Type", "Accept", "Accept-Language", *CRM_HEADERS]
# Blueprints the CRM's frontend calls cross-origin: the JSON API, and CRM Ventas' own panel
# (/admin/meta/*, whose disconnect is a DELETE).
CORS_BLUEPRINTS = ("api.", "channels.")


def check_admin_token() -> None:
    """When CRM_ADMIN_TOKEN is set, the call must carry it as X-Admin-Token (constant time)."""
    expected = current_app.config["CRM_ADMIN_TOKEN"]
    if not expected:
        return
    given = request.headers.get("X-Admin-Token")
    if not given:
        raise NotAuthenticated("This call needs the X-Admin-Token header",
                               code="admin_token_required")
    # Bytes: compare_digest refuses non-ASCII text, and a header may hold any byte.
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
        raise NotAuthenticated("The X-Admin-Token header is not valid", code="invalid_admin_token")


def own_origin() -> str:
    """This service's public origin (API_BASE_URL's, else the request's)."""
    parts = urlsplit(current_app.config["API_BASE_URL"] or request.host_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origin(origin: str) -> bool:
    allowed = {o.lower() for o in current_app.config["CRM_ORIGINS"]} | {own_origin()}
    return origin.lower() in allowed


def _by_cookie() -> bool:
    """Whether the caller's credential travels by itself in a cookie (session or the CRM's JWT)."""
    if request.headers.get("Authorization", "").strip():
        return False
    return current_user.is_authenticated or cookie_token() is not None


def _crm_header_sent() -> bool:
    return any(request.headers.get(name) for name in CRM_HEADERS)


def _check_origin() -> None:
    origin = request.headers.get("Origin")
    if origin is not None and not allowed_origin(origin):
        raise Forbidden("Requests from this origin are not accepted", code="origin_not_allowed")


def protect_cookie_write(*, session_csrf) -> None:
    """A write authenticated by a cookie: the CRM's header from an allowed origin, or (for our
    own pages' session) Flask-WTF's token; a bearer header needs neither."""
    if not _by_cookie():
        return
    _check_origin()
    if _crm_header_sent():
        return
    if current_user.is_authenticated:
        session_csrf()
        return
    raise Forbidden("A write with the CRM's cookie must carry X-Tenant-ID or X-Admin-Token",
                    code="csrf_header_required")


def protect_cookie_get() -> None:
    """A GET that changes state, authenticated by a cookie: same-origin or the CRM's header.

    SameSite=Lax cookies ride along on a cross-site top-level navigation; such a navigation
    can carry neither a custom header nor `Sec-Fetch-Site: same-origin`.
    """
    if not _by_cookie():
        return
    _check_origin()
    if _crm_header_sent() or request.headers.get("Sec-Fetch-Site") == "same-origin":
        return
    raise Forbidden("Open this from the CRM or from this site's own pages",
                    code="cross_site_request")


def exact(origin: str) -> re.Pattern:
    """A pattern matching one origin exactly (Flask-CORS reads plain strings as regexes
    when they hold regex characters)."""
    return re.compile(re.escape(origin) + r"\Z", re.IGNORECASE)


def init_cors(app, public: set[str]) -> None:
    """CORS with credentials for the CRM's frontend on the API's routes (none when CRM_ORIGINS
    is empty); other paths, and other origins, get no CORS header at all."""
    origins = app.config["CRM_ORIGINS"]
    if not origins:
        return
    from flask_cors import CORS

    paths = sorted({rule.rule for rule in app.url_map.iter_rules()
                    if rule.endpoint.startswith(CORS_BLUEPRINTS) and rule.endpoint not in public})
    resources = {re.escape(path) + r"\Z": {} for path in paths}
    CORS(app, resources=resources, origins=[exact(o) for o in origins], supports_credentials=True,
         allow_headers=CORS_HEADERS, methods=["GET", "POST", "DELETE", "OPTIONS"], max_age=600,
         vary_header=True)


def edge_guard(public=frozenset(), state_changing_gets=None, reads=frozenset()):
    """The before_request hook of a JSON front end (the API, CRM Ventas' panel): the admin
    token, then, for calls that change state, the cookie caller's CSRF checks; read-only GETs
    in `reads` run without a transaction. `state_changing_gets`: endpoint -> the query flag that
    makes a GET change something (None: always)."""
    state_changing_gets = state_changing_gets or {}

    def session_csrf() -> None:
        if current_app.config["WTF_CSRF_ENABLED"]:
            csrf.protect()

    def changes_state(req: Request) -> bool:
        if req.method in {"POST", "PUT", "PATCH", "DELETE"}:
            return True
        if req.endpoint not in state_changing_gets:
            return False
        flag = state_changing_gets[req.endpoint]
        return flag is None or params.flag(req.args.get(flag))

    def guard_the_edge():
        req = request._get_current_object()  # one context lookup for the hook
        # Preflights carry no credentials and no custom headers: Flask-CORS answers them.
        if req.method == "OPTIONS" or req.endpoint in public:
            return
        check_admin_token()
        if not changes_state(req):
            if req.endpoint in reads:
                dbreads.read_only()
            return
        if req.method == "GET":
            protect_cookie_get()
        else:
            protect_cookie_write(session_csrf=session_csrf)

    return guard_the_edge
