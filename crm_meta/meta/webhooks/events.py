"""A delivery's entries as events: what each one is about (object, asset), and the key that
identifies it across Meta's retries (leadgen_id, WhatsApp message id, entry id + field + time)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from crm_meta.meta.types import JsonObject


class Malformed(ValueError):
    """The body is not JSON, or not a webhook delivery's shape."""


@dataclasses.dataclass(frozen=True)
class Event:
    kind: str  # lead | message | status | change
    key: str  # identifies the event whoever sends it, however often
    object: str  # Meta's object: page | instagram | whatsapp_business_account | ...
    field: str
    assets: tuple[tuple[str, str], ...]  # (kind, id) tried in order to find the tenant
    data: JsonObject = dataclasses.field(default_factory=dict)  # what the CRM receives (ids as strings)

    @property
    def type(self) -> str:
        """The event type the CRM receives (Standard Webhooks `type`)."""
        return {"lead": "meta.lead.created", "message": "meta.message.received",
                "status": "meta.message.status"}.get(self.kind, "meta.change")


def _id(value: object) -> str:
    """Meta's ids arrive as strings or numbers: always a string here."""
    if value is None or isinstance(value, bool | dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _object(parent: JsonObject, key: str) -> JsonObject:
    """parent[key] when it is a JSON object, else an empty one."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse(body: bytes) -> list[Event]:
    """Every event in a delivery; raises Malformed when it is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Malformed("not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise Malformed("no entry list")
    obj = str(payload.get("object") or "")
    found: list[Event] = []
    for entry in payload["entry"]:
        if not isinstance(entry, dict):
            raise Malformed("an entry is not an object")
        found.extend(_entry(obj, entry))
    return found


def _entry(obj: str, entry: JsonObject) -> list[Event]:
    entry_id, when = _id(entry.get("id")), _id(entry.get("time"))
    own = "instagram" if obj == "instagram" else "page" if obj == "page" else obj
    events: list[Event] = []
    for change in entry.get("changes") or []:
        if isinstance(change, dict):
            events.extend(_change(obj, own, entry_id, when, change))
    for item in entry.get("messaging") or []:
        if isinstance(item, dict):
            events.append(_messaging(obj, own, entry_id, when, item))
    return events


def _change(obj: str, own: str, entry_id: str, when: str, change: JsonObject) -> list[Event]:
    name = str(change.get("field") or "")
    value = _object(change, "value")
    if obj == "page" and name == "leadgen":
        lead = {k: _id(value.get(k)) for k in ("leadgen_id", "page_id", "form_id", "ad_id",
                                                 "adgroup_id", "created_time")}
        page = lead["page_id"] or entry_id
        return [Event("lead", f"leadgen:{lead['leadgen_id']}", obj, name,
                      (("page", page),), {**lead, "page_id": page})]
    if obj == "whatsapp_business_account" and name == "messages":
        return _whatsapp(obj, entry_id, value)
    return [Event("change", f"{entry_id}:{name}:{when}:{_digest(value)}", obj, name,
                  ((own, entry_id),), {"entry_id": entry_id, "time": when, "value": value})]


def _whatsapp(obj: str, waba_id: str, value: JsonObject) -> list[Event]:
    metadata = _object(value, "metadata")
    phone = _id(metadata.get("phone_number_id"))
    assets: tuple[tuple[str, str], ...] = (("whatsapp_business_account", waba_id),)
    if phone:
        assets = (("phone_number", phone), *assets)
    base = {"waba_id": waba_id, "phone_number_id": phone,
            "display_phone_number": metadata.get("display_phone_number")}
    events: list[Event] = []
    contacts = value.get("contacts") or []
    for message in value.get("messages") or []:
        if isinstance(message, dict):
            events.append(Event("message", f"wamid:{_id(message.get('id'))}", obj, "messages", assets,
                                {**base, "channel": "whatsapp", "message": message,
                                 "contacts": contacts}))
    for status in value.get("statuses") or []:
        if isinstance(status, dict):
            key = f"wastatus:{_id(status.get('id'))}:{status.get('status')}"
            events.append(Event("status", key, obj, "messages", assets,
                                {**base, "channel": "whatsapp", "status": status}))
    if not events:
        events.append(Event("change", f"{waba_id}:messages:{_digest(value)}", obj, "messages", assets,
                            {**base, "value": value}))
    return events


def _messaging(obj: str, own: str, entry_id: str, when: str, item: JsonObject) -> Event:
    message = item.get("message") if isinstance(item.get("message"), dict) else None
    channel = "instagram" if obj == "instagram" else "messenger"
    data = {"entry_id": entry_id, "channel": channel, "sender": item.get("sender"),
            "recipient": item.get("recipient"), "timestamp": item.get("timestamp")}
    if message is not None and message.get("mid"):
        return Event("message", f"mid:{message['mid']}", obj, "messaging", ((own, entry_id),),
                     {**data, "message": message})
    return Event("change", f"{entry_id}:messaging:{when}:{_digest(item)}", obj, "messaging",
                 ((own, entry_id),), {**data, "value": item})


def event_id(tenant_id: int | None, key: str) -> str:
    """The outbox id of an event for a tenant: the same event is queued once."""
    return hashlib.sha256(f"{tenant_id}|{key}".encode()).hexdigest()[:40]
