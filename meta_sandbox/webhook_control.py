"""The webhooks' Graph edge (`/{app-id}/subscriptions`, app token only) and control endpoints:
a test lead like Meta's Lead Ads Testing Tool, Page and WhatsApp messages and statuses, raw
entries, a pass over due deliveries, and the delivery log."""

from __future__ import annotations

import itertools
from typing import Any

from flask import jsonify

from . import auth, webhooks
from . import marketing_data as data
from .errors import GraphRefusal, bad_param, unsupported

_numbers = itertools.count(1)


def subscriptions(sandbox, method: str, req) -> Any:
    """GET lists, POST adds (after verifying the callback), DELETE removes: the app token only."""
    token, params = req.bearer or req.params.get("access_token"), req.params
    if not token or not auth.is_app_token(sandbox, token):
        raise GraphRefusal("(#15) This method must be called with an app access_token.", 15)
    hooks = webhooks.of(sandbox)
    if method == "GET":
        return {"data": hooks.listed()}
    if method == "DELETE":
        hooks.unsubscribe(params.get("object"))
        return {"success": True}
    if method != "POST":
        raise unsupported(method, "subscriptions")
    for name in ("object", "callback_url", "fields", "verify_token"):
        if not params.get(name):
            raise bad_param(f"(#100) The parameter {name} is required")
    fields = [f.strip() for f in params["fields"].strip("[]").replace('"', "").split(",") if f.strip()]
    try:
        hooks.subscribe(params["object"], params["callback_url"], fields, params["verify_token"])
    except ValueError as err:  # Meta's answer: code 2200, OAuthException
        raise GraphRefusal(str(err), 2200) from None
    return {"success": True}


def _stamp(sandbox) -> int:
    return int(sandbox.now().timestamp())


def create_lead(sandbox, body: dict[str, Any]) -> dict[str, Any]:
    """A lead on a form, and its `leadgen` entry for the Page. Like the Testing Tool: one test
    lead per form (delete it to make another), organic (no ad). `via: "ad"` makes an ad's lead
    instead (no limit, with ad ids), as real traffic would."""
    state = data.state(sandbox)
    form = state.objects.get(str(body.get("form_id") or ""))
    if form is None or form["_type"] != "LeadgenForm":
        raise ValueError("form_id must be one of the sandbox's lead forms")
    via_ad = body.get("via") == "ad"
    existing = [i for i in state.leads.get(form["id"], []) if state.objects[i].get("_test")]
    if existing and not via_ad:
        raise ValueError("This form already has a test lead; delete it to create a new one")
    page = sandbox.fixtures.get(form["_page_id"])
    n = next(_numbers)
    lead = data._lead(str(data._LEAD_BASE + 900000 + n), form["id"], page, sandbox.now(), n)
    lead["_test"] = not via_ad
    lead["is_organic"] = not via_ad
    if body.get("field_data"):
        lead["field_data"] = body["field_data"]
    value: dict[str, Any] = {"form_id": form["id"], "leadgen_id": lead["id"], "page_id": page["id"],
                             "created_time": _stamp(sandbox)}
    if via_ad:
        lead["ad_id"], lead["adset_id"], lead["campaign_id"] = (f"2385{n:010d}", f"2386{n:010d}",
                                                                  f"2387{n:010d}")
        value.update(ad_id=lead["ad_id"], adgroup_id=lead["ad_id"])
    state.leads.setdefault(form["id"], []).append(data.add(state, lead))
    entry = {"id": page["id"], "time": _stamp(sandbox), "changes": [{"field": "leadgen", "value": value}]}
    queued = webhooks.of(sandbox).emit("page", entry, "leadgen")
    return {"lead_id": lead["id"], "form_id": form["id"], "page_id": page["id"], "webhook_queued": queued}


def page_message(sandbox, body: dict[str, Any]) -> dict[str, Any]:
    page_id = str(body.get("page_id") or "")
    n = next(_numbers)
    mid = f"m_sandbox{n:08d}"
    entry = {"id": page_id, "time": _stamp(sandbox) * 1000, "messaging": [{
        "sender": {"id": str(body.get("sender_id") or f"69{n:08d}")}, "recipient": {"id": page_id},
        "timestamp": _stamp(sandbox) * 1000, "message": {"mid": mid, "text": str(body.get("text") or "")}}]}
    return {"mid": mid, "webhook_queued": webhooks.of(sandbox).emit("page", entry, "messages")}


