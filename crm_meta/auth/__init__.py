"""Authentication: browser sessions, bearer JWTs, the current tenant and role checks."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from crm_meta.auth import views  # noqa: E402,F401  (routes register on import)
