"""The channels (signed webhook, e-mail) and this process's sender thread for the outbox."""

from __future__ import annotations

import json
import logging
import random
import smtplib
import threading
import time
from email.message import EmailMessage

import requests

from crm_meta.infra.clock import Clock
from crm_meta.notify import smtp
from crm_meta.notify.notices import Notice
from crm_meta.notify.outbox import RetryPolicy, deliver_due
from crm_meta.notify.signing import signed_headers

log = logging.getLogger(__name__)
WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT = 5.0  # seconds per attempt
BACKOFF_BASE = 1.0  # seconds; doubles per attempt, with jitter


def channels_configured(config) -> bool:
    """A webhook URL or an SMTP host: only then are notices queued at all."""
    return bool(config["NOTIFY_WEBHOOK_URL"] or config["SMTP_HOST"])



class PerThreadSession:
    """One requests.Session per thread: its connection pool is worth keeping between deliveries,
    but a Session is not safe to share between threads."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

class Notifier:
    """The channels (webhook, e-mail) and this process's sender thread; `wake` never blocks."""

    def __init__(self, config, *, app=None, clock: Clock | None = None, sleep=time.sleep, smtp_factory=None):
        self.webhook_url = config["NOTIFY_WEBHOOK_URL"]
        self.webhook_secret = config["NOTIFY_WEBHOOK_SECRET"]
        self.smtp = {k: config[f"SMTP_{k}"]
                     for k in ("HOST", "PORT", "USER", "PASSWORD", "FROM", "ALLOW_PLAINTEXT")}
        self.policy = RetryPolicy.from_config(config)  # built once, with the channels
        self.app = app  # the sender thread delivers this app's outbox
        self.clock = clock  # the app's clock: when a notice is due
        self.sleep = sleep
        self.smtp_factory = smtp_factory
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._requested = self._handled = 0  # wake-ups asked for / passes finished
        self._sessions = PerThreadSession()  # the sender thread and the jobs' own

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.smtp["HOST"])

    def wake(self) -> None:
        """Ask the sender thread for a pass over the outbox; returns at once."""
        if self.app is None or not self.enabled:
            return
        with self._changed:
            self._requested += 1
            self._changed.notify_all()
        self._ensure_thread()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the sender has made the passes asked for so far (tests, shutdown)."""
        with self._changed:
            target = self._requested
            return self._changed.wait_for(lambda: self._handled >= target, timeout)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crm-meta-notify", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._handled < self._requested)
                target = self._requested  # one pass answers every wake-up so far
            try:
                deliver_due(self.app, sender=self)
            except Exception:  # the outbox keeps the notices; the job will try again
                log.exception("delivering notifications failed")
            with self._changed:
                self._handled = target
                self._changed.notify_all()

    def channels_for(self, notice: Notice) -> list[str]:
        """The configured channels this notice goes to."""
        wanted = ["webhook"] if self.webhook_url else []
        if self.smtp["HOST"] and notice.recipients:
            wanted.append("email")
        return wanted

    def deliver(self, notice: Notice, channels: list[str] | None = None) -> dict:
        """Send one notice on every configured channel (or on `channels`); channel -> outcome."""
        send = {"webhook": self.post_webhook, "email": self.send_email}
        return {channel: send[channel](notice)
                for channel in (self.channels_for(notice) if channels is None else channels)}

    def post_webhook(self, notice: Notice) -> str:
        """POST the JSON body, signed in the Standard Webhooks format; retry timeouts, 429 and
        5xx with exponential backoff."""
        body = json.dumps(notice.payload(), separators=(",", ":"), sort_keys=True).encode()
        outcome = "failed"
        for attempt in range(WEBHOOK_ATTEMPTS):
            # Signed at each attempt: the timestamp must stay fresh for the receiver.
            headers = {"Content-Type": "application/json",
                       **signed_headers(self.webhook_secret, notice.id, body)}
            try:
                response = self._sessions.get().post(self.webhook_url, data=body, headers=headers,
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
        """One message to the tenant's admins through the configured SMTP server (crm_meta.notify.smtp)."""
        message = EmailMessage()
        message["From"] = self.smtp["FROM"]
        message["To"] = ", ".join(notice.recipients)
        message["Subject"] = notice.subject()
        message["Message-ID"] = f"<{notice.id}@crm-meta>"
        message.set_content(notice.text())
        try:
            server = smtp.Server(host=self.smtp["HOST"], port=int(self.smtp["PORT"]),
                                 user=self.smtp["USER"] or "", password=self.smtp["PASSWORD"] or "",
                                 allow_plaintext=bool(self.smtp["ALLOW_PLAINTEXT"]))
            smtp.send(message, server, factory=self.smtp_factory)
            return "delivered"
        except smtp.SMTPWithoutTLS as exc:
            log.warning("e-mail for notice %s not sent: %s (set up STARTTLS, or SMTPS on port %s)",
                        notice.id, exc, smtp.SMTPS_PORT)
            return "failed:no_starttls"
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("e-mail for notice %s failed: %s", notice.id, type(exc).__name__)
            return f"failed:{type(exc).__name__}"
