"""Tenant notifications from the keep-alive: a signed webhook and an optional e-mail.

Delivery happens on one background thread per process, fed by a bounded queue, so a slow
or dead receiver never holds up a sweep. The decision to warn (once per deadline) is taken
and recorded by crm_meta.meta.keepalive in the same transaction as the check; this module
only carries the message, retrying the webhook with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import random
import smtplib
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from email.message import EmailMessage

import requests

from crm_meta.meta.payloads import iso

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-CRM-Meta-Signature"  # "sha256=<hex HMAC-SHA256 of the raw body>"
DELIVERY_HEADER = "X-CRM-Meta-Delivery"  # the notice id: receivers can drop duplicates
WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT = 5.0  # seconds per attempt
BACKOFF_BASE = 1.0  # seconds; doubles per attempt, with jitter
QUEUE_SIZE = 10000
EVENTS = {"warning": "meta.connection.warning", "status_changed": "meta.connection.status_changed"}


@dataclass(frozen=True)
class Notice:
    """One notification about one tenant's connection (no token, no secret)."""

    id: str
    event: str  # warning | status_changed
    tenant_id: int
    status: str
    created_at: str
    kind: str | None = None  # token | data_access (warnings)
    days: int | None = None
    ends_at: str | None = None
    previous_status: str | None = None
    tenant_slug: str | None = None
    tenant_name: str | None = None
    recipients: tuple[str, ...] = ()

    @classmethod
    def create(cls, *, event: str, tenant_id: int, status: str, now: datetime, **fields) -> Notice:
        return cls(id=uuid.uuid4().hex, event=event, tenant_id=tenant_id, status=status,
                   created_at=iso(now), **fields)

    def payload(self) -> dict:
        """The webhook's JSON body."""
        body = asdict(self)
        body.pop("recipients")
        body["event"] = EVENTS.get(self.event, self.event)
        body["tenant"] = {"id": body.pop("tenant_id"), "slug": body.pop("tenant_slug"),
                          "name": body.pop("tenant_name")}
        return body

    def subject(self) -> str:
        if self.event == "warning":
            what = "Meta connection" if self.kind == "token" else "Meta data access"
            return f"Your {what} ends in {self.days} day{'s' if self.days != 1 else ''}"
        if self.status in ("needs_reauth", "expired", "revoked"):
            return "Your Meta connection needs to be reconnected"
        return "Your Meta connection works again"

    def text(self) -> str:
        name = self.tenant_name or self.tenant_slug or f"tenant {self.tenant_id}"
        lines = [f"{self.subject()} ({name})."]
        if self.event == "warning":
            lines.append(f"It ends at {self.ends_at}. An admin can renew it in one click from "
                         "Marketing > Meta connection, before it stops working.")
        else:
            lines.append(f"Status: {self.status} (was {self.previous_status}).")
            if self.status in ("needs_reauth", "expired", "revoked"):
                lines.append("An admin can reconnect it from Marketing > Meta connection.")
        return "\n\n".join(lines) + "\n"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: constant-time comparison of the signature."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)


