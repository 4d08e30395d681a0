"""The Graph endpoints' own refusals, shaped like Graph's errors: the drop-in gateway
(/graph/<version>/...) and the services' proxy (/internal/meta/connections/<tenant>/graph/...).

Every refusal is first made the one way the product makes them (crm_meta.http.errors: the RULES
table, the JSON envelope); on those two routes it is then re-shaped here into Meta's error body,
`{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}`, so a
Graph client classifies it as it would Meta's own: a throttle is transient with a throttling
code Meta documents and `Retry-After`, a refused path a permission error (#10), a bad or
unusable credential (gateway token or service key) #190. Meta's own answers, passed through,
are left as they are. This table is the only mapping from our codes to Graph's.

Codes and subcodes are Meta's (Graph API "Handling Errors"; Marketing API "Rate Limiting":
17/2446079 "User request limit reached", 613/1487742 "There have been too many calls from this
ad-account"; 4 "Application request limit reached"; 190 subcodes 458/460/463/467).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from flask import Flask, g, request

from crm_meta.http.errors import AppError, error_response
from crm_meta.meta.governor import GovernorRefusal


@dataclass(frozen=True)
class Shape:
    code: int
    subcode: int | None = None
    type: str = "OAuthException"
    transient: bool = False
    status: int | None = None  # overrides the envelope's status


THROTTLE = Shape(17, 2446079, transient=True, status=429)
# envelope code -> Graph shape. Anything not listed is a bad parameter (#100).
SHAPES = {
    "invalid_gateway_token": Shape(190, 467, status=401),
    "gateway_token_revoked": Shape(190, 458, status=401),
    "service_key_required": Shape(190, 467, status=401),
    "invalid_service_key": Shape(190, 467, status=401),
    "service_key_revoked": Shape(190, 458, status=401),
    "insufficient_scope": Shape(10, status=403),
    "tenant_not_allowed": Shape(10, status=403),
    "not_connected": Shape(190, 458, status=401),
    "revoked": Shape(190, 458, status=401),
    "needs_reauth": Shape(190, 460, status=401),
    "expired": Shape(190, 463, status=401),
    "token_unreadable": Shape(190, 467, status=401),
    "path_not_allowed": Shape(10, status=403),
    "field_not_allowed": Shape(10, status=403),
    "edge_not_allowed": Shape(10, status=403),
    "node_not_allowed": Shape(10, status=403),
    "version_retired": Shape(12, type="GraphMethodException", status=400),
    "marketing_version_retired": Shape(2635, type="OAuthException", status=400),
    "gateway_rate_limited": THROTTLE,
    "rate_limited": THROTTLE,
    "meta_throttled": Shape(4, transient=True, status=429),  # the app's budget (Meta's code 4)
    "governor_app": Shape(4, transient=True, status=429),
    "governor_account": Shape(613, 1487742, transient=True, status=429),
    "meta_unavailable": Shape(2, type="OAuthException", transient=True, status=503),
    "database_unavailable": Shape(2, type="OAuthException", transient=True, status=503),
    "internal_error": Shape(1, type="OAuthException", transient=True, status=500),
    "meta_app_misconfigured": Shape(1, type="OAuthException", transient=True, status=503),
    "not_found": Shape(100, 33, type="GraphMethodException", status=400),
    "method_not_allowed": Shape(100, 33, type="GraphMethodException", status=400),
    "batch_unresolved": Shape(100, type="GraphBatchException", status=400),  # Meta's, for a batch
}
DEFAULT = Shape(100, type="GraphMethodException")


def held(refusal: GovernorRefusal) -> AppError:
    """The governor's hold as a refusal: Meta's app throttle (#4) when the app's budget is spent,
    its ad-account throttle (#613) for any narrower scope; with the wait Meta named."""
    code = "governor_app" if refusal.scope == "app" else "governor_account"
    return AppError(refusal.message, code=code, status=429, retry_after=refusal.retry_after)


def trace_id() -> str:
    """An id for this answer, the way Meta gives each one an `fbtrace_id` (our request id)."""
    return str(g.get("request_id") or secrets.token_urlsafe(8))[:32]


def body(message: str, shape: Shape, reason: str | None = None) -> dict:
    """Graph's error body; `reason`, our own stable code, rides in `error_data` (an object, as
    Meta's SDK reads it) for programs that told our refusals apart by it."""
    error = {"message": f"(#{shape.code}) {message}", "type": shape.type, "code": shape.code,
             "error_subcode": shape.subcode, "is_transient": shape.transient, "fbtrace_id": trace_id()}
    if reason:
        error["error_data"] = {"reason": reason}
    if shape.subcode is None:
        del error["error_subcode"]  # as Meta: absent rather than null
    return {"error": error}


# The Graph routes: the gateway and the services' proxy, whether a route matched or not (404, 405).
GRAPH_ROUTES = re.compile(r"^/(graph|internal/meta/connections/[^/]+/graph)(/|$)")


def init_app(app: Flask) -> None:
    """Every answer of a Graph route goes through `reshape`; the governor's holds (raised only
    by the Graph routes' calls) read as Meta's throttles."""

    @app.after_request
    def graph_shaped(response):
        return reshape(response) if GRAPH_ROUTES.match(request.path) else response

    @app.errorhandler(GovernorRefusal)
    def governor_hold(refusal: GovernorRefusal):
        return error_response(held(refusal))


def reshape(response):
    """An envelope refusal of this request, re-made as Graph's error body (others untouched)."""
    if response.status_code < 400 or response.mimetype != "application/json":
        return response
    try:
        payload = json.loads(response.get_data())
    except ValueError:
        return response
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict) or payload.get("success") is not False or not isinstance(
            error.get("code"), str):
        return response  # Meta's own answer (any JSON at all), passed through
    status, headers, graph_body = refusal(error["code"], error.get("message") or "", response.status_code)
    response.set_data(json.dumps(graph_body))
    response.status_code = status
    response.headers.update(headers)
    return response


def refusal(code: str, message: str, status: int, retry_after: float | None = None,
            ) -> tuple[int, dict[str, str], dict]:
    """Our refusal `code` as Graph answers it: status, headers, body."""
    shape = SHAPES.get(code, DEFAULT)
    headers = {}
    if retry_after:
        headers["Retry-After"] = str(int(retry_after))
    if shape.code == 190:  # like Meta's: says which credential failed, never the credential
        headers["WWW-Authenticate"] = 'OAuth "Facebook Platform" "invalid_token"'
    return shape.status or status, headers, body(message, shape, code)
