"""Liveness, readiness and Prometheus metrics."""

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import load_only

from crm_meta.errors import DatabaseUnavailable
from crm_meta.extensions import db
from crm_meta.meta import app_health
from crm_meta.meta.status import effective_status
from crm_meta.metrics import ConnectionCollector, exposition
from crm_meta.models import MetaToken, Tenant
from crm_meta.ratelimits import in_fallback
from crm_meta.runtime import now, runtime

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """503 while the database does not answer; Redis down only degrades (limits count in
    process), so the instance stays in rotation and says so."""
    redis_state = _redis_state()
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        response = jsonify(status="unavailable", database=False, **redis_state)
        response.status_code = 503
        response.headers["Retry-After"] = str(DatabaseUnavailable.retry_seconds)
        return response
    degraded = redis_state.get("redis") == "degraded"
    return jsonify(status="degraded" if degraded else "ok", database=True, **redis_state)


@bp.get("/metrics")
def metrics():
    moment = now()
    required = current_app.config["META_SCOPES"]
    # Only the columns a status needs: the discovered assets (large JSON) stay in the database.
    status_columns = load_only(
        MetaToken.status, MetaToken.expires_at, MetaToken.data_access_expires_at,
        MetaToken.throttled_until, MetaToken.scopes, MetaToken.declined_scopes,
        MetaToken.login_config_id, raiseload=True)
    rows = db.session.execute(db.select(Tenant.slug, MetaToken).join(
        MetaToken, MetaToken.tenant_id == Tenant.id).options(status_columns)).all()
    collector = ConnectionCollector(
        [(slug, effective_status(row, moment, required), row.expires_at) for slug, row in rows],
        moment, app_misconfigured=app_health.is_misconfigured(runtime().graph.credential))
    return Response(exposition(collector), mimetype=CONTENT_TYPE_LATEST)


def _redis_state() -> dict:
    """{"redis": "ok" | "degraded"} when REDIS_URL is set, else nothing."""
    if not current_app.config.get("REDIS_URL"):
        return {}
    limiter = current_app.extensions["crm_meta_limiter"]
    if limiter.initialized and limiter.enabled and in_fallback(limiter):
        return {"redis": "degraded"}
    # A ping through the limiter's own connection pool (its timeouts: REDIS_TIMEOUT).
    return {"redis": "ok" if limiter.storage.check() else "degraded"}
