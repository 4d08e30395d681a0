"""The JSON API of the contract (the CRM frontend's client depends on it)."""

from flask import Blueprint, current_app, request

from crm_meta.auth import edge
from crm_meta.http.extensions import csrf
from crm_meta.infra import dbreads

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


def _session_csrf() -> None:
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()


def _changes_state() -> bool:
    if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
        return True
    if request.endpoint not in STATE_CHANGING_GETS:
        return False
    flag = STATE_CHANGING_GETS[request.endpoint]
    return flag is None or request.args.get(flag) in {"1", "true"}


@bp.before_request
def guard_the_edge():
    # Preflights carry no credentials and no custom headers: Flask-CORS answers them.
    if request.method == "OPTIONS" or request.endpoint in PUBLIC:
        return
    edge.check_admin_token()
    if not _changes_state():
        if request.endpoint in READS:
            dbreads.read_only()
        return
    if request.method == "GET":
        edge.protect_cookie_get()
    else:
        edge.protect_cookie_write(session_csrf=_session_csrf)


from crm_meta.api import openapi, views  # noqa: E402,F401  (routes register on import)
