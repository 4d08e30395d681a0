"""CRM Ventas' own Meta panel (`MetaConnectionPanel.tsx`): `/admin/meta/*`, its shapes, with the
same edge checks (admin token, origins, CSRF), roles and CORS as the CRM's other API routes."""

from flask import Blueprint

from crm_meta.auth.edge import edge_guard
from crm_meta.http.extensions import csrf

bp = Blueprint("channels", __name__, url_prefix="/admin/meta")
csrf.exempt(bp)  # bearer or the CRM's header from an allowed origin: auth.edge decides
bp.before_request(edge_guard())

from crm_meta.channels import views  # noqa: E402,F401  (routes register on import)
