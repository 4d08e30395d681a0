"""Request-side glue for the OAuth flow, shared by the JSON API and the wizard pages."""

from __future__ import annotations

from flask import current_app, redirect, request, url_for

from crm_meta import notify
from crm_meta.auth import binding
from crm_meta.auth.principal import Principal, current_principal
from crm_meta.connect import payloads
from crm_meta.http import negotiation
from crm_meta.http.errors import AppError
from crm_meta.meta import channels, connections, exchange
from crm_meta.meta.keepalive import verdicts
from crm_meta.meta.oauth import Asker, AuthorizationRequest
from crm_meta.runtime import runtime


def required_scopes() -> list[str]:
    """The permissions this app asks Meta for (and finds missing when one is not granted)."""
    return current_app.config["META_SCOPES"]


def begin(principal: Principal, *, rerequest: bool) -> tuple[AuthorizationRequest, str]:
    """Start an authorization for the caller; returns it and the browser binding value."""
    secret = binding.new_browser_secret()
    asker = Asker(tenant_id=principal.tenant.id, user_ref=principal.actor, rerequest=rerequest)
    return runtime().connect.begin(asker, secret), secret


def finish():
    """Complete the callback for this request; returns the stored connection."""
    return runtime().connect.complete(connections.Callback(
        args=request.args.to_dict(), browser_secret=binding.browser_secret(), caller=callback_caller(),
        ip=request.remote_addr))


def parts() -> channels.Parts:
    """The collaborators of a connection operation, for this request."""
    return runtime().connect.parts()


def connect_settings() -> exchange.Settings:
    """What a connect needs (built once with the runtime)."""
    return runtime().connect.settings


def disconnect(principal: Principal) -> connections.Disconnected:
    """Unsubscribe, revoke and delete the caller's tenant's connection."""
    who = channels.Who(actor=principal.actor, ip=request.remote_addr)
    return connections.disconnect(parts(), principal.tenant.id, who)


def callback_caller() -> tuple[int, str] | None:
    """Who the callback's browser says it is: (tenant id, actor) from a CRM token (header or
    cookie) or our own session; None when it carries no credential at all (a script bound by
    the binding cookie alone). A credential that does not resolve can prove no one: it matches
    no state."""
    try:
        principal = current_principal()
    except AppError:
        return (0, "unresolved")
    return None if principal is None else (principal.tenant.id, principal.actor)


def browser_redirect(*, error: str | None = None):
    """Where a browser lands after the callback: the CRM frontend, or the built-in wizard."""
    frontend = current_app.config["FRONTEND_URL"]
    if frontend:
        query = f"error={error}" if error else "success=connected"
        return redirect(f"{frontend}/crm/marketing?{query}")
    if error:
        return redirect(url_for("web.wizard", error=error))
    return redirect(url_for("web.wizard", step="select"))


def prefers_html() -> bool:
    """A browser on the callback: it ranks HTML strictly above JSON (a tie is a program's)."""
    return negotiation.preferred() == "html"


def test_connection(row) -> dict:
    """A live check of the tenant's connection, asked for by a person or a program."""
    parts = runtime()
    try:
        result, outcome = verdicts.check_now(parts.graph, parts.store, row, parts.clock.now(),
                                              parts.keepalive)
    except verdicts.AppCheckFailed as failed:
        notify.dispatch(parts.notifier, failed.notices)
        raise failed.error from None
    notify.dispatch(parts.notifier, outcome.notices)
    return payloads.checked_payload(row, result.info, parts.clock.now(), required_scopes())
