"""Thin views: parse, call one service, answer with the envelope."""

from functools import lru_cache

from flask import Flask, current_app, g, request, url_for

from crm_meta.api import bp
from crm_meta.auth import binding
from crm_meta.auth.decorators import admin_required, member_required
from crm_meta.auth.principal import current_principal
from crm_meta.connect import flow, payloads
from crm_meta.http import params
from crm_meta.http.envelope import ok
from crm_meta.http.errors import AppError, ValidationFailed, callback_failure
from crm_meta.infra import metrics
from crm_meta.meta import connections
from crm_meta.meta.channels import Who
from crm_meta.meta.errors import DomainError, GraphError
from crm_meta.runtime import now, runtime


@bp.after_request
def count_oauth_calls(response):
    endpoint = request.endpoint
    if endpoint and endpoint.startswith("api.meta_"):
        metrics.OAUTH_REQUESTS.labels(endpoint=endpoint.removeprefix("api."),
                                      status=str(response.status_code)).inc()
    return response


@bp.get("/crm/auth/meta/url")
@admin_required
def meta_auth_url():
    rerequest = params.flag(request.args.get("rerequest"))
    started, secret = flow.begin(current_principal(), rerequest=rerequest)
    response, status = ok({"auth_url": started.auth_url, "state": started.state,
                           "expires_in": started.expires_in})
    return binding.attach(response, secret), status


@bp.get("/crm/auth/meta/callback")
def meta_callback():
    browser = flow.prefers_html()
    try:
        row = flow.finish()
    except (AppError, DomainError, GraphError) as exc:
        error, reason = callback_failure(exc)
        metrics.OAUTH_ERRORS.labels(reason=reason).inc()
        metrics.OAUTH_CALLBACKS.labels(outcome=error.code).inc()
        if browser:
            return flow.browser_redirect(error=reason)
        if error is exc:
            raise
        raise error from exc
    except Exception:
        metrics.OAUTH_CALLBACKS.labels(outcome="internal_error").inc()
        raise
    metrics.OAUTH_CALLBACKS.labels(outcome="connected").inc()
    if browser:
        return flow.browser_redirect()
    return ok(payloads.connected_payload(row, now(), flow.required_scopes(),
                                         url_for("api.meta_auth_url", rerequest=1)))


@bp.post("/crm/auth/meta/disconnect")
@admin_required
def meta_disconnect():
    result = flow.disconnect(current_principal())
    return ok(payloads.disconnected(result))


@bp.get("/crm/auth/meta/test-connection")
@member_required
def meta_test_connection():
    row = runtime().store.for_tenant(g.tenant.id)
    if row is None:
        return ok({"connected": False, "valid": False, "status": "disconnected"})
    return ok(flow.test_connection(row))


@bp.get("/crm/auth/meta/debug/token")
@admin_required
def meta_debug_token():
    store = runtime().store
    row = connections.require(store, g.tenant.id)
    return ok(payloads.token_report(connections.debug_token(graph=runtime().graph, store=store, row=row)))


@lru_cache(maxsize=16)
def _status_links(app: Flask, script_root: str) -> tuple[str, str]:
    """token-status' links name fixed routes: built once per app and mount point, not per call."""
    return url_for("web.wizard"), url_for("api.meta_auth_url", rerequest=1)


@bp.get("/crm/marketing/token-status")
@member_required
def token_status():
    row = current_principal().connection  # read with the caller's tenant: no second query
    wizard, rerequest = _status_links(current_app._get_current_object(), request.script_root)
    return ok(payloads.status_payload(row, now(), flow.required_scopes(), wizard, rerequest))


@bp.get("/crm/marketing/meta-portfolios")
@member_required
def meta_portfolios():
    store = runtime().store
    row = connections.require(store, g.tenant.id)
    if params.flag(request.args.get("refresh")):
        connections.rediscover(graph=runtime().graph, store=store, row=row)
    return ok(payloads.portfolios(row))


@bp.get("/crm/marketing/meta-accounts")
@member_required
def meta_accounts():
    row = connections.require(runtime().store, g.tenant.id)
    return ok(connections.accounts(row, request.args.get("portfolio_id")))


@bp.post("/crm/marketing/connect")
@admin_required
def marketing_connect():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not body.get("account_id"):
        raise ValidationFailed("Send JSON with an account_id", code="validation_error")
    name = body.get("account_name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise ValidationFailed("account_name must be a string of at most 200 characters")
    row = connections.require(runtime().store, g.tenant.id)
    return ok(payloads.selection(connections.select_account(
        row=row, account_id=body["account_id"], business_id=body.get("business_id"),
        account_name=name, who=Who(actor=current_principal().actor, ip=request.remote_addr))))
