"""Liveness, readiness and Prometheus metrics."""

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from crm_meta import monitoring
from crm_meta.extensions import db
from crm_meta.metrics import StateCollector, exposition
from crm_meta.runtime import now

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="unavailable", database=False), 503
    return jsonify(status="ok", database=True)


@bp.get("/metrics")
def metrics():
    config = current_app.config
    monitoring.check_access(token=config["METRICS_TOKEN"], remote_addr=request.remote_addr,
                            authorization=request.headers.get("Authorization"))
    state = monitoring.read_state(now=now(), required=config["META_SCOPES"],
                                  version=config["META_GRAPH_API_VERSION"])
    return Response(exposition(StateCollector(state)), mimetype=CONTENT_TYPE_LATEST)