def _wa_value(sandbox, phone_number_id: str) -> tuple[str, dict[str, Any]]:
    phone = sandbox.fixtures.get(phone_number_id)
    if phone is None or phone["_type"] != "PhoneNumber":
        raise ValueError("phone_number_id must be one of the sandbox's WhatsApp phone numbers")
    waba = next(o for o in sandbox.fixtures.objects.values() if o["_type"] == "WhatsAppBusinessAccount"
                and phone_number_id in o.get("_phone_numbers", []))
    return waba["id"], {"messaging_product": "whatsapp", "metadata": {
        "display_phone_number": phone["display_phone_number"].replace(" ", "").lstrip("+"),
        "phone_number_id": phone_number_id}}


def whatsapp(sandbox, body: dict[str, Any], kind: str) -> dict[str, Any]:
    waba_id, value = _wa_value(sandbox, str(body.get("phone_number_id") or ""))
    n = next(_numbers)
    wamid = str(body.get("message_id") or f"wamid.SANDBOX{n:012d}")
    if kind == "message":
        sender = str(body.get("from") or "34611000111")
        value["contacts"] = [{"profile": {"name": str(body.get("name") or "Cliente")}, "wa_id": sender}]
        value["messages"] = [{"from": sender, "id": wamid, "timestamp": str(_stamp(sandbox)),
                              "type": "text", "text": {"body": str(body.get("text") or "")}}]
    else:
        value["statuses"] = [{"id": wamid, "status": str(body.get("status") or "delivered"),
                              "timestamp": str(_stamp(sandbox)),
                              "recipient_id": str(body.get("to") or "34611000111")}]
    entry = {"id": waba_id, "changes": [{"field": "messages", "value": value}]}
    queued = webhooks.of(sandbox).emit("whatsapp_business_account", entry, "messages")
    return {"id": wamid, "webhook_queued": queued}


def register(bp, sandbox, guarded, json_body) -> None:
    """Add the webhook control routes to the sandbox blueprint."""

    def locked(func, *args):
        with sandbox.lock:
            return func(sandbox, *args)

    @bp.get("/_sandbox/webhooks")
    def webhook_log():
        hooks = webhooks.of(sandbox)
        return jsonify({"subscriptions": hooks.listed(), "alerts": list(hooks.alerts),
                        "deliveries": [d.summary() for d in hooks.deliveries]})

    @bp.post("/_sandbox/webhooks/run")
    def webhook_run():
        return jsonify(webhooks.of(sandbox).run_due())

    @bp.post("/_sandbox/webhooks/events")
    @guarded
    def webhook_event():
        body = json_body()
        if not isinstance(body.get("entry"), dict) or not body.get("object") or not body.get("field"):
            raise ValueError("object, field and entry (an object) are required")
        queued = webhooks.of(sandbox).emit(body["object"], body["entry"], body["field"])
        return jsonify({"webhook_queued": queued})

    @bp.route("/_sandbox/test-leads", methods=["POST"], endpoint="test_lead")
    @guarded
    def test_lead():
        return jsonify(locked(create_lead, json_body()))

    @bp.route("/_sandbox/test-leads/<lead_id>", methods=["DELETE"], endpoint="delete_test_lead")
    def delete_test_lead(lead_id: str):
        with sandbox.lock:
            state = data.state(sandbox)
            lead = state.objects.pop(lead_id, None)
            if lead is not None:
                state.leads[lead["form_id"]].remove(lead_id)
        return jsonify({"success": lead is not None})

    @bp.post("/_sandbox/webhooks/page-message")
    @guarded
    def page_message_route():
        return jsonify(locked(page_message, json_body()))

    @bp.post("/_sandbox/webhooks/whatsapp-message")
    @guarded
    def whatsapp_message_route():
        return jsonify(locked(whatsapp, json_body(), "message"))

    @bp.post("/_sandbox/webhooks/whatsapp-status")
    @guarded
    def whatsapp_status_route():
        return jsonify(locked(whatsapp, json_body(), "status"))
