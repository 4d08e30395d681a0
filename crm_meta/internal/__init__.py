"""The API of the CRM's other services: credentials and a Graph proxy, opened by service keys only."""

from flask import Blueprint

from crm_meta.http.extensions import csrf

bp = Blueprint("internal", __name__, url_prefix="/internal/meta")
csrf.exempt(bp)  # no cookie ever authenticates here: a service key in a header or nothing


@bp.after_request
def never_cache(response):
    # Credentials and tenants' Graph data: no proxy or client cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


from crm_meta.internal import views  # noqa: E402,F401  (routes register on import)
