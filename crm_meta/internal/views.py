"""Thin views of /internal/meta/...: authenticate the service, resolve the tenant, call one service."""

from __future__ import annotations

import json

from flask import Response, current_app, request, url_for

from crm_meta import notify
from crm_meta.envelope import ok
from crm_meta.errors import NotFound, ValidationFailed
from crm_meta.extensions import db
from crm_meta.internal import bp, keys
from crm_meta.meta import credentials, keepalive, proxy
from crm_meta.models import MetaToken, Tenant
from crm_meta.runtime import runtime, token_store

MAX_TENANT_ID = 2**31 - 1  # an integer column: a larger "id" names no tenant


def _connection(ref: str) -> tuple[int, MetaToken | None]:
    """The tenant (by numeric id, which an all-digit reference always is, or by slug) and its
    connection, in one query."""
    query = db.select(Tenant.id, MetaToken).outerjoin(MetaToken, MetaToken.tenant_id == Tenant.id)
    if ref.isascii() and ref.isdigit():
        found = db.session.execute(query.where(Tenant.id == int(ref))).first() \
            if int(ref) <= MAX_TENANT_ID else None
    else:
        found = db.session.execute(query.where(Tenant.slug == ref)).first() if len(ref) <= 64 else None
    if found is None:
        raise NotFound("No tenant with that id or slug", code="unknown_tenant")
    return found[0], found[1]


@bp.get("/connections/<tenant>/credentials")
def connection_credentials(tenant: str):
    key = keys.authenticate(request.headers.get("Authorization"), "credentials:read")
    fmt = request.args.get("format") or None
    if fmt not in (None, credentials.CRM_VENTAS):
        raise ValidationFailed(f"format must be {credentials.CRM_VENTAS} or absent", code="invalid_format")
    rt = runtime()
    tenant_id, row = _connection(tenant)
    return ok(credentials.read(store=token_store(), graph=rt.graph, tenant_id=tenant_id, row=row,
                               service=key.name, now=rt.clock.now(),
                               required=current_app.config["META_SCOPES"], fmt=fmt,
                               ip=request.remote_addr))


@bp.route("/connections/<tenant>/graph/<path:path>", methods=["GET", "POST", "DELETE"])
def graph_proxy(tenant: str, path: str):
    key = keys.authenticate(request.headers.get("Authorization"), "graph:proxy")
    tenant_id, row = _connection(tenant)
    app, rt = current_app._get_current_object(), runtime()
    config = app.config
    method = "GET" if request.method == "HEAD" else request.method  # Flask answers HEAD with GET's view
    call = proxy.Call(method, path, list(request.args.items(multi=True)), _form())
    base = url_for("internal.graph_proxy", tenant=tenant, path="_", _external=True)[:-1]
    answer = proxy.forward(call, tenant_id=tenant_id, row=row, service=key.name, graph=rt.graph,
                           store=token_store(), version=config["META_GRAPH_API_VERSION"],
                           allowed=config["META_PROXY_ALLOWED_PATHS"], required=config["META_SCOPES"],
                           now=rt.clock.now, link_base=base,
                           settings=keepalive.Settings.from_config(config),
                           on_notices=lambda notices: notify.dispatch(app, notices))
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _form() -> dict[str, str] | None:
    """A POST's fields, from a form or a JSON object (non-string values as JSON, as Graph takes them)."""
    if request.method == "GET":
        return None
    if request.is_json:
        body = request.get_json(silent=True)
        if body is None and not request.get_data():
            return None
        if not isinstance(body, dict):
            raise ValidationFailed("Send a JSON object or form fields", code="invalid_body")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    return request.form.to_dict(flat=True) or None
