"""Meta's webhooks, as the sandbox sends them: the app's subscriptions (`/{app-id}/subscriptions`,
the callback verified with hub.challenge), entries batched per object (up to webhook_batch_max),
each delivery signed `X-Hub-Signature-256: sha256=<HMAC-SHA256(app secret, body)>` over the exact
bytes sent (non-ASCII escaped as \\uXXXX), a 200 expected within webhook_timeout_seconds, and a
failed delivery retried with decreasing frequency on the sandbox's clock for 36 hours (7 days
for WhatsApp), then dropped.

Like Meta, an entry about a Page or a WhatsApp account is sent only when that asset has the app
in its `subscribed_apps` (with the field, for a Page) as well as the app-level subscription; and
an app whose callback keeps failing (an error or no answer within the timeout) gets a warning
developer alert after 15 minutes and is unsubscribed after 8 hours of failures (Messenger's
webhook reference, "Unsubscribe")."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

# Waits after the 1st, 2nd... failed attempt: more and more spaced out.
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (15, 60, 300, 900, 3600, 2 * 3600, 4 * 3600, 8 * 3600))
GIVE_UP = {"whatsapp_business_account": timedelta(days=7)}
DEFAULT_GIVE_UP = timedelta(hours=36)
FAILING_WARNING = timedelta(minutes=15)  # "for over 15 minutes, ... a warning developer alert"
FAILING_UNSUBSCRIBE = timedelta(hours=8)  # "continues to fail for 8 hours, ... unsubscribe your app"
ASSET_SUBSCRIPTIONS = ("page", "whatsapp_business_account")  # objects sent per subscribed asset


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    id: int
    object: str
    body: bytes
    entries: int
    first_at: datetime
    next_at: datetime
    attempts: list[dict[str, Any]] = field(default_factory=list)
    state: str = "pending"  # pending | delivered | dropped

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "object": self.object, "entries": self.entries, "state": self.state,
                "attempts": list(self.attempts), "next_at": self.next_at.isoformat(),
                "body": json.loads(self.body)}


class Webhooks:
    """Subscriptions, open batches, deliveries and their retries; one sender thread."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.generation = sandbox.generation
        self.subscriptions: dict[str, dict[str, Any]] = {}  # object -> {callback_url, fields, ...}
        self.open: dict[str, list[dict]] = {}  # object -> entries waiting for their delivery
        self.deliveries: list[Delivery] = []
        self.ids = itertools.count(1)
        self.wakeup = threading.Condition()
        self.thread: threading.Thread | None = None
        self.sending = threading.Lock()  # one pass at a time
        self.alerts: list[dict[str, Any]] = []  # the developer alerts Meta would send

    # -- subscriptions -------------------------------------------------------------------
    def subscribe(self, obj: str, callback_url: str, fields: list[str], verify_token: str) -> None:
        """Verify the callback as Meta does (GET hub.mode/hub.challenge/hub.verify_token), then
        keep the subscription; raises ValueError with Meta's wording when verification fails."""
        challenge = str(next(self.ids) * 7919 + 1000003)
        try:
            answer = requests.get(callback_url, params={"hub.mode": "subscribe", "hub.challenge": challenge,
                                                        "hub.verify_token": verify_token}, timeout=10)
            status, text = answer.status_code, answer.text
        except requests.RequestException as exc:
            status, text = 0, type(exc).__name__
        if status != 200 or text.strip() != challenge:
            raise ValueError("(#2200) Callback verification failed with the following errors: "
                             f"HTTP Status Code = {status}; HTTP Message = {text[:80]}")
        current = self.subscriptions.get(obj, {"fields": []})
        merged = sorted(set(current["fields"]) | set(fields))
        self.subscriptions[obj] = {"object": obj, "callback_url": callback_url, "active": True,
                                   "fields": merged, "_verify_token": verify_token}

    def listed(self) -> list[dict[str, Any]]:
        return [{"object": s["object"], "callback_url": s["callback_url"], "active": s["active"],
                 "fields": [{"name": f, "version": "v25.0"} for f in s["fields"]]}
                for s in self.subscriptions.values()]

    def unsubscribe(self, obj: str | None) -> None:
        if obj:
            self.subscriptions.pop(obj, None)
        else:
            self.subscriptions.clear()

    # -- events --------------------------------------------------------------------------
    def emit(self, obj: str, entry: dict[str, Any], field_name: str) -> bool:
        """Queue an entry if the app subscribed to this object and field; True when queued."""
        subscription = self.subscriptions.get(obj)
        if subscription is None or field_name not in subscription["fields"]:
            return False
        if obj in ASSET_SUBSCRIPTIONS:  # the Page (or WhatsApp account) must have the app too
            fields = self.sandbox.subscriptions.get(str(entry.get("id")))
            if fields is None or (obj == "page" and field_name not in fields):
                return False
        self.open.setdefault(obj, []).append(entry)
        if self.sandbox.config["webhook_autosend"]:
            self._ensure_thread()
            with self.wakeup:
                self.wakeup.notify_all()
        return True

    def _close_batches(self, now: datetime) -> None:
        limit = self.sandbox.config["webhook_batch_max"]
        for obj, entries in list(self.open.items()):
            while entries:
                chunk, entries = entries[:limit], entries[limit:]
                body = json.dumps({"object": obj, "entry": chunk}, ensure_ascii=True).encode()
                self.deliveries.append(Delivery(next(self.ids), obj, body, len(chunk), now, now))
            self.open[obj] = []

    # -- sending -------------------------------------------------------------------------
    def run_due(self) -> dict[str, int]:
        """Send every delivery due on the sandbox's clock (new ones first); counts by result."""
        counts = {"delivered": 0, "failed": 0, "dropped": 0}
        with self.sending:
            with self.sandbox.lock:
                now = self.sandbox.now()
                self._close_batches(now)
                due = [d for d in self.deliveries if d.state == "pending" and d.next_at <= now]
            for delivery in due:
                counts[self._attempt(delivery)] += 1
        return counts

    def _attempt(self, delivery: Delivery) -> str:
        subscription = self.subscriptions.get(delivery.object)
        status, error = 0, None
        if subscription is not None:
            headers = {"Content-Type": "application/json",
                       "X-Hub-Signature-256": sign(self.sandbox.app_secret, delivery.body),
                       "User-Agent": "facebookexternalua"}
            try:
                answer = requests.post(subscription["callback_url"], data=delivery.body, headers=headers,
                                       timeout=self.sandbox.config["webhook_timeout_seconds"])
                status = answer.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
        with self.sandbox.lock:
            now = self.sandbox.now()
            lost = self.sandbox.config["webhook_ignore_acks"] > 0
            if lost:
                self.sandbox.config["webhook_ignore_acks"] -= 1
            delivery.attempts.append({"at": now.isoformat(), "status": status, "error": error,
                                      "answer_lost": lost})
            if status == 200 and not lost:
                delivery.state = "delivered"
                if subscription is not None:  # failing no more
                    subscription.pop("failing_since", None)
                    subscription.pop("warned", None)
                return "delivered"
            if subscription is not None and self._failing(delivery.object, subscription, now):
                for pending in self.deliveries:  # unsubscribed: nothing more is sent for it
                    if pending.object == delivery.object and pending.state == "pending":
                        pending.state = "dropped"
                return "dropped"
            give_up = GIVE_UP.get(delivery.object, DEFAULT_GIVE_UP)
            wait = RETRY_DELAYS[min(len(delivery.attempts), len(RETRY_DELAYS)) - 1]
            if now + wait - delivery.first_at > give_up:
                delivery.state = "dropped"
                return "dropped"
            delivery.next_at = now + wait
            return "failed"

    def _failing(self, obj: str, subscription: dict[str, Any], now: datetime) -> bool:
        """One more failed attempt: a warning alert after 15 minutes of failures; after 8 hours
        the app-level subscription of this object is removed (True)."""
        since = subscription.setdefault("failing_since", now)
        if now - since >= FAILING_UNSUBSCRIBE:
            self.subscriptions.pop(obj, None)
            self.alerts.append({"at": now.isoformat(), "object": obj, "kind": "unsubscribed",
                                "failing_since": since.isoformat()})
            return True
        if now - since >= FAILING_WARNING and not subscription.get("warned"):
            subscription["warned"] = True
            self.alerts.append({"at": now.isoformat(), "object": obj, "kind": "warning",
                                "failing_since": since.isoformat()})
        return False

    def _ensure_thread(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._loop, name="sandbox-webhooks", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        window = self.sandbox.config["webhook_batch_window_ms"] / 1000
        while self.generation == self.sandbox.generation:
            with self.wakeup:
                self.wakeup.wait(timeout=1.0)
            if window:
                threading.Event().wait(window)  # let entries arriving together share a delivery
            if self.sandbox.config["webhook_autosend"] and self.generation == self.sandbox.generation:
                try:
                    self.run_due()
                except Exception:  # the sandbox keeps serving; the next pass retries
                    logging.getLogger(__name__).exception("sandbox webhook pass failed")


def of(sandbox) -> Webhooks:
    """The webhooks of the sandbox's current generation (a reset starts afresh)."""
    with sandbox.lock:
        current = sandbox.__dict__.get("_webhooks")
        if current is None or current.generation != sandbox.generation:
            current = sandbox.__dict__["_webhooks"] = Webhooks(sandbox)
        return current
