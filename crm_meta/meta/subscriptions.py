"""Webhook subscriptions at Meta: a Page's (`/{page-id}/subscribed_apps`, with the Page's token)
and a WhatsApp Business account's (`/{waba-id}/subscribed_apps`, with the user token).

Meta refuses a whole Page subscription (403, code 200) when the grant lacks the permission of
any one field, so only the fields the grant allows are asked for; the rest are reported."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_meta.meta.errors import GraphError, PageTokenRequiredError, TokenInvalidError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.types import JsonObject

# The fields CRM Ventas subscribes a Page to, plus leadgen (lead ads), and the permission each
# needs besides pages_manage_metadata, which the call itself needs (docs/meta-conformance.md C5).
PAGE_FIELDS = ("messages", "messaging_postbacks", "feed", "mention", "leadgen")
FIELD_PERMISSION = {"messages": "pages_messaging", "messaging_postbacks": "pages_messaging",
                    "feed": "pages_manage_metadata", "mention": "pages_manage_metadata",
                    "leadgen": "leads_retrieval"}
CALL_PERMISSION = "pages_manage_metadata"
WABA_PERMISSION = "whatsapp_business_management"


@dataclass
class Outcome:
    """What one subscription change did: the fields now kept, those left out, or the failure."""

    asset_id: str
    fields: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    error: str | None = None  # a GraphError kind, or permission_missing before any call

    def as_dict(self) -> JsonObject:
        return {"asset_id": self.asset_id, "subscribed_fields": self.fields,
                "left_out_fields": self.left_out, "error": self.error}


def allowed_fields(granted: set[str]) -> tuple[list[str], list[str]]:
    """(fields the grant allows, fields left out); nothing at all without the call's permission."""
    if CALL_PERMISSION not in granted:
        return [], list(PAGE_FIELDS)
    kept = [f for f in PAGE_FIELDS if FIELD_PERMISSION[f] in granted]
    return kept, [f for f in PAGE_FIELDS if f not in kept]


def succeeded(body: object) -> bool:
    """Meta's `{"success": true}`, also when the value comes as the string "true"."""
    value = body.get("success") if isinstance(body, dict) else body
    return value is True or str(value).lower() == "true"


def subscribe_page(graph: GraphClient, page_id: str, page_token: str, granted: set[str]) -> Outcome:
    kept, left_out = allowed_fields(granted)
    outcome = Outcome(page_id, left_out=left_out)
    if not kept:
        outcome.error = "permission_missing"
        return outcome
    try:
        body = graph.call("POST", f"{page_id}/subscribed_apps", token=page_token,
                          params={"subscribed_fields": ",".join(kept)})
    except GraphError as exc:
        outcome.error = _kind(exc)
        return outcome
    if succeeded(body):
        outcome.fields = kept
    else:
        outcome.error = "meta_error"
    return outcome


def subscribe_waba(graph: GraphClient, waba_id: str, user_token: str, granted: set[str]) -> Outcome:
    outcome = Outcome(waba_id)
    if WABA_PERMISSION not in granted:
        outcome.error = "permission_missing"
        return outcome
    try:
        body = graph.call("POST", f"{waba_id}/subscribed_apps", token=user_token)
    except GraphError as exc:
        outcome.error = _kind(exc)
        return outcome
    if succeeded(body):
        outcome.fields = ["messages"]  # a WhatsApp account's app subscription is all-or-nothing
    else:
        outcome.error = "meta_error"
    return outcome


def unsubscribe(graph: GraphClient, asset_id: str, token: str) -> bool:
    """DELETE /{id}/subscribed_apps (a Page's token for a Page); best effort."""
    try:
        return succeeded(graph.call("DELETE", f"{asset_id}/subscribed_apps", token=token))
    except GraphError:
        return False


def check_page(graph: GraphClient, page_id: str, page_token: str) -> str | None:
    """The keep-alive's look at a Page: None when our app is subscribed, else the trouble
    (`token_invalid`: the Page token no longer works; `subscription_lost`)."""
    try:
        body = graph.get(f"{page_id}/subscribed_apps", token=page_token)
    except PageTokenRequiredError:
        return "token_invalid"
    except TokenInvalidError:
        return "token_invalid"
    apps = body.get("data") if isinstance(body, dict) else None
    if any(str(app.get("id")) == str(graph.app_id) for app in apps or [] if isinstance(app, dict)):
        return None
    return "subscription_lost"


def _kind(exc: GraphError) -> str:
    return "token_invalid" if isinstance(exc, TokenInvalidError) else exc.kind
