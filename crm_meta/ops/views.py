"""Liveness, readiness and Prometheus metrics."""

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from crm_meta.auth.ratelimits import in_fallback
from crm_meta.http.errors import DatabaseUnavailable
from crm_meta.infra.database import db
from crm_meta.infra.metrics import StateCollector, exposition
from crm_meta.ops import monitoring
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
    config = current_app.config
    monitoring.check_access(token=config["METRICS_TOKEN"], socket_addr=socket_address(),
                            authorization=request.headers.get("Authorization"),
                            forwarded=any(h in request.headers for h in monitoring.FORWARDED_HEADERS),
                            loopback_allowed=config["METRICS_ALLOW_LOOPBACK"])
    state = monitoring.read_state(now=now(), required=config["META_SCOPES"],
                                  version=config["META_GRAPH_API_VERSION"],
                                  credential=runtime().graph.credential)
    return Response(exposition(StateCollector(state)), mimetype=CONTENT_TYPE_LATEST)


def socket_address() -> str | None:
    """The peer of this request's socket: REMOTE_ADDR as the server set it, before ProxyFix
    replaced it with a forwarded value."""
    original = request.environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR", request.environ.get("REMOTE_ADDR"))


def _redis_state() -> dict:
    """{"redis": "ok" | "degraded"} when REDIS_URL is set, else nothing."""
    if not current_app.config.get("REDIS_URL"):
        return {}
    limiter = runtime().limiter
    if limiter.initialized and limiter.enabled and in_fallback(limiter):
        return {"redis": "degraded"}
    # A ping through the limiter's own connection pool (its timeouts: REDIS_TIMEOUT).
    return {"redis": "ok" if limiter.storage.check() else "degraded"}
