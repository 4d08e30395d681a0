"""Webhook subscriptions of the app: `/{page-id}/subscribed_apps` (a Page's token only) and
`/{waba-id}/subscribed_apps` (a user or system-user token), GET, POST and DELETE, plus the
control faults that drop a subscription or invalidate a Page's tokens.

Like Meta: a user token on the Page edge gets "(#190) This method must be called with a Page
Access Token"; a POST whose grant lacks the permission of any one field is refused whole
(HTTP 403, code 200), one line per field; `subscribed_fields` is required on a Page."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from .errors import GraphRefusal, bad_param, permission_error, unsupported

PASS = object()  # not a subscription call
EDGE = "subscribed_apps"
PAGE_TOKEN_REQUIRED = "(#190) This method must be called with a Page Access Token"  # noqa: S105
# The permission each Page webhook field needs (pages_manage_metadata: the call itself).
FIELD_PERMISSIONS = {
    "messages": "pages_messaging",
    "messaging_postbacks": "pages_messaging",
    "messaging_optins": "pages_messaging",
    "message_deliveries": "pages_messaging",
    "message_reads": "pages_messaging",
    "message_echoes": "pages_messaging",
    "feed": "pages_manage_metadata",
    "mention": "pages_manage_metadata",
    "name": "pages_manage_metadata",
    "leadgen": "leads_retrieval",
}
CALL_PERMISSION = "pages_manage_metadata"
WABA_PERMISSION = "whatsapp_business_management"
# For meta_sandbox.served: the edges this module answers, and what their items hold.
SERVED_EDGES = {("Page", EDGE): "SubscribedApp", ("WhatsAppBusinessAccount", EDGE): "SubscribedApp"}
TYPE_FIELDS = {"SubscribedApp": ("id", "name", "link", "category", "subscribed_fields",
                                 "whatsapp_business_api_data")}


def dispatch(ctx, req, method: str, node_id: str, rest: list[str]) -> Any:
    """Answer a subscribed_apps call, or PASS."""
    if rest != [EDGE] or node_id == "me":
        return PASS
    obj = ctx.sandbox.fixtures.get(node_id)
    if obj is None or obj["_type"] not in ("Page", "WhatsAppBusinessAccount"):
        return PASS
    if obj["_type"] == "Page":
        return _page(ctx, req, method, obj)
    return _waba(ctx, method, obj)


def _app(ctx) -> dict[str, Any]:
    sandbox = ctx.sandbox
    return {"id": sandbox.app_id, "name": sandbox.config["app_name"],
            "link": f"https://www.facebook.com/games/?app_id={sandbox.app_id}", "category": "Business"}


def _page(ctx, req, method: str, page: dict) -> Any:
    token = ctx.token
    if token.kind != "PAGE":
        if page["id"] not in ctx.access["pages"]:
            raise unsupported(method, page["id"])
        raise GraphRefusal(PAGE_TOKEN_REQUIRED, 190)
    if token.page_id != page["id"]:
        raise unsupported(method, page["id"])
    if CALL_PERMISSION not in token.grant.granted:  # reading and changing alike
        raise permission_error(f"(#200) Requires {CALL_PERMISSION} permission to manage the object", 200)
    subscriptions = ctx.sandbox.subscriptions
    if method == "GET":
        fields = subscriptions.get(page["id"])
        return {"data": [] if fields is None else [{**_app(ctx), "subscribed_fields": list(fields)}]}
    if method == "DELETE":
        subscriptions.pop(page["id"], None)
        return {"success": True}
    raw = req.params.get("subscribed_fields")
    if not raw:
        raise bad_param("(#100) The parameter subscribed_fields is required")
    fields = [f for f in raw.replace(" ", "").split(",") if f]
    unknown = [f for f in fields if f not in FIELD_PERMISSIONS]
    if unknown:
        raise bad_param(f"(#100) Param subscribed_fields[{fields.index(unknown[0])}] must be one of "
                        f"{{{', '.join(sorted(FIELD_PERMISSIONS))}}} - got \"{unknown[0]}\"")
    granted = token.grant.granted
    lacking = [f for f in fields if FIELD_PERMISSIONS[f] not in granted or CALL_PERMISSION not in granted]
    if lacking:  # the whole call is refused, one line per field
        lines = [f"To subscribe to the {f} field, one of these permissions is needed: "
                 f"{FIELD_PERMISSIONS[f] if CALL_PERMISSION in granted else CALL_PERMISSION}."
                 for f in lacking]
        raise permission_error("(#200) " + "\n".join(lines), 200)
    merged = list(dict.fromkeys([*subscriptions.get(page["id"], []), *fields]))
    subscriptions[page["id"]] = merged
    return {"success": True}


def _waba(ctx, method: str, waba: dict) -> Any:
    token = ctx.token
    if token.kind == "PAGE" or waba.get("_business_id") not in ctx.access["businesses"]:
        raise unsupported(method, waba["id"])
    if WABA_PERMISSION not in token.grant.granted:
        raise permission_error(f"(#200) Requires {WABA_PERMISSION} permission to manage the object", 200)
    subscriptions = ctx.sandbox.subscriptions
    if method == "GET":
        app = _app(ctx)
        entry = {"whatsapp_business_api_data": {k: app[k] for k in ("id", "name", "link")}}
        return {"data": [entry] if waba["id"] in subscriptions else []}
    if method == "DELETE":
        subscriptions.pop(waba["id"], None)
        return {"success": True}
    subscriptions[waba["id"]] = ["messages"]
    return {"success": True}


def drop(sandbox, asset_id: str) -> bool:
    """Fault: the subscription is gone at Meta (an admin removed the app from the Page)."""
    with sandbox.lock:
        return sandbox.subscriptions.pop(str(asset_id), None) is not None


def invalidate_page_tokens(sandbox, page_id: str) -> int:
    """Fault: every token of the Page so far stops working (190); a new one is issued when the
    user token asks for the Page again."""
    with sandbox.lock:
        store = sandbox.store
        doomed = [t for t, rec in store.tokens.items() if rec.kind == "PAGE" and rec.page_id == str(page_id)]
        for token in doomed:
            del store.tokens[token]
        for key in [k for k, t in store.page_tokens.items() if k[1] == str(page_id)]:
            del store.page_tokens[key]
        return len(doomed)


def register(bp, sandbox) -> None:
    """Control routes (guarded like every /_sandbox/ route)."""

    @bp.post("/_sandbox/subscriptions/<asset_id>/drop")
    def drop_subscription(asset_id: str):
        """Drop the app's webhook subscription of a Page or WhatsApp account."""
        return jsonify({"success": True, "dropped": drop(sandbox, asset_id)})

    @bp.post("/_sandbox/subscriptions/<asset_id>")
    def add_subscription(asset_id: str):
        """A Page admin subscribed the app (`fields`, comma-separated; a WhatsApp account: messages)."""
        fields = [f for f in str(request.args.get("fields") or "messages").split(",") if f]
        with sandbox.lock:
            sandbox.subscriptions[str(asset_id)] = fields
        return jsonify({"success": True})

    @bp.get("/_sandbox/subscriptions")
    def list_subscriptions():
        """Every subscription the app holds: {asset id: fields}."""
        with sandbox.lock:
            return jsonify({"data": {k: list(v) for k, v in sandbox.subscriptions.items()}})

    @bp.post("/_sandbox/pages/<page_id>/invalidate-tokens")
    def invalidate_tokens(page_id: str):
        """Every token of the Page issued so far fails with 190."""
        return jsonify({"success": True, "invalidated": invalidate_page_tokens(sandbox, page_id)})



