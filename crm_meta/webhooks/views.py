"""Thin views: verify, check the signature on the raw bytes, store, 200. Nothing here waits on
Meta or the CRM: routing, lead reads and forwarding happen after, in the webhook worker."""

from __future__ import annotations

import hmac
import time

from flask import Response, current_app, request

from crm_meta.http.errors import DatabaseUnavailable, NotAuthenticated, NotFound
from crm_meta.infra import metrics
from crm_meta.meta.webhooks import signature
from crm_meta.runtime import runtime
from crm_meta.webhooks import bp

ROUTES = ("/webhooks/meta", "/webhooks/meta/<tenant_ref>")


@bp.before_request
def enabled_and_bounded():
    """404 while webhooks are off; Meta's largest payload (3 MB) is the limit here."""
    if not current_app.config["META_WEBHOOKS_ENABLED"]:
        raise NotFound("Webhooks are not enabled on this server", code="webhooks_disabled")
    request.max_content_length = current_app.config["META_WEBHOOK_MAX_BYTES"]


def _verify():
    """Meta's verification request: echo hub.challenge when hub.verify_token is ours."""
    expected = current_app.config["META_VERIFY_TOKEN"]
    given = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    ok = (bool(expected) and request.args.get("hub.mode") == "subscribe"
          and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()))
    if not ok:
        return Response("Verification failed", status=403, mimetype="text/plain")
    return Response(challenge, status=200, mimetype="text/plain")


def _receive(route: str):
    """Signed, stored, then acknowledged."""
    started = time.perf_counter()
    body = request.get_data(cache=False)  # the raw bytes, before any parsing
    parts = runtime()
    if not signature.verify(current_app.config["META_APP_SECRET"], body,
                            request.headers.get(signature.HEADER)):
        metrics.WEBHOOK_SIGNATURE_FAILURES.inc()
        raise NotAuthenticated("The X-Hub-Signature-256 header does not match the body",
                               code="invalid_signature")
    try:
        parts.webhooks.store(body, route)
    except TimeoutError:
        raise DatabaseUnavailable() from None  # Meta retries later
    if current_app.config["WEBHOOK_WAKE"]:
        parts.webhooks.wake()
    metrics.WEBHOOK_RECEIVED.labels(route=route).inc()
    metrics.WEBHOOK_ACK.observe(time.perf_counter() - started)
    return Response("EVENT_RECEIVED", status=200, mimetype="text/plain")


@bp.route(ROUTES[0], methods=["GET", "POST"])
def meta():
    return _verify() if request.method == "GET" else _receive("/webhooks/meta")


@bp.route(ROUTES[1], methods=["GET", "POST"])
def meta_path(tenant_ref: str):
    """CRM Ventas' paths (/webhooks/meta/<tenant_id>, /webhooks/meta/leadgen): the same; the
    tenant in the path is never trusted, entries are routed by their assets."""
    if request.method == "GET":
        return _verify()
    return _receive("/webhooks/meta/leadgen" if tenant_ref == "leadgen" else "/webhooks/meta/<tenant>")
