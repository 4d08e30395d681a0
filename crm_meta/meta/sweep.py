"""The keep-alive sweep, safe across processes: cluster lock, claims, fencing, bounded workers.

However many gunicorn workers or hosts run a scheduler, a connection is checked once per sweep:
1. a cluster-wide lock (a PostgreSQL session advisory lock; a process lock on SQLite, which
   serves one process) lets one scheduled sweep run at a time, so the concurrency bound holds
   for the whole cluster, not per process;
2. each connection is still claimed with a conditional UPDATE (claimed_by/claimed_until, one
   statement per small batch, which also returns what the checks need), because
   `flask meta refresh` and a sweep whose lock session dropped can overlap; a claim expires,
   so a killed process strands nothing, and a check whose claim lapsed before it began is
   not made;
3. the results are written back in batches (crm_meta.meta.checks), each row only if it is
   still ours and still holds the token we checked (fencing).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from crm_meta import dbreads
from crm_meta.extensions import db
from crm_meta.meta.checks import (
    TICKET_COLUMNS,
    TOKENS,
    Checked,
    Ticket,
    dry_run_tickets,
    not_claimed,
    probe_one,
    still_ours,
    ticket,
    write_back,
)
from crm_meta.meta.keepalive import Outcome, Settings
from crm_meta.models import MetaToken

log = logging.getLogger(__name__)


# -- the cluster-wide lock -------------------------------------------------------------------
_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"crm_meta:{name}".encode()).digest()[:8], "big", signed=True)


class ClusterLock:
    """pg_try_advisory_lock on a dedicated connection (dies with the session); a process lock
    on other databases."""

    def __init__(self, engine, name: str = "keepalive"):
        self.engine = engine
        self.name = name
        self.key = _lock_key(name)
        self._conn = None
        self._local: threading.Lock | None = None

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            try:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
                conn.commit()  # session-level lock: no transaction stays open
            except Exception:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conn = conn
            return True
        with _local_locks_guard:
            lock = _local_locks.setdefault(self.name, threading.Lock())
        if lock.acquire(blocking=False):
            self._local = lock
            return True
        return False

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                conn.commit()
                conn.close()
            except Exception:
                # Never hand a connection that may still hold the lock back to the pool.
                log.warning("advisory unlock failed; discarding the connection", exc_info=True)
                conn.invalidate()
                conn.close()
        if self._local is not None:
            self._local, local = None, self._local
            local.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- claims ----------------------------------------------------------------------------------
def new_claim_id(owner: str) -> str:
    """A fencing token: who claims, plus a nonce so a later claim by the same process differs."""
    return f"{owner}:{uuid.uuid4().hex[:8]}"[:100]


def owner_id() -> str:
    """Who claims: host and pid (a per-claim nonce is added by new_claim_id)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def _claim_free(now: datetime, lease: timedelta):
    # A claim further ahead than two leases was made under a clock that has since gone back
    # (the sandbox's reset): treat it as stale rather than locked for weeks.
    return or_(TOKENS.c.claimed_until.is_(None), TOKENS.c.claimed_until <= now,
               TOKENS.c.claimed_until > now + 2 * lease)


def _not_throttled(now: datetime):
    return or_(TOKENS.c.throttled_until.is_(None), TOKENS.c.throttled_until <= now)


def _is_due(now: datetime):
    return or_(TOKENS.c.next_check_at.is_(None), TOKENS.c.next_check_at <= now)


def due_ids(now: datetime, lease: timedelta) -> list[int]:
    """Connections due for a check, most overdue first."""
    query = (select(TOKENS.c.id)
             .where(_is_due(now), _not_throttled(now), _claim_free(now, lease))
             .order_by(TOKENS.c.next_check_at.asc().nulls_first(), TOKENS.c.id))
    ids = list(db.session.scalars(query))
    db.session.rollback()
    return ids


def claim_tickets(row_ids: list[int], claim_id: str, now: datetime, lease: timedelta, *,
                  due_only: bool) -> list[Ticket]:
    """Conditional UPDATE ... RETURNING: a row becomes ours only if nobody holds it (and, for
    sweeps, it is still due: a check finished elsewhere moved next_check_at on). Returns the
    rows won with what their checks need: one statement, its own transaction, for a batch."""
    conditions = [TOKENS.c.id.in_(row_ids), _claim_free(now, lease), _not_throttled(now)]
    if due_only:
        conditions.append(_is_due(now))
    statement = (update(TOKENS).where(and_(*conditions))
                 .values(claimed_by=claim_id, claimed_until=now + lease).returning(*TICKET_COLUMNS))
    with db.engine.connect() as conn:
        dbreads.autocommit(conn)  # PostgreSQL: no BEGIN/COMMIT round trips around it
        won = conn.execute(statement).all()
        conn.commit()
    return [ticket(values, claim_id) for values in won]


def claim(row_ids: list[int], claim_id: str, now: datetime, lease: timedelta, *,
          due_only: bool) -> set[int]:
    """The ids claim_tickets won."""
    return {t.row_id for t in claim_tickets(row_ids, claim_id, now, lease, due_only=due_only)}


def fence(row_id: int, claim_id: str, *, ciphertext: str | None = None) -> MetaToken | None:
    """Re-read the row (locked when checking the token); None unless the claim is still ours
    and, when given, the token is still the one we checked (a reconnect replaces it)."""
    query = db.select(MetaToken).where(MetaToken.id == row_id).execution_options(populate_existing=True)
    if ciphertext is not None:
        query = query.with_for_update()
    row = db.session.scalar(query)
    return row if still_ours(row, claim_id, ciphertext) else None


