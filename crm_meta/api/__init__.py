"""The JSON API of the contract (the CRM frontend's client depends on it)."""

from flask import Blueprint

from crm_meta.auth import edge
from crm_meta.http.extensions import csrf

bp = Blueprint("api", __name__)
csrf.exempt(bp)
# Meta sends the browser back here: it carries no header of ours and changes nothing by itself
# (the state and the browser-binding cookie protect it).
PUBLIC = {"api.meta_callback"}
# GETs that change something (the CRM's client calls them by GET), with the query that makes
# them do so (None: always).
STATE_CHANGING_GETS = {"api.meta_auth_url": None, "api.meta_test_connection": None,
                       "api.meta_portfolios": "refresh"}
# GETs that only read the database (unless they change state, above): they run without a
# transaction, so the statements they make are their only round trips.
READS = {"api.token_status", "api.meta_portfolios", "api.meta_accounts"}


bp.before_request(edge.edge_guard(PUBLIC, STATE_CHANGING_GETS, READS))


from crm_meta.api import openapi, views  # noqa: E402,F401  (routes register on import)
