"""The drop-in Graph endpoint: `<API_BASE_URL>/graph/<version>/<path>`, Graph's own paths and
conventions, opened by a gateway token (`cmg_...`) that alone says which tenant."""

from flask import Blueprint

from crm_meta.http.extensions import csrf

bp = Blueprint("gateway", __name__, url_prefix="/graph")
csrf.exempt(bp)  # no cookie ever authenticates here: a gateway token or nothing


@bp.after_request
def never_cache(response):
    # Tenants' Graph data: no cache may keep it. (Refusals read like Meta's errors: http.graph_errors.)
    response.headers["Cache-Control"] = "no-store"
    return response


from crm_meta.gateway import views  # noqa: E402,F401  (routes register on import)