class Notifier:
    """A queue and one daemon thread that deliver notices; `submit` never blocks."""

    def __init__(self, config, *, app=None, sleep=time.sleep, smtp_factory=None):
        self.webhook_url = config.get("NOTIFY_WEBHOOK_URL") or ""
        self.webhook_secret = config.get("NOTIFY_WEBHOOK_SECRET") or ""
        self.smtp = {k: config.get(f"SMTP_{k}") for k in ("HOST", "PORT", "USER", "PASSWORD", "FROM")}
        self.app = app  # to record deliveries in the audit trail
        self.sleep = sleep
        self.smtp_factory = smtp_factory
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._session = requests.Session()

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.smtp["HOST"])

    def submit(self, notices) -> int:
        """Queue notices for delivery; returns how many were queued (never waits)."""
        if not self.enabled:
            return 0
        queued = 0
        for notice in notices:
            try:
                self._queue.put_nowait(notice)
                queued += 1
            except queue.Full:
                log.error("notification queue full; notice %s for tenant %s dropped",
                          notice.id, notice.tenant_id)
        if queued:
            self._ensure_thread()
        return queued

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued has been handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crm-meta-notify", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            notice = self._queue.get()
            try:
                self.deliver(notice)
            except Exception:  # one notice's failure never stops the others
                log.exception("delivering notice %s failed", notice.id)
            finally:
                self._queue.task_done()

    def deliver(self, notice: Notice) -> dict:
        """Send one notice on every configured channel; returns channel -> outcome."""
        results = {}
        if self.webhook_url:
            results["webhook"] = self.post_webhook(notice)
        if self.smtp["HOST"] and notice.recipients:
            results["email"] = self.send_email(notice)
        self._audit(notice, results)
        return results

    def post_webhook(self, notice: Notice) -> str:
        """POST the signed JSON body; retry timeouts, 429 and 5xx with exponential backoff."""
        body = json.dumps(notice.payload(), separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: notice.id,
                   SIGNATURE_HEADER: sign(self.webhook_secret, body)}
        outcome = "failed"
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                response = self._session.post(self.webhook_url, data=body, headers=headers,
                                              timeout=WEBHOOK_TIMEOUT)
                if response.status_code < 300:
                    return "delivered"
                if response.status_code != 429 and response.status_code < 500:
                    log.warning("webhook refused notice %s: HTTP %s", notice.id, response.status_code)
                    return f"refused:{response.status_code}"
                outcome = f"failed:{response.status_code}"
            except requests.RequestException as exc:
                outcome = f"failed:{type(exc).__name__}"
            if attempt + 1 < WEBHOOK_ATTEMPTS:
                self.sleep(BACKOFF_BASE * 2 ** attempt * (0.5 + random.random()))
        log.warning("webhook gave up on notice %s after %s attempts (%s)", notice.id,
                    WEBHOOK_ATTEMPTS, outcome)
        return outcome

    def send_email(self, notice: Notice) -> str:
        """One message to the tenant's admins through the configured SMTP server."""
        message = EmailMessage()
        message["From"] = self.smtp["FROM"] or "crm-meta@localhost"
        message["To"] = ", ".join(notice.recipients)
        message["Subject"] = notice.subject()
        message["Message-ID"] = f"<{notice.id}@crm-meta>"
        message.set_content(notice.text())
        port = int(self.smtp["PORT"] or 587)
        factory = self.smtp_factory or (smtplib.SMTP_SSL if port == 465 else smtplib.SMTP)
        try:
            with factory(self.smtp["HOST"], port, timeout=10) as server:
                if port != 465 and hasattr(server, "starttls"):
                    server.ehlo()
                    if server.has_extn("starttls"):
                        server.starttls()
                        server.ehlo()
                if self.smtp["USER"]:
                    server.login(self.smtp["USER"], self.smtp["PASSWORD"] or "")
                server.send_message(message)
            return "delivered"
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("e-mail for notice %s failed: %s", notice.id, type(exc).__name__)
            return f"failed:{type(exc).__name__}"

    def _audit(self, notice: Notice, results: dict) -> None:
        if self.app is None or not results:
            return
        from crm_meta import audit

        ok = all(value == "delivered" for value in results.values())
        try:
            with self.app.app_context():
                audit.record("meta.notify.delivery", actor="keepalive", tenant_id=notice.tenant_id,
                             outcome="success" if ok else "failure",
                             details={"notice": notice.id, "event": notice.event, **results},
                             commit=True)
        except Exception:  # the audit table may be gone (tests) or the database down
            log.warning("could not record the delivery of notice %s", notice.id, exc_info=True)


_creation = threading.Lock()


def notifier(app) -> Notifier:
    """The app's Notifier, created on first use."""
    with _creation:
        existing = app.extensions.get("crm_meta_notifier")
        if existing is None:
            existing = app.extensions["crm_meta_notifier"] = Notifier(app.config, app=app)
        return existing


def dispatch(app, notices) -> int:
    """Hand notices to the background sender; a no-op when no channel is configured."""
    if not notices:
        return 0
    return notifier(app).submit(notices)
