"""The JSON API of the contract (the CRM frontend's client depends on it)."""

from flask import Blueprint, request

from crm_meta.extensions import csrf

bp = Blueprint("api", __name__)
csrf.exempt(bp)


@bp.before_request
def protect_session_writes():
    # Bearer-token callers cannot be forged by another site; cookie sessions need CSRF.
    if request.method in {"POST", "PUT", "PATCH", "DELETE"} and "Authorization" not in request.headers:
        csrf.protect()


from crm_meta.api import views  # noqa: E402,F401  (routes register on import)
