"""Tenant notifications from the keep-alive: a signed webhook and an optional e-mail, at least once.

The decision to warn (once per deadline) is taken by crm_meta.meta.keepalive, which writes the
notice to the outbox (crm_meta.models.NotificationOutbox) in the same transaction as the check.
Delivery comes after, from the outbox: the sweep only wakes this process's sender thread (so a
slow or dead receiver never holds up a sweep), and the `meta.notify.outbox` job delivers
whatever is still due, in whichever process runs next. A sender claims a row with a
conditional UPDATE that moves `next_attempt_at` ahead by a lease, so two processes never send
the same row at once and a killed sender's rows come back after the lease. Receivers drop
duplicates by the notice id in X-CRM-Meta-Delivery, which stays the same across retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import smtplib
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from email.message import EmailMessage

import requests
from sqlalchemy import delete, update

from crm_meta import audit, mail
from crm_meta.database import db
from crm_meta.models import NotificationOutbox
from crm_meta.timestamps import iso
from crm_meta.upsert import insert_ignore

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-CRM-Meta-Signature"  # "sha256=<hex HMAC-SHA256 of the raw body>"
DELIVERY_HEADER = "X-CRM-Meta-Delivery"  # the notice id: receivers can drop duplicates
WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT = 5.0  # seconds per attempt
BACKOFF_BASE = 1.0  # seconds; doubles per attempt, with jitter
BATCH = 50  # due rows looked up per query; each is still claimed on its own
EVENTS = {"warning": "meta.connection.warning", "status_changed": "meta.connection.status_changed",
          "app_misconfigured": "meta.app.misconfigured"}


@dataclass(frozen=True)
class Notice:
    """One notification about one tenant's connection (no token, no secret)."""

    id: str
    event: str  # warning | status_changed | app_misconfigured (app-wide: no tenant)
    tenant_id: int | None
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
    def create(cls, *, event: str, tenant_id: int | None, status: str, now: datetime,
               key: tuple | None = None, **fields) -> Notice:
        """A notice; with `key`, its id is derived from it, so that two checks deciding the same
        notice at once queue it once (the outbox keeps the first)."""
        notice_id = (hashlib.sha256(repr((event, tenant_id, *key)).encode()).hexdigest()[:32]
                     if key is not None else uuid.uuid4().hex)
        return cls(id=notice_id, event=event, tenant_id=tenant_id, status=status,
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
        if self.event == "app_misconfigured":
            return "The Meta app is misconfigured"
        if self.event == "warning":
            what = "Meta connection" if self.kind == "token" else "Meta data access"
            return f"Your {what} ends in {self.days} day{'s' if self.days != 1 else ''}"
        if self.status in ("needs_reauth", "expired", "revoked"):
            return "Your Meta connection needs to be reconnected"
        return "Your Meta connection works again"

    def text(self) -> str:
        if self.event == "app_misconfigured":
            return (f"{self.subject()}: Meta refuses the app's own credential (for example, the app "
                    "secret was reset at Meta). Connection checks are paused and no tenant's "
                    "connection is marked. An operator must fix META_APP_ID / META_APP_SECRET; "
                    "`flask meta doctor` names the cause.\n")
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


def channels_configured(config) -> bool:
    """A webhook URL or an SMTP host: only then are notices queued at all."""
    return bool(config.get("NOTIFY_WEBHOOK_URL") or config.get("SMTP_HOST"))


class Notifier:
    """The channels (webhook, e-mail) and this process's sender thread; `wake` never blocks."""

    def __init__(self, config, *, app=None, clock=None, sleep=time.sleep, smtp_factory=None):
        self.webhook_url = config.get("NOTIFY_WEBHOOK_URL") or ""
        self.webhook_secret = config.get("NOTIFY_WEBHOOK_SECRET") or ""
        self.smtp = {k: config.get(f"SMTP_{k}") for k in ("HOST", "PORT", "USER", "PASSWORD", "FROM")}
        self.app = app  # the sender thread delivers this app's outbox
        self.clock = clock  # the app's clock: when a notice is due
        self.sleep = sleep
        self.smtp_factory = smtp_factory
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._requested = self._handled = 0  # wake-ups asked for / passes finished
        self._local = threading.local()  # one requests.Session per thread (sender, jobs)

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

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

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
        """One message to the tenant's admins through the configured SMTP server (crm_meta.mail)."""
        message = EmailMessage()
        message["From"] = self.smtp["FROM"] or "crm-meta@localhost"
        message["To"] = ", ".join(notice.recipients)
        message["Subject"] = notice.subject()
        message["Message-ID"] = f"<{notice.id}@crm-meta>"
        message.set_content(notice.text())
        try:
            mail.send(message, host=self.smtp["HOST"], port=int(self.smtp["PORT"] or 587),
                      user=self.smtp["USER"] or "", password=self.smtp["PASSWORD"] or "",
                      factory=self.smtp_factory)
            return "delivered"
        except mail.SMTPWithoutTLS as exc:
            log.warning("e-mail for notice %s not sent: %s (set up STARTTLS, or SMTPS on port %s)",
                        notice.id, exc, mail.SMTPS_PORT)
            return "failed:no_starttls"
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("e-mail for notice %s failed: %s", notice.id, type(exc).__name__)
            return f"failed:{type(exc).__name__}"


# -- the outbox ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How often and for how long the outbox tries a notice, from the configuration."""

    max_attempts: int = 12
    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)
    keep: timedelta = timedelta(days=7)

    @classmethod
    def from_config(cls, config) -> RetryPolicy:
        return cls(
            max_attempts=max(1, int(config.get("NOTIFY_MAX_ATTEMPTS", 12))),
            base=timedelta(seconds=float(config.get("NOTIFY_RETRY_BASE_SECONDS", 60))),
            cap=timedelta(seconds=float(config.get("NOTIFY_RETRY_MAX_SECONDS", 6 * 3600))),
            lease=timedelta(seconds=float(config.get("NOTIFY_CLAIM_SECONDS", 300))),
            keep=timedelta(days=float(config.get("NOTIFY_OUTBOX_KEEP_DAYS", 7))),
        )

    def delay(self, attempts: int) -> timedelta:
        """The wait after the n-th failed attempt: base, 2 x base, 4 x base ... at most cap."""
        return min(self.cap, self.base * 2 ** min(max(attempts - 1, 0), 30))


