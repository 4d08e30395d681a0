"""The keep-alive sweep, safe across processes (crm_meta.meta.claims: lock, claims, fencing).

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

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from crm_meta import notify
from crm_meta.database import db
from crm_meta.meta import keepalive
from crm_meta.meta.claims import ClusterLock, claim, due_ids, fence, new_claim_id, owner_id, release
from crm_meta.meta.keepalive import Outcome, Settings
from crm_meta.models import MetaConnection

log = logging.getLogger(__name__)
USAGE_SLOWDOWN = 80  # percent of Meta's app budget at which workers start pausing
USAGE_STOP = 100  # at which the sweep leaves the rest for the next tick
MAX_PAUSE = 2.0  # seconds a worker waits per call when Meta's budget is nearly spent


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
