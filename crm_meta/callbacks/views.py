"""Meta's deauthorize and data-deletion callbacks, and the public deletion status page."""

import secrets

from flask import current_app, jsonify, render_template, request, url_for

from crm_meta.callbacks import bp
from crm_meta.http import negotiation
from crm_meta.http.errors import NotFound
from crm_meta.infra.database import db
from crm_meta.meta import connections, signed_request
from crm_meta.models import DataDeletionRequest, audit
from crm_meta.models.types import utcnow
from crm_meta.runtime import now


def _verified() -> dict:
    return signed_request.parse(request.form.get("signed_request"),
                                current_app.config["META_APP_SECRET"], now())


@bp.post("/crm/meta/deauthorize")
def deauthorize():
    payload = _verified()
    tenants = connections.drop_meta_user(meta_user_id=str(payload["user_id"]),
                                         action="meta.deauthorize")
    if not tenants:
        audit.record("meta.deauthorize", actor="meta", outcome="no_connection")
    db.session.commit()
    return jsonify(success=True)


@bp.post("/crm/meta/data-deletion")
def data_deletion():
    payload = _verified()
    tenants = connections.drop_meta_user(meta_user_id=str(payload["user_id"]),
                                         action="meta.data_deletion", forget=True)
    code = secrets.token_hex(8)
    db.session.add(DataDeletionRequest(confirmation_code=code, status="completed",
                                       connections_deleted=len(tenants), completed_at=utcnow()))
    audit.record("meta.data_deletion", actor="meta", details={"confirmation_code": code,
                                                              "connections": len(tenants)})
    db.session.commit()
    base = current_app.config["API_BASE_URL"]
    path = url_for("callbacks.deletion_status", confirmation_code=code)
    url = f"{base}{path}" if base else url_for("callbacks.deletion_status",
                                               confirmation_code=code, _external=True)
    return jsonify(url=url, confirmation_code=code)


@bp.get("/crm/meta/data-deletion/<confirmation_code>")
def deletion_status(confirmation_code: str):
    found = None
    if confirmation_code.isalnum() and len(confirmation_code) <= 32:
        found = db.session.get(DataDeletionRequest, confirmation_code)
    if found is None:
        raise NotFound("No deletion request with this confirmation code")
    if negotiation.preferred() == "json":
        return jsonify(confirmation_code=found.confirmation_code, status=found.status,
                       requested_at=found.created_at.isoformat())
    return render_template("callbacks/deletion_status.html", deletion=found)