_COLUMNS = ("id", "event", "tenant_id")  # kept in their own columns, not in the payload


def outbox_rows(notices, now: datetime) -> list[NotificationOutbox]:
    """Outbox rows for notices, due at once; the caller adds them to the check's transaction."""
    rows = []
    for notice in notices:
        payload = {k: v for k, v in asdict(notice).items() if k not in _COLUMNS}
        payload["recipients"] = list(notice.recipients)
        rows.append(NotificationOutbox(id=notice.id, tenant_id=notice.tenant_id, event=notice.event,
                                       payload=payload, created_at=now, attempts=0,
                                       next_attempt_at=now, channels_done=[]))
    return rows


def queue(rows: list[NotificationOutbox]) -> int:
    """Add outbox rows to the current transaction; a row whose id is already queued (the same
    notice decided by a concurrent check) is skipped. Returns how many were queued."""
    columns = [c.name for c in NotificationOutbox.__table__.columns]
    return insert_ignore(NotificationOutbox, [{c: getattr(r, c) for c in columns} for r in rows])


def to_notice(row: NotificationOutbox) -> Notice:
    """The Notice a row was made from (fields unknown to this version are ignored)."""
    known = {f.name for f in fields(Notice)} - set(_COLUMNS)
    values = {k: v for k, v in (row.payload or {}).items() if k in known}
    values["recipients"] = tuple(values.get("recipients") or ())
    return Notice(id=row.id, event=row.event, tenant_id=row.tenant_id, **values)


def deliver_due(app, *, sender: Notifier, stopping: threading.Event | None = None) -> Counter:
    """Deliver every notice due now, whoever queued it; counts by result. Each row is tried
    at most once per call, so a call always ends."""
    counts: Counter = Counter()
    with app.app_context():
        policy = RetryPolicy.from_config(app.config)
        tried: set[str] = set()
        while not (stopping is not None and stopping.is_set()):
            query = (db.select(NotificationOutbox.id)
                     .where(NotificationOutbox.next_attempt_at <= sender.clock.now())
                     .order_by(NotificationOutbox.next_attempt_at).limit(BATCH))
            if tried:
                query = query.where(NotificationOutbox.id.not_in(tried))
            ids = list(db.session.scalars(query))
            db.session.rollback()
            if not ids:
                break
            for row_id in ids:
                if stopping is not None and stopping.is_set():
                    break
                tried.add(row_id)
                counts[_deliver_one(sender, row_id, policy)] += 1
    return counts


