"""Thin view of /graph/<version>/<path>: the credential, the tenant it opens, one proxied call.

A client that calls `https://graph.facebook.com/<version>/...` with a token works here by
changing only its base URL and the token: the gateway token travels where Graph clients put a
token (`access_token` in the query or the form, `Authorization: Bearer` or `OAuth`).
"""

from __future__ import annotations

import json
import logging

from flask import Response, current_app, request

from crm_meta.auth import gateway_tokens as tokens
from crm_meta.gateway import batch, bp, limits
from crm_meta.http.errors import AppError
from crm_meta.infra import dbreads
from crm_meta.meta import proxy, versions
from crm_meta.meta.credentials import Caller
from crm_meta.runtime import runtime

log = logging.getLogger(__name__)
SCHEMES = ("bearer", "oauth")


def credential() -> str | None:
    """The one token the request carries; several different ones are refused (never guessed)."""
    found = set(request.args.getlist("access_token"))
    if request.method != "GET" and request.mimetype == "application/x-www-form-urlencoded":
        found.update(request.form.getlist("access_token"))
    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() in SCHEMES and value.strip():
        found.add(value.strip())
    if len(found) > 1:
        raise tokens.BadCredential("Send one access token, not several")
    return next(iter(found), None)


def form() -> dict[str, str] | None:
    """A POST's fields, from a form or a JSON object (non-string values as JSON, as Graph takes them)."""
    if request.method == "GET":
        return None
    if request.is_json:
        body = request.get_json(silent=True)
        if body is None and not request.get_data():
            return None
        if not isinstance(body, dict):
            raise AppError("Send a JSON object or form fields", code="invalid_body")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    return request.form.to_dict(flat=True) or None


@bp.route("/<version>/<path:path>", methods=["GET", "POST", "DELETE"])
def graph(version: str, path: str):
    dbreads.read_only(first_transaction_only=True)  # one round trip for the reads, no BEGIN/COMMIT
    token = credential()
    opened = tokens.open_with(token)
    refused = version_refusal(version, path)
    if refused:
        dbreads.end_reads()
        raise refused
    method = "GET" if request.method == "HEAD" else request.method
    call = proxy.Call(method, path, list(request.args.items(multi=True)), form())
    answer = send(call, opened, version, token)
    return Response(answer.body, status=answer.status, headers=answer.headers)


@bp.route("/<version>/", methods=["POST"])
def graph_batch(version: str):
    """Graph's batch (`batch=[...]`, `include_headers`): each item a call of the path above."""
    dbreads.read_only(first_transaction_only=True)
    token = credential()
    opened = tokens.open_with(token)
    fields = form() or {}
    items = batch.parse(fields.get("batch") or request.args.get("batch"))
    include = (fields.get("include_headers") or request.args.get("include_headers", "true")).lower()

    def send_item(call: proxy.Call) -> proxy.Answer:
        refused = version_refusal(version, proxy.normalise(call.path, version))
        if refused:
            raise refused
        return send(call, opened, version, token)

    answers = batch.run(items, token, send_item, include_headers=include != "false")
    return Response(json.dumps(answers), status=200, mimetype="application/json")


def version_refusal(version: str, path: str) -> AppError | None:
    """A retired version for this kind of call, as a refusal naming the one to use."""
    refused = versions.refusal(version, versions.kind_of(path), runtime().clock.now().date())
    if not refused:
        return None
    code = "marketing_version_retired" if "Ads API" in refused else "version_retired"
    return AppError(refused, code=code, status=400)


def send(call: proxy.Call, opened, version: str, token: str | None) -> proxy.Answer:
    """One call of `opened`'s tenant through the proxy: the gateway's limit, then the Gateway."""
    rt, config = runtime(), current_app.config
    limits.spend(opened.service, opened.tenant_id)
    where = f"/graph/{version}/"
    # Without API_BASE_URL, the request's own origin: worked out only for an answer with links.
    base = config["API_BASE_URL"] + where if config["API_BASE_URL"] else (
        lambda: request.host_url.rstrip("/") + where)
    return rt.gateway.forward(call, Caller(opened.tenant_id, opened.row, opened.service),
                              proxy.Links(version, base, token))
