"""Thin views of /internal/meta/...: authenticate the service, resolve the tenant, call one service."""

from __future__ import annotations

import json

from flask import Response, current_app, request, url_for
from sqlalchemy import false

from crm_meta import notify
from crm_meta.http.envelope import ok
from crm_meta.http.errors import NotFound, ValidationFailed
from crm_meta.infra.database import db
from crm_meta.internal import bp, keys
from crm_meta.meta import credentials, proxy
from crm_meta.meta.keepalive import verdicts
from crm_meta.models import MetaConnection, ServiceKey, Tenant, audit
from crm_meta.runtime import runtime

MAX_TENANT_ID = 2**31 - 1  # an integer column: a larger "id" names no tenant


def _caller(scope: str, ref: str) -> tuple[keys.Caller, int, MetaConnection | None]:
    """The calling service, the tenant (by numeric id, which an all-digit reference always is,
    or by slug) and its connection, in one query: the key decides before the tenant is told."""
    key = keys.presented(request.headers.get("Authorization"))
    statement = keys.lookup(key)
    if statement is None:
        keys.verify(key, None, scope)  # refuses, in the same time as any wrong key
    if ref.isascii() and ref.isdigit():
        named = Tenant.id == int(ref) if len(ref) <= 10 and int(ref) <= MAX_TENANT_ID else false()
    else:
        named = Tenant.slug == ref if len(ref) <= 64 else false()
    found = db.session.execute(
        statement.add_columns(Tenant.id.label("tenant_id"), MetaConnection).select_from(ServiceKey)
        .outerjoin(Tenant, named).outerjoin(MetaConnection, MetaConnection.tenant_id == Tenant.id)).first()
    caller = keys.verify(key, found, scope)
    if found.tenant_id is None:
        if scope == "credentials:read":  # every credentials read is audited, this one too
            audit.record("meta.credentials.read", actor=f"service:{caller.name}", outcome="refused",
                         ip=request.remote_addr, commit=True,
                         details={"service": caller.name, "reason": "unknown_tenant", "tenant_ref": ref[:64]})
        raise NotFound("No tenant with that id or slug", code="not_found")
    return caller, found.tenant_id, found.MetaConnection


@bp.get("/connections/<tenant>/credentials")
def connection_credentials(tenant: str):
    key, tenant_id, row = _caller("credentials:read", tenant)
    fmt = request.args.get("format") or None
    if fmt not in (None, credentials.CRM_VENTAS):
        raise ValidationFailed(f"format must be {credentials.CRM_VENTAS} or absent", code="invalid_format")
    rt = runtime()
    return ok(credentials.read(store=runtime().store, graph=rt.graph, tenant_id=tenant_id, row=row,
                               service=key.name, now=rt.clock.now(),
                               required=current_app.config["META_SCOPES"], fmt=fmt,
                               ip=request.remote_addr))


@bp.route("/connections/<tenant>/graph/<path:path>", methods=["GET", "POST", "DELETE"])
def graph_proxy(tenant: str, path: str):
    key, tenant_id, row = _caller("graph:proxy", tenant)
    rt = runtime()
    config = current_app.config
    method = "GET" if request.method == "HEAD" else request.method  # Flask answers HEAD with GET's view
    call = proxy.Call(method, path, list(request.args.items(multi=True)), _form())
    base = url_for("internal.graph_proxy", tenant=tenant, path="_", _external=True)[:-1]
    answer = proxy.forward(call, tenant_id=tenant_id, row=row, service=key.name, graph=rt.graph,
                           store=rt.store, version=config["META_GRAPH_API_VERSION"],
                           allowed=config["META_PROXY_ALLOWED_PATHS"], required=config["META_SCOPES"],
                           now=rt.clock.now, link_base=base,
                           settings=verdicts.Settings.from_config(config),
                           on_notices=lambda notices: notify.dispatch(rt.notifier, notices))
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