def _claim(row_id: str, claim_id: str, now: datetime, lease: timedelta) -> bool:
    """Conditional UPDATE: the row is ours only if it is still due; the lease and the attempt
    are recorded in the same statement (a sender killed mid-delivery still used an attempt)."""
    result = db.session.execute(
        update(NotificationOutbox)
        .where(NotificationOutbox.id == row_id, NotificationOutbox.delivered_at.is_(None),
               NotificationOutbox.next_attempt_at <= now)
        .values(claimed_by=claim_id, next_attempt_at=now + lease,
                attempts=NotificationOutbox.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def _deliver_one(sender: Notifier, row_id: str, policy: RetryPolicy) -> str:
    """Claim, send on the channels not done yet (no transaction open meanwhile), record."""
    claim_id = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not _claim(row_id, claim_id, sender.clock.now(), policy.lease):
        return "busy"  # another sender got it first, or it was delivered meanwhile
    try:
        row = db.session.get(NotificationOutbox, row_id, populate_existing=True)
        if row is None:
            db.session.rollback()
            return "lost"  # the tenant was deleted
        notice, done = to_notice(row), set(row.channels_done or ())
        db.session.rollback()
        results = sender.deliver(notice, [c for c in sender.channels_for(notice) if c not in done])
    except Exception as exc:  # a broken row or channel: it is retried like any failure
        log.exception("delivering notice %s crashed", row_id)
        db.session.rollback()
        results = {"sender": f"crashed:{type(exc).__name__}"}
    return _record(row_id, claim_id, results, policy, sender.clock.now())


def _record(row_id: str, claim_id: str, results: dict, policy: RetryPolicy, now: datetime) -> str:
    """Delivered, retried later with backoff, or given up: written only while the claim is ours."""
    row = db.session.scalar(db.select(NotificationOutbox).where(NotificationOutbox.id == row_id)
                            .with_for_update().execution_options(populate_existing=True))
    if row is None or row.claimed_by != claim_id:
        db.session.rollback()
        log.warning("notice %s was taken over while it was being delivered", row_id)
        return "lost"
    row.claimed_by = None
    row.channels_done = sorted(set(row.channels_done or ()) | {c for c, o in results.items()
                                                                if o == "delivered"})
    failed = {c: o for c, o in results.items() if o != "delivered"}
    if results:
        row.last_outcome = " ".join(f"{c}={o}" for c, o in results.items())[:200]
    details = {"notice": row.id, "event": row.event, "attempts": row.attempts, **results}
    if not failed:
        row.delivered_at, row.next_attempt_at, outcome = now, None, "delivered"
        if results:
            audit.record("meta.notify.delivery", actor="keepalive", tenant_id=row.tenant_id,
                         details=details)
    elif row.attempts >= policy.max_attempts:
        row.next_attempt_at, outcome = None, "gave_up"
        audit.record("meta.notify.gave_up", actor="keepalive", tenant_id=row.tenant_id,
                     outcome="failure", details=details)
        log.error("notice %s for tenant %s given up after %s attempts (%s)", row.id, row.tenant_id,
                  row.attempts, row.last_outcome)
    else:
        row.next_attempt_at, outcome = now + policy.delay(row.attempts), "retrying"
        log.warning("notice %s not delivered (%s); attempt %s of %s at %s", row.id, row.last_outcome,
                    row.attempts + 1, policy.max_attempts, iso(row.next_attempt_at))
    db.session.commit()
    return outcome


def prune(app, *, clock) -> int:
    """Delete notices delivered longer ago than NOTIFY_OUTBOX_KEEP_DAYS; given-up ones stay."""
    with app.app_context():
        keep = RetryPolicy.from_config(app.config).keep
        result = db.session.execute(
            delete(NotificationOutbox).where(NotificationOutbox.delivered_at.is_not(None),
                                             NotificationOutbox.delivered_at < clock.now() - keep)
            .execution_options(synchronize_session=False))
        db.session.commit()
        return result.rowcount


def dispatch(sender: Notifier, notices) -> int:
    """After the sweep's commit: wake the sender for the notices it put in the outbox (no waiting).

    Returns how many notices the wake-up is for; 0 when no channel is configured.
    """
    if not notices:
        return 0
    if not sender.enabled:
        return 0
    sender.wake()
    return len(notices)
