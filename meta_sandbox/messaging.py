"""Sending messages: Messenger's Send API (`POST /{page-id}/messages`, a Page's token only, with
`pages_messaging`) and WhatsApp's Cloud API (`POST /{phone-number-id}/messages`, a user or
system-user token with `whatsapp_business_messaging`). Answers in Meta's shapes; nothing is
delivered anywhere."""

from __future__ import annotations

import json
import secrets
from typing import Any

from .errors import GraphRefusal, bad_param, permission_error, unsupported
from .subscriptions import PAGE_TOKEN_REQUIRED

PASS = object()
SERVED_EDGES = {("Page", "messages"): "Message", ("PhoneNumber", "messages"): "Message"}


def dispatch(ctx, req, method: str, node_id: str, rest: list[str]) -> Any:
    """Answer a messages call, or PASS."""
    if rest != ["messages"] or node_id == "me":
        return PASS
    obj = ctx.sandbox.fixtures.get(node_id)
    if obj is None or obj["_type"] not in ("Page", "PhoneNumber"):
        return PASS
    if method != "POST":
        raise unsupported(method, node_id)
    if obj["_type"] == "Page":
        return _send_api(ctx, req, obj)
    return _cloud_api(ctx, req, obj)


def _json(raw: str | None, name: str) -> dict:
    try:
        value = json.loads(raw or "")
    except ValueError:
        raise bad_param(f"(#100) param {name} must be a JSON object") from None
    if not isinstance(value, dict):
        raise bad_param(f"(#100) param {name} must be a JSON object")
    return value


def _send_api(ctx, req, page: dict) -> dict:
    token = ctx.token
    if token.kind != "PAGE":
        if page["id"] not in ctx.access["pages"]:
            raise unsupported("POST", page["id"])
        raise GraphRefusal(PAGE_TOKEN_REQUIRED, 190)
    if token.page_id != page["id"]:
        raise unsupported("POST", page["id"])
    if "pages_messaging" not in token.grant.granted:
        raise permission_error("(#200) Requires pages_messaging permission to manage the object", 200)
    recipient = _json(req.params.get("recipient"), "recipient")
    _json(req.params.get("message"), "message")
    if not recipient.get("id"):
        raise bad_param("(#100) The parameter recipient is required")
    return {"recipient_id": str(recipient["id"]), "message_id": "m_" + secrets.token_urlsafe(24)}


def _cloud_api(ctx, req, phone: dict) -> dict:
    token = ctx.token
    if token.kind == "PAGE" or phone.get("_business_id") not in ctx.access["businesses"]:
        raise unsupported("POST", phone["id"])
    if "whatsapp_business_messaging" not in token.grant.granted:
        raise permission_error("(#200) Requires whatsapp_business_messaging permission", 200)
    if req.params.get("messaging_product") != "whatsapp":
        raise bad_param("(#100) The parameter messaging_product is required")
    to = req.params.get("to")
    if not to:
        raise bad_param("(#100) The parameter to is required")
    return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
            "messages": [{"id": "wamid." + secrets.token_urlsafe(32)}]}