# -- the sweep -------------------------------------------------------------------------------
@dataclass
class SweepReport:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped_reason: str | None = None

    def counts(self) -> dict:
        """checked, extended, warned, failed, skipped - the CLI's summary columns."""
        return {
            "checked": sum(o.checked for o in self.outcomes),
            "extended": sum(o.extended for o in self.outcomes),
            "warned": sum(len(o.notices) for o in self.outcomes),
            "failed": sum(o.failed for o in self.outcomes),
            "skipped": sum(not o.checked and not o.failed for o in self.outcomes),
        }


@dataclass
class _Sweep:
    app: object
    settings: Settings
    owner: str
    forced: bool
    dry_run: bool
    stopping: threading.Event | None  # a scheduler's sweep also stops when it shuts down
    stop: threading.Event = field(default_factory=threading.Event)
    app_ok_reported: bool = False  # Meta accepted the app's credential once in this sweep

    @property
    def stopped(self) -> bool:
        return self.stop.is_set() or (self.stopping is not None and self.stopping.is_set())


def run_sweep(app, *, row_ids: Iterable[int] | None = None, forced: bool = False,
              dry_run: bool = False, cluster_lock: bool | None = None,
              stopping: threading.Event | None = None,
              on_done: Callable[[Outcome], None] | None = None) -> SweepReport:
    """Check due connections (or `row_ids`, due or not when `forced`) with bounded concurrency.

    Scheduled sweeps take the cluster lock; `flask meta refresh` relies on claims alone.
    """
    settings = Settings.from_config(app.config)
    use_lock = (not forced) if cluster_lock is None else cluster_lock
    with app.app_context():
        lock = ClusterLock(db.engine) if use_lock else None
        if lock is not None and not lock.acquire():
            return SweepReport(skipped_reason="another process holds the keepalive lock")
        try:
            if row_ids is None:
                from crm_meta.runtime import runtime

                row_ids = due_ids(runtime().clock.now(), settings.lease)
            sweep = _Sweep(app, settings, owner_id(), forced, dry_run, stopping)
            return SweepReport(outcomes=_Dispatcher(sweep, list(row_ids), on_done).run())
        finally:
            if lock is not None:
                lock.release()


class _Dispatcher:
    """One thread claims batches, keeps `concurrency` workers probing Meta with a queue behind
    them, and writes finished probes back in batches (workers never touch the database on the
    common path, and no transaction waits on Meta)."""

    def __init__(self, sweep: _Sweep, row_ids: list[int], on_done):
        from crm_meta.runtime import runtime, token_store

        self.sweep, self.ids, self.on_done = sweep, row_ids, on_done
        self.size = sweep.settings.concurrency
        self.next = 0  # index of the first id not claimed yet
        self.clock, self.store = runtime().clock, token_store()
        self.outcomes: list[Outcome] = []
        self.pending: set = set()
        self.finished: list[Checked] = []  # probed, waiting for the write-back

    def run(self) -> list[Outcome]:
        with ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="keepalive") as pool:
            self._top_up(pool)
            while self.pending:
                done, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    if isinstance(result, Checked):
                        self.finished.append(result)
                    else:
                        self._report([result])
                self._top_up(pool)  # the workers' queue first, then the database
                if len(self.finished) >= self.size or not self.pending:
                    self._write_back()
        return self.outcomes

    def _top_up(self, pool) -> None:
        """Claim batches until two batches wait behind the workers."""
        while self.next < len(self.ids) and len(self.pending) < 2 * self.size:
            batch = self.ids[self.next:self.next + self.size]
            self.next += self.size
            if self.sweep.stopped:
                self._report([Outcome(row_id, kind="skipped", error="sweep stopped") for row_id in batch])
                continue
            try:
                tickets, skipped = self._claim(batch)
            except SQLAlchemyError:
                # The database went away: claim nothing more, but finish and record what runs.
                log.warning("keepalive claim failed; the rest waits for a later tick", exc_info=True)
                db.session.rollback()
                self.sweep.stop.set()
                tickets, skipped = [], [Outcome(i, kind="skipped", error="claim failed") for i in batch]
            self._report(skipped)
            self.pending |= {pool.submit(probe_one, self.sweep, t) for t in tickets}

    def _claim(self, batch: list[int]) -> tuple[list[Ticket], list[Outcome]]:
        now = self.clock.now()
        if self.sweep.dry_run:
            return dry_run_tickets(batch, now)
        tickets = claim_tickets(batch, new_claim_id(self.sweep.owner), now,
                                self.sweep.settings.lease, due_only=not self.sweep.forced)
        won = {t.row_id for t in tickets}
        return tickets, not_claimed([i for i in batch if i not in won], now, self.sweep.settings.lease)

    def _write_back(self) -> None:
        if not self.finished:
            return
        batch, self.finished = self.finished, []
        outcomes, notices = write_back(batch, self.sweep.settings, self.store,
                                       dry_run=self.sweep.dry_run)
        if notices:
            from crm_meta import notify

            notify.dispatch(self.sweep.app, notices)
        self._report(outcomes)

    def _report(self, items: list[Outcome]) -> None:
        for outcome in items:
            self.outcomes.append(outcome)
            if self.on_done is not None:
                self.on_done(outcome)
