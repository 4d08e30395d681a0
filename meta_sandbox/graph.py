"""The Graph API dispatcher: versions, faults, latency, usage headers, call log, nodes."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from . import ads, auth, marketing, messaging, nodes, oauth, subscriptions, webhook_control
from .batch import run_batch
from .config import CURRENT_VERSIONS, MARKETING_EXPIRY
from .errors import (
    APP_LIMIT_CODE,
    RATE_LIMIT_CODES,
    GraphRefusal,
    bad_param,
    default_message,
    fbtrace_id,
    unknown_path,
    unsupported,
)
from .fields import parse_fields
from .messages import GraphRequest, GraphResponse

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)$")
_OLDEST = tuple(int(part) for part in CURRENT_VERSIONS[0][1:].split("."))
_PAGING_PARAMS = {"after", "before", "limit"}
_MARKETING_TYPES = {"AdAccount", "Campaign", "AdSet", "Ad", "AdCreative", "AdReportRun"}
_MALFORMED_BODY = "<html><head><title>Error</title></head><body>Sorry, something went wrong.</body></html>"


@dataclass
class _Usage:
    business_id: str | None = None
    use_case: str = "business_management"
    ad_account: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # a node module's own usage headers


def resolve_version(segment: str) -> str | None:
    """The version that serves a path segment: itself, the oldest for retired, or None."""
    if segment in CURRENT_VERSIONS:
        return segment
    match = VERSION_RE.match(segment)
    if match and (int(match.group(1)), int(match.group(2))) < _OLDEST:
        return CURRENT_VERSIONS[0]
    return None


def _presented_token(req: GraphRequest, segments: list[str]) -> str | None:
    if segments == ["debug_token"]:
        return req.params.get("input_token")
    if segments == ["oauth", "access_token"]:
        return req.params.get("fb_exchange_token")
    return req.bearer or req.params.get("access_token")


def handle(sandbox, req: GraphRequest) -> GraphResponse:
    """Answer one Graph call exactly as Meta would, and log it."""
    generation = sandbox.generation
    # The HTTP method is the method: no `method=GET` override (Meta refuses a POST to a read).
    method = req.method.upper()
    segments = [s for s in req.path.split("/") if s]
    version = sandbox.config["default_version"]
    version_error = None
    if segments and VERSION_RE.match(segments[0]):
        served = resolve_version(segments[0])
        if served is None:
            version_error = unknown_path(req.path)
        else:
            version = served
        segments = segments[1:]
    if not segments and method == "POST" and "batch" in req.params and not version_error:
        return run_batch(sandbox, req, version, handle)
    marketing_call = _is_marketing(sandbox, segments)
    upgraded_from = None
    if marketing_call and not version_error:
        version, upgraded_from = _marketing_version(version, sandbox.now().date().isoformat())
    fault = sandbox.faults.take(req.path, method)
    delay_ms = sandbox.config["latency_ms"] + (fault.latency_ms if fault else 0)
    if delay_ms:
        time.sleep(delay_ms / 1000)  # outside the lock: concurrent calls overlap
    trace = fbtrace_id()
    headers = {"facebook-api-version": version, "x-fb-trace-id": trace, "x-fb-rev": "1"}
    if upgraded_from:
        headers["x-ad-api-version-warning"] = (f"The call has been auto-upgraded to {version} as "
                                               f"{upgraded_from} has been deprecated.")
    usage = _Usage()
    # The Marketing API is outside the app's Graph budget (Meta: "Rate Limiting", Marketing API).
    app_pct, app_over = (sandbox.app_usage(), False) if marketing_call else sandbox.count_app_call()
    try:
        if version_error:
            raise version_error
        if fault and fault.inspect_error and segments == ["debug_token"]:
            # The inspected token's problem, the way Meta reports it: HTTP 200, inside `data`.
            response = GraphResponse(200, oauth.inspect_error(fault.code or 190, fault.error_subcode,
                                                              fault.message))
        elif fault and fault.code is not None and not fault.malformed:
            raise _fault_error(sandbox, fault, segments)
        elif fault and fault.malformed:
            status = fault.http_status or 500
            response = GraphResponse(status, _MALFORMED_BODY, {"Content-Type": "text/html"})
        else:
            if sandbox.config["enforce_rate_limits"] and app_over:
                raise GraphRefusal(default_message(4), 4)
            with sandbox.lock:
                body = _route(sandbox, req, method, version, segments, usage)
            response = GraphResponse(200, body)
    except GraphRefusal as err:
        response = GraphResponse(err.status, err.body(trace), dict(err.headers))
        app_pct = 100 if err.code == APP_LIMIT_CODE else app_pct
    headers.setdefault("x-app-usage", _usage_json(app_pct))
    if usage.business_id and "x-business-use-case-usage" not in response.headers:
        pct, _ = sandbox.count_business_call(usage.business_id)
        headers["x-business-use-case-usage"] = _buc_json(usage.business_id, usage.use_case, pct, 0)
    if usage.ad_account:
        headers["x-ad-account-usage"] = json.dumps(
            {"acc_id_util_pct": round(app_pct / 2, 2), "reset_time_duration": 0}
        )
    headers.update(usage.headers)
    response.headers = {**headers, **response.headers}
    response.headers.setdefault("Content-Type", "application/json; charset=UTF-8")
    sandbox.record_call(method, req.path, _presented_token(req, segments), response.status, generation)
    return response


def _is_marketing(sandbox, segments: list[str]) -> bool:
    if not segments:
        return False
    if segments[0].startswith("act_"):
        return True
    obj = sandbox.fixtures.get(segments[0])
    return obj is not None and obj.get("_type") in _MARKETING_TYPES


def _marketing_version(version: str, today: str) -> tuple[str, str | None]:
    """The version that serves a Marketing call, and the retired one it was upgraded from."""
    expiry = MARKETING_EXPIRY.get(version)
    if expiry is None or today < expiry:
        return version, None
    live = [v for v in CURRENT_VERSIONS if v not in MARKETING_EXPIRY or today < MARKETING_EXPIRY[v]]
    return live[0], version


def _usage_json(pct: int) -> str:
    return json.dumps({"call_count": pct, "total_time": pct * 3 // 4, "total_cputime": pct // 2})


def _buc_json(business_id: str, use_case: str, pct: int, regain: int) -> str:
    entry = {
        "type": use_case,
        "call_count": pct,
        "total_cputime": pct // 2,
        "total_time": pct * 3 // 4,
        "estimated_time_to_regain_access": regain,
    }
    return json.dumps({business_id: [entry]})


def _fault_error(sandbox, fault, segments: list[str]) -> GraphRefusal:
    code = fault.code
    err = GraphRefusal(
        fault.message or default_message(code),
        code,
        subcode=fault.error_subcode,
        type_=fault.type,
        status=fault.http_status,
        is_transient=fault.is_transient,
    )
    if code in RATE_LIMIT_CODES:
        business_id = _business_of_path(sandbox, segments)
        if code == APP_LIMIT_CODE:  # only code 4 means the whole app is over its budget
            err.headers["x-app-usage"] = _usage_json(100)
        err.headers["x-business-use-case-usage"] = _buc_json(
            business_id, "ads_management", 100, fault.regain_minutes
        )
    if code == 190:
        err.headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{err.message}"'
    return err


def _business_of_path(sandbox, segments: list[str]) -> str:
    obj = sandbox.fixtures.get(segments[0]) if segments else None
    if obj is not None:
        if obj["_type"] == "Business":
            return obj["id"]
        if obj.get("_business_id"):
            return obj["_business_id"]
    businesses = sandbox.fixtures.user_businesses.get(sandbox.first_user_id()) or ["0"]
    return businesses[0]


def _route(sandbox, req, method, version, segments, usage) -> Any:
    if not segments:
        raise bad_param(f"Unsupported {method.lower()} request.")
    if segments == ["oauth", "access_token"]:
        return oauth.access_token(sandbox, method, req.params)
    if segments == ["debug_token"]:
        if method not in oauth.DEBUG_TOKEN_METHODS:  # documented as a GET only
            raise unsupported(method, "debug_token")
        return oauth.debug_token(sandbox, req.bearer, req.params)
    if segments == [sandbox.app_id, "subscriptions"]:  # the app's webhooks (webhook_control)
        return webhook_control.subscriptions(sandbox, method, req)
    return _node_call(sandbox, req, method, version, segments, usage)


def _link_builder(base_url: str):
    def link(path: str, params: list[tuple[str, str]]) -> str:
        return f"{base_url}{path}?{urlencode(params)}"

    return link


def _node_call(sandbox, req, method, version, segments, usage) -> Any:
    now = sandbox.now()
    node_id, rest = segments[0], segments[1:]
    token = req.bearer or req.params.get("access_token")
    record = auth.authenticate(sandbox, token, req.params, node_id == "me", now)
    if record is None:  # an app token: no user assets to show
        raise unsupported(method, node_id)
    auth_params = [(k, v) for k, v in req.query if k in ("access_token", "appsecret_proof", "appsecret_time")]
    ctx = nodes.Context(sandbox, record, now, version, _link_builder(req.base_url), auth_params)
    for module in (subscriptions, messaging):  # Page-token edges: their own rules
        answer = module.dispatch(ctx, req, method, node_id, rest)
        if answer is not module.PASS:
            return answer
    answer = ads.dispatch(ctx, req, method, node_id, rest, usage)
    if answer is marketing.PASS:
        answer = marketing.dispatch(ctx, req, method, node_id, rest, usage)
    if answer is not marketing.PASS:
        return answer
    if node_id == "me":
        if record.kind == "PAGE":
            obj = sandbox.fixtures.get(record.page_id)
        else:
            obj = sandbox.fixtures.user(record.user_id)
    else:
        obj = sandbox.fixtures.get(node_id)
        if obj is None or not nodes.visible(ctx, obj):
            raise unsupported(method, node_id)
    _note_usage(sandbox, obj, rest, usage)
    node_type = nodes.TYPES[obj["_type"]]
    if not rest:
        if method not in node_type.methods:  # a read-only node: Meta's 100/33
            raise unsupported(method, node_id)
        nodes.check_node(ctx, obj)
        if method != "GET":
            return node_type.write(ctx, obj, method, req.params)
        return nodes.render(ctx, obj, parse_fields(req.params.get("fields")))
    if obj["_type"] == "User" and rest[0] == "permissions":
        return _permissions(sandbox, ctx, method, rest)
    if len(rest) > 1:
        raise unknown_path("/" + "/".join(rest[1:]))
    if rest[0] not in node_type.edges:
        raise bad_param(f"(#100) Tried accessing nonexisting field ({rest[0]}) on node type ({obj['_type']})")
    edge = node_type.edges[rest[0]]
    if method not in edge.methods:  # each edge declares what it accepts; most are GET only
        raise unsupported(method, node_id)
    nodes.check_node(ctx, obj)
    if method != "GET":
        return edge.write(ctx, obj, method, req.params)
    kept = [(k, v) for k, v in req.query if k not in _PAGING_PARAMS]

    def link(extra: list[tuple[str, str]]) -> str:
        return ctx.link(req.path, kept + extra)

    modifiers = {k: req.params[k] for k in ("limit", "after", "before", "summary") if k in req.params}
    return nodes.render_edge(ctx, obj, rest[0], modifiers, parse_fields(req.params.get("fields")), link)


def _note_usage(sandbox, obj: dict[str, Any], rest: list[str], usage: _Usage) -> None:
    kind = obj["_type"]
    business_id = obj["id"] if kind == "Business" else obj.get("_business_id")
    if business_id and sandbox.fixtures.get(business_id) is not None:
        usage.business_id = business_id
    edge = rest[0] if rest else ""
    if kind == "AdAccount" or "ad_accounts" in edge:
        usage.use_case = "ads_management"
    elif kind in ("WhatsAppBusinessAccount", "PhoneNumber") or "whatsapp" in edge:
        usage.use_case = "whatsapp_business_management"
    usage.ad_account = kind == "AdAccount"


def _permissions(sandbox, ctx, method: str, rest: list[str]) -> Any:
    if len(rest) == 1 and method == "GET":
        return {"data": nodes.permissions(ctx)}
    if len(rest) == 1 and method == "DELETE":
        sandbox.store.revoke_user(ctx.token.user_id)  # the whole grant: tokens now fail 458
        return {"success": True}
    if len(rest) == 2 and method == "DELETE":
        grant = ctx.token.grant
        grant.granted.discard(rest[1])
        grant.declined.add(rest[1])
        return {"success": True}
    if len(rest) > 2 or method != "GET":
        raise unsupported(method, "/".join(rest))
    raise unknown_path("/" + "/".join(rest[1:]))
