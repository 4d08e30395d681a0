"""The marketing hub and the connection wizard (server-rendered pages)."""

from flask import Blueprint

bp = Blueprint("web", __name__)

from crm_meta.web import audit, channel_views, views  # noqa: E402,F401  (routes register on import)
