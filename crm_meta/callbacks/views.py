"""Meta's deauthorize and data-deletion callbacks, and the public deletion status page."""

from flask import current_app, jsonify, render_template, request, url_for

from crm_meta.callbacks import bp
from crm_meta.http import negotiation
from crm_meta.http.errors import NotFound
from crm_meta.infra.i18n import N_
from crm_meta.meta import deletion, signed_request
from crm_meta.runtime import now


def _verified() -> dict:
    return signed_request.parse(request.form.get("signed_request"),
                                current_app.config["META_APP_SECRET"], now())


@bp.post("/crm/meta/deauthorize")
def deauthorize():
    deletion.deauthorize(str(_verified()["user_id"]))
    return jsonify(success=True)


@bp.post("/crm/meta/data-deletion")
def data_deletion():
    code = deletion.delete_data(str(_verified()["user_id"]))
    base = current_app.config["API_BASE_URL"]
    path = url_for("callbacks.deletion_status", confirmation_code=code)
    url = f"{base}{path}" if base else url_for("callbacks.deletion_status",
                                               confirmation_code=code, _external=True)
    return jsonify(url=url, confirmation_code=code)


@bp.get("/crm/meta/data-deletion/<confirmation_code>")
def deletion_status(confirmation_code: str):
    found = deletion.request_of(confirmation_code)
    if found is None:
        raise NotFound(N_("No deletion request with this confirmation code"))
    if negotiation.preferred() == "json":
        return jsonify(confirmation_code=found.confirmation_code, status=found.status,
                       requested_at=found.created_at.isoformat())
    return render_template("callbacks/deletion_status.html", deletion=found)
