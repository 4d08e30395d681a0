"""Forwarding Meta's events in batches: the due `meta.*` rows of the outbox are claimed by one
UPDATE (skipping rows another process holds), sent to the CRM concurrently, and their results
recorded in one transaction, with the outbox's own rules (lease, backoff, dead letter). Per
event that is a share of two commits and one POST, not three commits and a POST."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from crm_meta.infra.database import db
from crm_meta.meta.types import HasAppContext
from crm_meta.meta.webhooks.forward import EventSender, Outgoing
from crm_meta.models import NotificationOutbox
from crm_meta.notify.outbox import EVENT_PREFIX, RetryPolicy, apply_result

log = logging.getLogger(__name__)
BATCH = 200  # events claimed at once
SENDERS = 8  # POSTs to the CRM in flight at once


class Relay:
    """This process's forwarding of due events; `run` ends when none is due."""

    def __init__(self, app: HasAppContext, sender: EventSender) -> None:
        self.app, self.sender = app, sender
        self.pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="crm-meta-forward")

    def run(self, stopping: threading.Event | None = None) -> Counter[str]:
        counts: Counter[str] = Counter()
        policy = self.sender.policy
        with self.app.app_context():
            while not (stopping is not None and stopping.is_set()):
                done = self._batch(policy, counts)
                if done < BATCH:
                    break
        return counts

    def _batch(self, policy: RetryPolicy, counts: Counter[str]) -> int:
        now = self.sender.clock.now()
        query = (db.select(NotificationOutbox)
                 .where(NotificationOutbox.event.startswith(EVENT_PREFIX),
                        NotificationOutbox.next_attempt_at <= now)
                 .order_by(NotificationOutbox.next_attempt_at).limit(BATCH))
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = db.session.scalars(query).all()
        if not rows:
            db.session.rollback()
            return 0
        claim = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        items = []
        for row in rows:  # claimed: a killed process's rows come back after the lease
            row.claimed_by, row.next_attempt_at = claim, now + policy.lease
            row.attempts = (row.attempts or 0) + 1
            items.append(self.sender.load(row))
        ids = [row.id for row in rows]
        db.session.commit()
        results = list(self.pool.map(self._send, items))
        stored = {row.id: row for row in db.session.scalars(
            db.select(NotificationOutbox).where(NotificationOutbox.id.in_(ids)).with_for_update()
            .execution_options(populate_existing=True))}
        finished = self.sender.clock.now()
        for row_id, result in zip(ids, results, strict=True):
            row = stored.get(row_id)
            if row is None or row.claimed_by != claim:
                counts["lost"] += 1
                continue
            counts[apply_result(row, result, policy, finished)] += 1
        db.session.commit()
        return len(ids)

    def _send(self, item: Outgoing) -> dict[str, str]:
        try:
            with self.app.app_context():  # a lead's access verdict is written from here
                return self.sender.deliver(item, self.sender.channels_for(item))
        except Exception as exc:  # a broken row: retried like any failure
            log.exception("forwarding event %s crashed", item.id)
            return {"crm": f"crashed:{type(exc).__name__}"}
