"""The keep-alive sweep, safe across processes: cluster lock, claims, fencing, bounded workers.

However many gunicorn workers or hosts run a scheduler, a connection is checked once per sweep:
1. a cluster-wide lock (a PostgreSQL session advisory lock; a process lock on SQLite, which
   serves one process) lets one scheduled sweep run at a time, so the concurrency bound holds
   for the whole cluster, not per process;
2. each connection is still claimed with a conditional UPDATE (claimed_by/claimed_until, one
   statement per small batch) and re-read by its worker before any work (fencing), because
   `flask meta refresh` and a sweep whose lock session dropped can overlap; a claim expires,
   so a killed process strands nothing;
3. the result is written only if the row is still ours and still holds the token we checked.
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

from sqlalchemy import and_, or_, text, update

from crm_meta import notify
from crm_meta.database import db
from crm_meta.meta import keepalive
from crm_meta.meta.keepalive import Outcome, Settings
from crm_meta.models import MetaConnection

log = logging.getLogger(__name__)
USAGE_SLOWDOWN = 80  # percent of Meta's app budget at which workers start pausing
USAGE_STOP = 100  # at which the sweep leaves the rest for the next tick
MAX_PAUSE = 2.0  # seconds a worker waits per call when Meta's budget is nearly spent


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
    return or_(MetaConnection.claimed_until.is_(None), MetaConnection.claimed_until <= now,
               MetaConnection.claimed_until > now + 2 * lease)


def _not_throttled(now: datetime):
    return or_(MetaConnection.throttled_until.is_(None), MetaConnection.throttled_until <= now)


def _is_due(now: datetime):
    return or_(MetaConnection.next_check_at.is_(None), MetaConnection.next_check_at <= now)


def due_ids(now: datetime, lease: timedelta) -> list[int]:
    """Connections due for a check, most overdue first."""
    query = (db.select(MetaConnection.id)
             .where(_is_due(now), _not_throttled(now), _claim_free(now, lease))
             .order_by(MetaConnection.next_check_at.asc().nulls_first(), MetaConnection.id))
    ids = list(db.session.scalars(query))
    db.session.rollback()
    return ids


def claim(row_ids: list[int], claim_id: str, now: datetime, lease: timedelta, *,
          due_only: bool) -> set[int]:
    """Conditional UPDATE: a row becomes ours only if nobody holds it (and, for sweeps, it is
    still due: a check finished elsewhere moved next_check_at on). Returns the ids won.

    One statement and one commit for a batch of rows; each row is re-read (fenced) by the
    worker that checks it before anything is done with it.
    """
    conditions = [MetaConnection.id.in_(row_ids), _claim_free(now, lease), _not_throttled(now)]
    if due_only:
        conditions.append(_is_due(now))
    result = db.session.execute(
        update(MetaConnection).where(and_(*conditions))
        .values(claimed_by=claim_id, claimed_until=now + lease)
        .execution_options(synchronize_session=False))
    won: set[int] = set()
    if result.rowcount:
        won = set(db.session.scalars(db.select(MetaConnection.id).where(
            MetaConnection.id.in_(row_ids), MetaConnection.claimed_by == claim_id)))
    db.session.commit()
    return won


def fence(row_id: int, claim_id: str, *, ciphertext: str | None = None) -> MetaConnection | None:
    """Re-read the row (locked for the write-back); None unless the claim is still ours and,
    when given, the token is still the one we checked (a reconnect replaces it)."""
    query = (db.select(MetaConnection).where(MetaConnection.id == row_id)
             .execution_options(populate_existing=True))
    if ciphertext is not None:
        query = query.with_for_update()
    row = db.session.scalar(query)
    if row is None or row.claimed_by != claim_id:
        return None
    if ciphertext is not None and row.token_ciphertext != ciphertext:
        return None
    return row


def release(row_id: int, claim_id: str) -> None:
    """Give a claim back without recording anything (used when a check crashed)."""
    db.session.execute(
        update(MetaConnection).where(MetaConnection.id == row_id, MetaConnection.claimed_by == claim_id)
        .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False))
    db.session.commit()


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
    runtime: object  # crm_meta.runtime.Runtime: clock, graph, store, notifier
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


def run_sweep(app, runtime, *, row_ids: Iterable[int] | None = None, forced: bool = False,
              dry_run: bool = False, cluster_lock: bool | None = None,
              stopping: threading.Event | None = None,
              on_done: Callable[[Outcome], None] | None = None) -> SweepReport:
    """Check due connections (or `row_ids`, due or not when `forced`) with bounded concurrency.

    Scheduled sweeps take the cluster lock; `flask meta refresh` relies on claims alone.
    `runtime` brings the clock, Graph client, token store and notifier.
    """
    settings = Settings.from_config(app.config)
    use_lock = (not forced) if cluster_lock is None else cluster_lock
    with app.app_context():
        lock = ClusterLock(db.engine) if use_lock else None
        if lock is not None and not lock.acquire():
            return SweepReport(skipped_reason="another process holds the keepalive lock")
        try:
            if row_ids is None:
                row_ids = due_ids(runtime.clock.now(), settings.lease)
            sweep = _Sweep(app, runtime, settings, owner_id(), forced, dry_run, stopping)
            return SweepReport(outcomes=_fan_out(sweep, row_ids, on_done))
        finally:
            if lock is not None:
                lock.release()


def _fan_out(sweep: _Sweep, row_ids: Iterable[int], on_done) -> list[Outcome]:
    """A thread pool with at most `concurrency` checks running and a short queue behind them."""
    outcomes: list[Outcome] = []

    def collect(done) -> None:
        for future in done:
            outcome = future.result()
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)

    size = sweep.settings.concurrency
    ids = list(row_ids)
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="keepalive") as pool:
        pending: set = set()
        for start in range(0, len(ids), size):
            batch = ids[start:start + size]
            if sweep.stopped:
                collect_now = [Outcome(row_id, kind="skipped", error="sweep stopped") for row_id in batch]
                _report(collect_now, outcomes, on_done)
                continue
            claim_id = new_claim_id(sweep.owner)
            now = sweep.runtime.clock.now()
            won = set(batch) if sweep.dry_run else claim(batch, claim_id, now, sweep.settings.lease,
                                                         due_only=not sweep.forced)
            lost = [_not_claimed(row_id, now, sweep.settings) for row_id in batch if row_id not in won]
            _report(lost, outcomes, on_done)
            for row_id in batch:
                if row_id in won:
                    pending.add(pool.submit(_check_one, sweep, row_id, claim_id))
            while len(pending) >= size:  # claim the next batch while this one is being checked
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        collect(wait(pending).done)
    return outcomes


def _report(items: list[Outcome], outcomes: list[Outcome], on_done) -> None:
    for outcome in items:
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)


def _check_one(sweep: _Sweep, row_id: int, claim_id: str) -> Outcome:
    """One claimed connection, in a worker thread with its own app context and session."""
    with sweep.app.app_context():
        if sweep.stopped:
            if not sweep.dry_run:
                release(row_id, claim_id)
            return Outcome(row_id, kind="skipped", error="sweep stopped")
        try:
            return _check_claimed(sweep, row_id, claim_id)
        except Exception as exc:  # one tenant's failure never stops the sweep
            log.exception("keepalive check of connection %s crashed", row_id)
            db.session.rollback()
            if not sweep.dry_run:
                try:
                    release(row_id, claim_id)
                except Exception:
                    log.warning("could not release claim on connection %s", row_id, exc_info=True)
            return Outcome(row_id, kind="crashed", error=type(exc).__name__)


def _check_claimed(sweep: _Sweep, row_id: int, claim_id: str) -> Outcome:
    rt = sweep.runtime
    store = rt.store
    now = rt.clock.now()
    if sweep.dry_run:
        row = db.session.get(MetaConnection, row_id)
        if row is not None and row.throttled_until and row.throttled_until > now:
            return _not_claimed(row_id, now, sweep.settings)
    else:
        row = fence(row_id, claim_id)  # fencing re-read: is the claim really (still) ours?
    if row is None:
        return Outcome(row_id, kind="lost")
    token, ciphertext, attempted = store.read(row), row.token_ciphertext, row.extension_attempted_at
    db.session.rollback()  # no transaction stays open while Meta answers
    _pace(rt.graph)
    result = keepalive.probe(rt.graph, token, now=now, extension_attempted_at=attempted,
                             allow_extend=not sweep.dry_run)
    if result.kind == "app_misconfigured":
        return _app_misconfigured(sweep, rt, row_id, claim_id, result, now)
    if not sweep.app_ok_reported and not sweep.dry_run and result.kind in {"valid", "invalid"}:
        sweep.app_ok_reported = True
        keepalive.app_health.report_healthy(now=now, credential=rt.graph.credential,
                                            app_id=rt.graph.app_id)
    if _app_wide(result, rt.graph):
        sweep.stop.set()  # Meta throttles the whole app: leave the rest for a later tick
    if result.kind == "app_throttled":  # nothing learnt about this connection: it stays due
        if not sweep.dry_run:
            release(row_id, claim_id)
        return Outcome(row_id, kind="deferred", error=str(result.error)[:200])
    if sweep.dry_run:
        row = db.session.get(MetaConnection, row_id)
    else:
        row = fence(row_id, claim_id, ciphertext=ciphertext)
    if row is None:  # claim taken over, or the tenant reconnected meanwhile: our answer is stale
        db.session.rollback()
        if not sweep.dry_run:
            release(row_id, claim_id)  # only if it is still ours
        return Outcome(row_id, kind="lost")
    outcome = keepalive.apply(row, result, now, sweep.settings, store=store, dry_run=sweep.dry_run)
    if result.error is not None:
        outcome.error = str(result.error)[:200]
    if sweep.dry_run:
        db.session.rollback()
        return outcome
    row.claimed_by = row.claimed_until = None
    db.session.commit()
    notify.dispatch(rt.notifier, outcome.notices)
    return outcome


def _app_misconfigured(sweep: _Sweep, rt, row_id: int, claim_id: str, result, now) -> Outcome:
    """Meta refuses the app itself: stop the sweep, strike nobody, tell operators once."""
    sweep.stop.set()
    if sweep.dry_run:
        return Outcome(row_id, kind="app_misconfigured", error=str(result.error)[:200])
    release(row_id, claim_id)  # nothing learnt about this connection: it stays due
    notices = keepalive.app_health.report_misconfigured(
        result.error, now=now, credential=rt.graph.credential, app_id=rt.graph.app_id,
        outbox=sweep.settings.outbox)
    notify.dispatch(rt.notifier, notices)
    return Outcome(row_id, kind="app_misconfigured", notices=notices, error=str(result.error)[:200])


def _not_claimed(row_id: int, now: datetime, settings: Settings) -> Outcome:
    """Why a row could not be claimed: gone, throttled, held by someone, or no longer due."""
    row = db.session.get(MetaConnection, row_id)
    db.session.rollback()
    if row is None:
        return Outcome(row_id, kind="lost")
    if row.throttled_until and row.throttled_until > now:
        kind = "throttled"
    elif row.claimed_until and now < row.claimed_until <= now + 2 * settings.lease:
        kind = "busy"
    else:
        kind = "skipped"  # checked by another process moments ago
    return Outcome(row_id, row.tenant_id, kind=kind)


def _pace(graph) -> None:
    """Slow down before Meta's budget runs out, not only after an error."""
    usage = getattr(graph, "last_app_usage", 0) or 0
    if usage >= USAGE_SLOWDOWN:
        graph.sleep(MAX_PAUSE * min(1.0, (usage - USAGE_SLOWDOWN) / (USAGE_STOP - USAGE_SLOWDOWN)))


def _app_wide(result: keepalive.Probe, graph) -> bool:
    """Meta throttles the app as a whole (code 4), or its usage header says the budget is spent."""
    errors = [result.error, result.extension.error if result.extension else None]
    if any(getattr(e, "code", None) == keepalive.APP_THROTTLE_CODE for e in errors):
        return True
    return result.kind == "throttled_now" and (getattr(graph, "last_app_usage", 0) or 0) >= USAGE_STOP
