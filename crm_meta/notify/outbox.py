"""The durable outbox: notices queued with the check that decided them, claimed, delivered,
retried with backoff, given up, pruned. A sender is a crm_meta.notify.channels.Notifier."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update

from crm_meta.infra.clock import Clock
from crm_meta.infra.database import db
from crm_meta.infra.ids import new_claim_id
from crm_meta.infra.timestamps import iso
from crm_meta.infra.upsert import insert_ignore
from crm_meta.models import NotificationOutbox, audit
from crm_meta.notify.notices import Notice

log = logging.getLogger(__name__)
BATCH = 50  # due rows looked up per query; each is still claimed on its own


@dataclass(frozen=True)
class RetryPolicy:
    """How often and for how long the outbox tries a notice (config.py holds the defaults)."""

    max_attempts: int
    base: timedelta
    cap: timedelta
    lease: timedelta
    keep: timedelta
    give_up_after: timedelta | None = None  # a row older than this is given up at its next failure
    audit: bool = True  # audit each delivery and give-up (notices); events only count metrics

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryPolicy:
        """The notices' policy; a missing key is an error (no second default here)."""
        return cls(
            max_attempts=max(1, int(config["NOTIFY_MAX_ATTEMPTS"])),
            base=timedelta(seconds=float(config["NOTIFY_RETRY_BASE_SECONDS"])),
            cap=timedelta(seconds=float(config["NOTIFY_RETRY_MAX_SECONDS"])),
            lease=timedelta(seconds=float(config["NOTIFY_CLAIM_SECONDS"])),
            keep=timedelta(days=float(config["NOTIFY_OUTBOX_KEEP_DAYS"])),
        )

    def delay(self, attempts: int) -> timedelta:
        """The wait after the n-th failed attempt: base, 2 x base, 4 x base ... at most cap."""
        return min(self.cap, self.base * 2 ** min(max(attempts - 1, 0), 30))


EVENT_PREFIX = "meta."  # rows of Meta's events forwarded to the CRM (crm_meta.meta.webhooks)
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


def deliver_due(app, *, sender, stopping: threading.Event | None = None) -> Counter:
    """Deliver every notice due now, whoever queued it; counts by result. Each row is tried
    at most once per call, so a call always ends."""
    counts: Counter = Counter()
    events = getattr(sender, "events", False)  # a sender of Meta's events, or of notices
    mine = (NotificationOutbox.event.startswith(EVENT_PREFIX) if events
            else ~NotificationOutbox.event.startswith(EVENT_PREFIX))
    with app.app_context():
        policy = sender.policy
        tried: set[str] = set()
        while not (stopping is not None and stopping.is_set()):
            query = (db.select(NotificationOutbox.id)
                     .where(NotificationOutbox.next_attempt_at <= sender.clock.now(), mine)
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


def _deliver_one(sender, row_id: str, policy: RetryPolicy) -> str:
    """Claim, send on the channels not done yet (no transaction open meanwhile), record."""
    claim_id = new_claim_id()
    if not _claim(row_id, claim_id, sender.clock.now(), policy.lease):
        return "busy"  # another sender got it first, or it was delivered meanwhile
    try:
        row = db.session.get(NotificationOutbox, row_id, populate_existing=True)
        if row is None:
            db.session.rollback()
            return "lost"  # the tenant was deleted
        load = getattr(sender, "load", to_notice)
        notice, done = load(row), set(row.channels_done or ())
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
    outcome = apply_result(row, results, policy, now)
    db.session.commit()
    return outcome


def apply_result(row: NotificationOutbox, results: dict, policy: RetryPolicy, now: datetime) -> str:
    """Record one attempt on a claimed row (the caller commits): delivered, retried later with
    backoff, or given up."""
    row.claimed_by = None
    row.channels_done = sorted(set(row.channels_done or ()) | {c for c, o in results.items()
                                                                if o == "delivered"})
    failed = {c: o for c, o in results.items() if o != "delivered"}
    if results:
        row.last_outcome = " ".join(f"{c}={o}" for c, o in results.items())[:200]
    details = {"notice": row.id, "event": row.event, "attempts": row.attempts, **results}
    if not failed:
        row.delivered_at, row.next_attempt_at, outcome = now, None, "delivered"
        if results and policy.audit:
            audit.record("meta.notify.delivery", actor="keepalive", tenant_id=row.tenant_id,
                         details=details)
    elif row.attempts >= policy.max_attempts or (
            policy.give_up_after is not None and now - row.created_at >= policy.give_up_after):
        row.next_attempt_at, outcome = None, "gave_up"
        if policy.audit:
            audit.record("meta.notify.gave_up", actor="keepalive", tenant_id=row.tenant_id,
                         outcome="failure", details=details)
        log.error("notice %s for tenant %s given up after %s attempts (%s)", row.id, row.tenant_id,
                  row.attempts, row.last_outcome)
    else:
        row.next_attempt_at, outcome = now + policy.delay(row.attempts), "retrying"
        log.warning("notice %s not delivered (%s); attempt %s at %s", row.id, row.last_outcome,
                    row.attempts + 1, iso(row.next_attempt_at))
    return outcome


def prune(app, *, clock: Clock, keep: timedelta) -> int:
    """Delete notices delivered longer ago than `keep` (NOTIFY_OUTBOX_KEEP_DAYS); given-up ones stay."""
    with app.app_context():
        result = db.session.execute(
            delete(NotificationOutbox).where(NotificationOutbox.delivered_at.is_not(None),
                                             NotificationOutbox.delivered_at < clock.now() - keep)
            .execution_options(synchronize_session=False))
        db.session.commit()
        return result.rowcount


def dispatch(sender, notices) -> int:
    """After the sweep's commit: wake the sender for the notices it put in the outbox (no waiting).

    Returns how many notices the wake-up is for; 0 when no channel is configured.
    """
    if not notices:
        return 0
    if not sender.enabled:
        return 0
    sender.wake()
    return len(notices)
