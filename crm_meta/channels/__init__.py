"""CRM Ventas' own Meta panel (`MetaConnectionPanel.tsx`): `/admin/meta/*`, its shapes, with the
same edge checks (admin token, origins, CSRF), roles and CORS as the CRM's other API routes."""

from flask import Blueprint, current_app, request

from crm_meta.auth import edge
from crm_meta.http.extensions import csrf

bp = Blueprint("channels", __name__, url_prefix="/admin/meta")
csrf.exempt(bp)  # bearer or the CRM's header from an allowed origin: auth.edge decides


def _session_csrf() -> None:
    if current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect()


@bp.before_request
def guard_the_edge():
    """The API's rules: preflights pass (Flask-CORS answers them), X-Admin-Token when
    configured, and a write carried by a cookie needs the CRM's header from an allowed origin."""
    if request.method == "OPTIONS":
        return
    edge.check_admin_token()
    if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
        edge.protect_cookie_write(session_csrf=_session_csrf)


from crm_meta.channels import views  # noqa: E402,F401  (routes register on import)
