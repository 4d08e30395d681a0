"""The JSON API of the contract (the CRM frontend's client depends on it)."""

from flask import Blueprint, current_app, request

from crm_meta.extensions import csrf

bp = Blueprint("api", __name__)
csrf.exempt(bp)


@bp.before_request
def protect_session_writes():
    # Bearer-token callers cannot be forged by another site; cookie sessions need CSRF.
    if (request.method in {"POST", "PUT", "PATCH", "DELETE"}
            and not request.headers.get("Authorization", "").strip()
            and current_app.config.get("WTF_CSRF_ENABLED", True)):
        csrf.protect()


from crm_meta.api import openapi, views  # noqa: E402,F401  (routes register on import)
