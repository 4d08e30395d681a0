"""Control endpoints under `{base}/_sandbox/`: reset, faults, clock, calls, config, tokens.

They answer callers on this host only (the socket's own peer loopback, nothing forwarded), or,
when SANDBOX_CONTROL_TOKEN is set, callers sending it in X-Sandbox-Control-Token (loopback ones
too); never with APP_ENV=production.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import current_app, jsonify, request

from . import webhook_control

CONTROL_HEADER = "X-Sandbox-Control-Token"
# Headers a proxy adds: a request carrying one came through a proxy, whatever the socket says
# (the same rule as the product's /metrics; the sandbox imports nothing of the product).
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host")


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _error(message: str, status: int = 400):
    return jsonify({"error": {"message": message, "type": "SandboxControlError"}}), status


def _socket_peer() -> str:
    """The peer of this request's socket: REMOTE_ADDR as the server set it, before a ProxyFix
    (TRUSTED_PROXIES in the product) replaced it with a forwarded value a client can write."""
    original = request.environ.get("werkzeug.proxy_fix.orig") or {}
    return original.get("REMOTE_ADDR", request.environ.get("REMOTE_ADDR")) or ""


def _loopback_client() -> bool:
    """The caller is on this machine: the socket's peer is loopback and nothing was forwarded
    (a proxy on this host relays everyone from loopback; what it forwards proves nothing)."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(_socket_peer().split("%", 1)[0])
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def control_allowed() -> bool:
    """The token when one is configured (compared in constant time), else a loopback peer."""
    token = current_app.config.get("SANDBOX_CONTROL_TOKEN") or ""
    if token:
        given = request.headers.get(CONTROL_HEADER, "")
        return hmac.compare_digest(given.encode(), token.encode())
    return _loopback_client()


def register(bp, sandbox) -> None:
    """Add the control routes to the sandbox blueprint."""

    @bp.before_request
    def only_trusted_callers():
        rule = request.url_rule
        if rule is None or "/_sandbox/" not in rule.rule or request.endpoint.endswith(".stylesheet"):
            return None  # the dialog, the Graph API and the consent page's stylesheet
        if current_app.config.get("APP_ENV") == "production":
            return _error("Not found", 404)
        if not control_allowed():
            return _error("The sandbox control API answers loopback clients only, or callers "
                          f"sending {CONTROL_HEADER}", 403)
        return None

    def guarded(func):
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except (ValueError, TypeError) as err:
                return _error(str(err))

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper

    @bp.post("/_sandbox/reset")
    def reset():
        """Forget every code, token, fault, call and setting change; clock back to real time."""
        sandbox.reset()
        return jsonify({"success": True})

    @bp.route("/_sandbox/faults", methods=["GET", "POST", "DELETE"])
    @guarded
    def faults():
        """POST queues a fault; GET lists pending ones; DELETE drops them all."""
        if request.method == "POST":
            return jsonify({"success": True, "fault": sandbox.faults.add(_json_body())})
        if request.method == "DELETE":
            sandbox.faults.clear()
            return jsonify({"success": True})
        return jsonify({"data": sandbox.faults.pending()})

    @bp.route("/_sandbox/clock", methods=["GET", "POST"])
    @guarded
    def clock():
        """GET: {now, offset_seconds}. POST {advance_seconds}: move the sandbox clock."""
        if request.method == "POST":
            seconds = _json_body().get("advance_seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ValueError("advance_seconds must be a number")
            return jsonify(sandbox.advance_clock(seconds))
        return jsonify(sandbox.clock())

    @bp.route("/_sandbox/calls", methods=["GET", "DELETE"])
    def calls():
        """Every Graph call received: method, path, time, token_id, status."""
        if request.method == "DELETE":
            with sandbox.lock:
                sandbox.call_log.clear()
            return jsonify({"success": True})
        data = sandbox.calls(request.args.get("token_id"), request.args.get("path"))
        return jsonify({"calls": data, "count": len(data)})

    @bp.post("/_sandbox/signed-request")
    @guarded
    def signed_request():
        """{user_id} -> {signed_request} signed with the app secret, as Meta posts it."""
        body = _json_body()
        user_id = body.get("user_id")
        if not user_id:
            raise ValueError("user_id is required")
        algorithm = body.get("algorithm", "HMAC-SHA256")
        return jsonify({"signed_request": sandbox.signed_request(str(user_id), algorithm)})

    @bp.route("/_sandbox/config", methods=["GET", "POST"])
    @guarded
    def config():
        """GET shows the settings; POST merges some (fixture sizes rebuild the fixtures)."""
        if request.method == "POST":
            return jsonify(sandbox.update_config(_json_body()))
        with sandbox.lock:
            return jsonify(dict(sandbox.config))

    @bp.post("/_sandbox/tokens")
    @guarded
    def tokens():
        """Mint a token directly: {user_id?, scopes?, expires_in?, type?}."""
        body = _json_body()
        scopes = body.get("scopes")
        if isinstance(scopes, str):
            scopes = [s for s in scopes.replace(",", " ").split() if s]
        if scopes is not None and not isinstance(scopes, list):
            raise ValueError("scopes must be a list")
        minted = sandbox.mint(
            user_id=body.get("user_id"),
            scopes=scopes,
            expires_in=body.get("expires_in"),
            token_type=str(body.get("type") or "USER"),
        )
        return jsonify(minted)

    webhook_control.register(bp, sandbox, guarded, _json_body)

    @bp.post("/_sandbox/users/<user_id>/invalidate")
    @guarded
    def invalidate(user_id: str):
        """Every token of the user so far fails with 190 and the subcode (460 by default)."""
        subcode = _json_body().get("subcode", 460)
        sandbox.invalidate_user(user_id, subcode)
        return jsonify({"success": True, "user_id": user_id, "subcode": subcode})

    @bp.get("/_sandbox/users")
    def users():
        """The test users, their businesses, ad account counts, pages and WhatsApp accounts."""
        return jsonify({"data": sandbox.users()})
