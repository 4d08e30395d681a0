"""Thin views of /internal/meta/...: authenticate the service, resolve the tenant, call one service."""

from __future__ import annotations

import json

from flask import Response, current_app, request, url_for

from crm_meta.auth import gateway_tokens, tenancy
from crm_meta.http.envelope import ok
from crm_meta.http.errors import AppError, Forbidden, NotFound, ValidationFailed
from crm_meta.internal import bp, keys, payloads
from crm_meta.meta import credentials, proxy
from crm_meta.meta.credentials import Caller
from crm_meta.meta.errors import ConnectionUnusable
from crm_meta.models import MetaConnection, audit
from crm_meta.runtime import runtime


def _caller(scope: str, ref: str) -> tuple[keys.Caller, int, MetaConnection | None]:
    """The calling service, the tenant (auth.tenancy's rule: an all-digit reference is an id,
    else a slug) and its connection, in one query: the key decides before the tenant is told.
    Every refusal of the key is audited (its prefix, the route, why)."""
    try:
        return _resolve(scope, ref)
    except AppError as refused:
        if not isinstance(refused, NotFound):  # an unknown tenant is no refusal of the key
            keys.record_refusal(request.headers.get("Authorization"), keys.Refusal(
                route=_route(), method=request.method, reason=refused.code, ip=request.remote_addr,
                service=getattr(refused, "service", None), tenant_ref=ref,
                tenant_id=getattr(refused, "tenant_id", None)))
        raise


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else request.path[:200]


def _resolve(scope: str, ref: str) -> tuple[keys.Caller, int, MetaConnection | None]:
    key = keys.presented(request.headers.get("Authorization"))
    statement = keys.lookup(key)
    if statement is None:
        keys.verify(key, None, scope)  # refuses, in the same time as any wrong key
    found = keys.with_tenant(statement, tenancy.reference(ref))
    caller = keys.verify(key, found, scope)
    if found.tenant_id is None:
        if scope == "credentials:read":  # every credentials read is audited, this one too
            audit.record_now("meta.credentials.read",
                             actor=audit.Actor(f"service:{caller.name}", request.remote_addr),
                             outcome="refused", details={"service": caller.name, "reason": "unknown_tenant",
                                                         "tenant_ref": ref[:64]})
        raise NotFound("No tenant with that id or slug", code="not_found")
    if not caller.opens(found.tenant_id):
        refused = Forbidden("This service key is limited to other tenants", code="tenant_not_allowed")
        refused.service, refused.tenant_id = caller.name, found.tenant_id
        raise refused
    return caller, found.tenant_id, found.MetaConnection


@bp.get("/connections/<tenant>/credentials")
def connection_credentials(tenant: str):
    fmt = request.args.get("format") or None
    try:
        key, tenant_id, row = _caller("credentials:read", tenant)
    except Forbidden as exc:
        if fmt != payloads.CRM_VENTAS or exc.code != "insufficient_scope":
            raise
        return ok(_gateway_credentials(tenant))  # a proxy-only service: never Meta's token
    if fmt not in (None, payloads.CRM_VENTAS):
        raise ValidationFailed(f"format must be {payloads.CRM_VENTAS} or absent", code="invalid_format")
    found = runtime().gateway.credentials(Caller(tenant_id, row, key.name), fmt=fmt,
                                          ip=request.remote_addr)
    shape = payloads.crm_ventas_credentials if fmt == payloads.CRM_VENTAS else payloads.credentials
    return ok(shape(found))


def _gateway_credentials(tenant: str) -> dict:
    """For a key with graph:proxy but not credentials:read: CRM Ventas' names with the service's
    gateway token (`cmg_...`, for <API_BASE_URL>/graph/...) as META_USER_LONG_TOKEN."""
    key, tenant_id, row = _caller("graph:proxy", tenant)
    rt = runtime()
    try:
        credentials.usable_status(row, rt.clock.now(), current_app.config["META_SCOPES"])
    except ConnectionUnusable as exc:
        audit.record_now("meta.credentials.read",
                         actor=audit.Actor(f"service:{key.name}", request.remote_addr), tenant_id=tenant_id,
                         outcome="refused",
                         details={"service": key.name, "reason": exc.reason, "kind": "gateway"})
        raise
    key_id = keys.active(key.name).id
    token = gateway_tokens.issue(service_key_id=key_id, service=key.name, tenant_id=tenant_id,
                                 secret=current_app.config["SECRET_KEY"])
    audit.record_now("meta.credentials.read", actor=audit.Actor(f"service:{key.name}", request.remote_addr),
                     tenant_id=tenant_id,
                     details={"service": key.name, "format": payloads.CRM_VENTAS, "kind": "gateway"})
    return payloads.crm_ventas(token, row.expires_at, row.selected_ad_account_id)


@bp.route("/connections/<tenant>/graph/<path:path>", methods=["GET", "POST", "DELETE"])
def graph_proxy(tenant: str, path: str):
    key, tenant_id, row = _caller("graph:proxy", tenant)
    rt = runtime()
    config = current_app.config
    method = "GET" if request.method == "HEAD" else request.method  # Flask answers HEAD with GET's view
    call = proxy.Call(method, path, list(request.args.items(multi=True)), _form())
    # Paging links from API_BASE_URL (root-relative without it), never from the request's Host.
    base = config["API_BASE_URL"] + url_for("internal.graph_proxy", tenant=tenant, path="_")[:-1]
    answer = rt.gateway.forward(call, Caller(tenant_id, row, key.name),
                                proxy.Links(rt.meta.version, base))
    return Response(answer.body, status=answer.status, headers=answer.headers)


@bp.get("/connections/<tenant>/audit")
def tenant_audit(tenant: str):
    """The tenant's audit trail for the CRM's own audit tab, in its `system_events` shape:
    `?event_type=&severity=&limit=&offset=` as its "Sistema" tab sends them."""
    _key, tenant_id, _row = _caller("audit:read", tenant)
    limit = _number("limit", default=100, least=1, most=audit.MAX_PAGE)
    offset = _number("offset", default=0, least=0, most=10**9)
    severity = request.args.get("severity") or None
    outcomes = [o for o, s in audit.SEVERITY.items() if s == severity] if severity else None
    if severity and not outcomes:
        raise ValidationFailed("severity must be info, warning or error", code="invalid_filter")
    rows, total = audit.tenant_events(tenant_id, action=request.args.get("event_type") or None,
                                      outcomes=outcomes, limit=limit, offset=offset)
    return ok({"items": [audit.as_system_event(e) for e in rows], "total": total,
               "limit": limit, "offset": offset})


def _number(name: str, *, default: int, least: int, most: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 12) or not least <= int(value) <= most:
        raise ValidationFailed(f"{name} must be a whole number from {least} to {most}",
                               code="invalid_filter")
    return int(value)


def _form() -> dict[str, str] | None:
    """A POST's fields, from a form or a JSON object (non-string values as JSON, as Graph takes them)."""
    if request.method == "GET":
        return None
    if request.is_json:
        if not request.get_data():
            return None
        body = request.get_json()  # malformed, or nested too deeply: 400
        if not isinstance(body, dict):
            raise ValidationFailed("Send a JSON object or form fields", code="invalid_body")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    return request.form.to_dict(flat=True) or None
