"""Endpoints Meta calls: deauthorize and data deletion (required for app review)."""

from flask import Blueprint

from crm_meta.http.extensions import csrf

bp = Blueprint("callbacks", __name__)
csrf.exempt(bp)  # Meta posts a signed_request, which is verified instead

from crm_meta.callbacks import views  # noqa: E402,F401  (routes register on import)
