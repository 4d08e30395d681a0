"""Thin views for CRM Ventas' panel: parse, call one service, answer with the envelope."""

from flask import current_app, g, request

from crm_meta.auth.decorators import admin_required, member_required
from crm_meta.auth.principal import current_principal
from crm_meta.channels import bp
from crm_meta.connect import flow, payloads
from crm_meta.http.envelope import ok
from crm_meta.http.errors import ValidationFailed
from crm_meta.meta import channel_payloads, channels, connections, exchange
from crm_meta.runtime import now, runtime

MAX_ASSETS = 500


def _who() -> channels.Who:
    return channels.Who(actor=current_principal().actor, ip=request.remote_addr)


@bp.post("/connect")
@admin_required
def connect():
    """The code FB.login gave the panel: exchanged with an empty redirect_uri (an SDK code)."""
    body = request.get_json(silent=True)
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code.strip() or len(code) > 2048:
        raise ValidationFailed("Send JSON with the code that FB.login returned", code="validation_error")
    who = _who()
    grant = exchange.CodeGrant(tenant_id=g.tenant.id, code=code.strip(),
                               redirect_uri=exchange.SDK_REDIRECT_URI, actor=who.actor, ip=who.ip,
                               via="sdk")
    row = exchange.connect(flow.parts(), grant, flow.connect_settings())
    return ok(channel_payloads.connected_summary(row, now(), current_app.config["META_SCOPES"]))


@bp.get("/status")
@member_required
def status():
    row = runtime().store.for_tenant(g.tenant.id)
    return ok(channel_payloads.status(row, now(), current_app.config["META_SCOPES"]))


def _asset_ids() -> list[str]:
    body = request.get_json(silent=True)
    raw = body.get("asset_ids") if isinstance(body, dict) else None
    # Ids may arrive as strings or numbers; the panel sends the whole chosen set, never empty.
    if (not isinstance(raw, list) or not raw or len(raw) > MAX_ASSETS
            or not all(isinstance(i, str | int) and not isinstance(i, bool) for i in raw)):
        raise ValidationFailed("Send JSON with asset_ids: a non-empty list of asset ids",
                               code="validation_error")
    ids = [str(i).strip() for i in raw]
    if not all(0 < len(i) <= 64 for i in ids):
        raise ValidationFailed("Each asset id is a string of 1 to 64 characters", code="validation_error")
    return list(dict.fromkeys(ids))


@bp.post("/select-channels")
@admin_required
def select_channels():
    ids = _asset_ids()
    row = connections.require(runtime().store, g.tenant.id)
    return ok(channels.select(flow.parts(), row, ids, _who()))


@bp.delete("/disconnect")
@admin_required
def disconnect():
    result = flow.disconnect(current_principal())
    message = "Meta account disconnected: webhooks unsubscribed, access revoked at Meta."
    if not result.revoked_at_meta:
        message = "Meta account disconnected."
    return ok({**payloads.disconnected(result, unsubscribed=True), "message": message})
