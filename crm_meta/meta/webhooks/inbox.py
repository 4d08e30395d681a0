"""The inbox: every signed delivery stored as received (one INSERT, committed) before Meta gets
its 200; routed later, in batches, by whichever process gets there first.

Deliveries arriving together share one INSERT, its own transaction (group commit, `Writer`); a
request is answered only after its row is committed.

Routing a stored delivery is one transaction: its events are queued in the outbox (the event's
key is the row id, so Meta's retries and duplicates are queued once), entries no tenant owns are
parked, and the delivery is marked processed. A process killed midway leaves the delivery
unprocessed, and the next pass (any process) routes it again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, insert, update

from crm_meta.infra import metrics
from crm_meta.infra.database import db, pooled_autocommit
from crm_meta.infra.timestamps import iso
from crm_meta.infra.upsert import insert_ignore
from crm_meta.meta.types import JsonObject
from crm_meta.meta.webhooks import events as found
from crm_meta.meta.webhooks.routing import Router
from crm_meta.models import NotificationOutbox, WebhookInbox, WebhookParked

log = logging.getLogger(__name__)
BATCH = 200  # deliveries routed per transaction
MAX_BATCH_BYTES = 32 * 1024 * 1024  # bodies written by one INSERT, at most (Meta's are up to 3 MB)
Outcome = tuple[bool, int, str]  # a routed delivery's (malformed, entries, outcome)


@dataclass
class _Pending:
    """A delivery waiting for its group commit, and how its request learns that it is done."""

    received_at: datetime
    route: str
    body: bytes
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None

    def values(self) -> dict[str, object]:
        """Its inbox row."""
        return {"received_at": self.received_at, "route": self.route, "body": self.body,
                "malformed": False, "entries": 0}


# The group commit's INSERT as psycopg2 takes it (a VALUES row per delivery; `malformed` and
# `entries` as the model defaults them): SQLAlchemy's INSERT costs 2.5 times the CPU for a
# few rows (bench/README.md), and this runs for every delivery.
INSERT = "INSERT INTO webhook_inbox (received_at, route, body, malformed, entries) VALUES "
ROW = "(%s, %s, %s, false, 0)"


class Writer:
    """Group commit: deliveries that arrive together are written by one INSERT (one thread per
    process), and each request returns only once its own row is committed. The INSERT is its own
    transaction (autocommit: no BEGIN and COMMIT round trips); one statement, so all or none."""

    def __init__(self, engine: Engine, *, max_batch: int = 500, timeout: float = 10.0) -> None:
        self.engine, self.max_batch, self.timeout = engine, max_batch, timeout
        self._queue: list[_Pending] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def store(self, body: bytes, route: str, now: datetime) -> None:
        """Write one delivery, exactly its bytes; returns once committed (nothing loses it after)."""
        if now.tzinfo is None:  # what the model's UTCDateTime refuses; psycopg2 would take it as local
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        item = _Pending(received_at=now, route=route[:64], body=body)
        with self._ready:
            self._queue.append(item)
            self._ready.notify()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crm-meta-inbox", daemon=True)
                self._thread.start()
        if not item.done.wait(self.timeout):
            raise TimeoutError("the inbox write did not finish in time")
        if item.error is not None:
            raise item.error

    def _take(self) -> tuple[list[_Pending], list[_Pending]]:
        """The next batch: at most max_batch deliveries and MAX_BATCH_BYTES of bodies (one or more)."""
        size = count = 0
        for item in self._queue[:self.max_batch]:
            size += len(item.body)
            if count and size > MAX_BATCH_BYTES:
                break
            count += 1
        return self._queue[:count], self._queue[count:]

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._queue)
                batch, self._queue = self._take()
            try:
                self._write(batch)
            except Exception as exc:  # each waiting request answers 503; Meta retries
                for item in batch:
                    item.error = exc
            for item in batch:
                item.done.set()

    def _write(self, batch: list[_Pending]) -> None:
        """One INSERT in autocommit: on PostgreSQL straight through psycopg2, elsewhere (SQLite:
        tests, development) through SQLAlchemy."""
        if self.engine.dialect.driver != "psycopg2":
            with self.engine.connect() as conn:
                conn.execute(insert(WebhookInbox), [item.values() for item in batch])
                conn.commit()
            return
        pooled = self.engine.raw_connection()
        try:
            pooled_autocommit(pooled)  # the pool's checkin switches it back
            values = [value for item in batch for value in (item.received_at, item.route, item.body)]
            with closing(pooled.cursor()) as cursor:
                cursor.execute(INSERT + ", ".join([ROW] * len(batch)), values)
        except Exception:
            pooled.invalidate()  # a broken connection is not handed to the next request
            raise
        finally:
            pooled.close()


def process_pending(*, router: Router, now: Callable[[], datetime], batch: int = BATCH) -> Counter[str]:
    """Route every stored delivery not routed yet, `batch` per transaction; counts by result.
    Each batch is one SELECT, one INSERT per table and one UPDATE per distinct outcome."""
    counts: Counter[str] = Counter()
    table = WebhookInbox.__table__
    while True:
        query = (db.select(table.c.id, table.c.body, table.c.received_at)
                 .where(table.c.processed_at.is_(None)).order_by(table.c.id).limit(batch))
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # two processes never take the same
        rows = db.session.execute(query).all()
        if not rows:
            db.session.rollback()
            return counts
        at, found_now = now(), _Routed(counts)
        outbox, parked = found_now.outbox, found_now.parked
        outcomes: dict[Outcome, list[int]] = {}
        for row in rows:
            outcome = _route_one(row, router, at, found_now)
            outcomes.setdefault(outcome, []).append(row.id)
        # Meta's retries in one batch: one row per event
        insert_ignore(NotificationOutbox, list({row["id"]: row for row in outbox}.values()))
        insert_ignore(WebhookParked, list({row["id"]: row for row in parked}.values()))
        for (malformed, entries, text), ids in outcomes.items():
            db.session.execute(update(table).where(table.c.id.in_(ids)).values(
                processed_at=at, malformed=malformed, entries=entries, outcome=text))
        db.session.commit()
        if len(rows) < batch:
            return counts


class _Stored(Protocol):
    """A stored delivery as routing reads it (a row of process_pending's SELECT)."""

    @property
    def id(self) -> int: ...

    @property
    def body(self) -> bytes: ...

    @property
    def received_at(self) -> datetime: ...


@dataclass
class _Routed:
    """What a batch's routing found: outbox rows, parked entries, counts by result."""

    counts: Counter[str]
    outbox: list[JsonObject] = field(default_factory=list)
    parked: list[JsonObject] = field(default_factory=list)


def _route_one(row: _Stored, router: Router, at: datetime, routed: _Routed) -> Outcome:
    """Queue or park the events of one stored delivery; its (malformed, entries, outcome)."""
    outbox, parked, counts = routed.outbox, routed.parked, routed.counts
    try:
        events = found.parse(row.body)
    except found.Malformed as exc:
        metrics.WEBHOOK_MALFORMED.inc()
        counts["malformed"] += 1
        return True, 0, f"malformed: {exc}"
    queued = held = 0
    for event in events:
        tenant, (kind, asset_id) = router.route(event.assets)
        if tenant is None:
            held += 1
            parked.append({"id": found.event_id(None, event.key), "object": event.object[:40],
                           "asset_kind": kind, "asset_id": asset_id[:64], "field": event.field[:64],
                           "event": {"kind": event.kind, "key": event.key, "data": event.data,
                                     "assets": [list(a) for a in event.assets]},
                           "inbox_id": row.id, "parked_at": at, "rerouted_at": None})
            continue
        queued += 1
        outbox.append(outbox_row(tenant, event, at, received_at=row.received_at))
    counts["queued"] += queued
    counts["parked"] += held
    if held:
        metrics.WEBHOOK_PARKED.inc(held)
    return False, len(events), f"{queued} queued, {held} parked"


def outbox_row(tenant_id: int, event: found.Event, at: datetime, *,
               received_at: datetime | None = None) -> JsonObject:
    """An outbox row (a dict for insert_ignore) forwarding one event to the tenant's endpoint."""
    key = event.key
    return {"id": found.event_id(tenant_id, key), "tenant_id": tenant_id, "event": f"meta.{event.kind}",
            "payload": {"type": event.type, "key": key, "data": event.data,
                        "received_at": iso(received_at or at)},
            "created_at": at, "attempts": 0, "next_attempt_at": at, "claimed_by": None,
            "channels_done": [], "delivered_at": None, "last_outcome": None}


def reroute_parked(*, router: Router, now: datetime) -> Counter[str]:
    """Route parked entries again (a tenant connected the asset since): queued ones leave the park."""
    counts: Counter[str] = Counter()
    router.invalidate()  # read who owns what now
    rows = db.session.scalars(db.select(WebhookParked).where(WebhookParked.rerouted_at.is_(None))
                              .with_for_update()).all()
    outbox: list[JsonObject] = []
    for row in rows:
        event = row.event or {}
        tenant, _ = router.route([tuple(a) for a in event.get("assets") or [[row.asset_kind, row.asset_id]]])
        if tenant is None:
            counts["still_parked"] += 1
            continue
        again = found.Event(event.get("kind", "change"), event.get("key", row.id), "", "", (),
                            event.get("data") or {})
        outbox.append(outbox_row(tenant, again, now, received_at=row.parked_at))
        row.rerouted_at = now
        counts["rerouted"] += 1
    insert_ignore(NotificationOutbox, outbox)
    db.session.commit()
    return counts

