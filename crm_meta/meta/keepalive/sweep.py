"""The keep-alive sweep, safe across processes (crm_meta.meta.keepalive.leases: lock, claims, fencing;
crm_meta.meta.keepalive.writeback: the probe and the batched write-back).

However many gunicorn workers or hosts run a scheduler, a connection is checked once per sweep:
1. a cluster-wide lock (a PostgreSQL session advisory lock; a process lock on SQLite, which
   serves one process) lets one scheduled sweep run at a time, so the concurrency bound holds
   for the whole cluster, not per process;
2. each connection is still claimed with a conditional UPDATE (claimed_by/claimed_until, one
   statement per small batch, which also returns what the checks need), because
   `flask meta refresh` and a sweep whose lock session dropped can overlap; a claim expires,
   so a killed process strands nothing, and a check whose claim lapsed before it began is
   not made;
3. the results are written back in batches (crm_meta.meta.keepalive.writeback), each row only if it is
   still ours and still holds the token we checked (fencing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from crm_meta import notify
from crm_meta.infra.database import db, once_more_if_disconnected
from crm_meta.infra.ids import new_claim_id, owner_id
from crm_meta.meta import channels
from crm_meta.meta.keepalive import channel_checks
from crm_meta.meta.keepalive.leases import ClusterLock, Ticket, claim_tickets, due_ids
from crm_meta.meta.keepalive.verdicts import Outcome, OutcomeKind, Settings
from crm_meta.meta.keepalive.writeback import (
    Checked,
    SweepRuntime,
    dry_run_tickets,
    not_claimed,
    probe_one,
    write_back,
)
from crm_meta.meta.types import HasAppContext

log = logging.getLogger(__name__)


# -- the sweep -------------------------------------------------------------------------------
@dataclass
class SweepReport:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped_reason: str | None = None
    channel_notices: list[notify.Notice] = field(default_factory=list)  # channels found broken (warned once)

    def counts(self) -> dict[str, int]:
        """checked, extended, warned, failed, skipped - the CLI's summary columns."""
        return {
            "checked": sum(o.checked for o in self.outcomes),
            "extended": sum(o.extended for o in self.outcomes),
            "warned": sum(len(o.notices) for o in self.outcomes),
            "failed": sum(o.failed for o in self.outcomes),
            "skipped": sum(not o.checked and not o.failed for o in self.outcomes),
        }


@dataclass(frozen=True)
class Scope:
    """Which connections a sweep checks, and how: the due ones, or `row_ids` (due or not when
    `forced`); `dry_run` changes nothing; the cluster lock is taken by scheduled sweeps (not
    forced) unless `cluster_lock` says otherwise."""

    row_ids: Iterable[int] | None = None
    forced: bool = False
    dry_run: bool = False
    cluster_lock: bool | None = None


@dataclass
class _Sweep:
    app: HasAppContext
    runtime: SweepRuntime  # crm_meta.runtime.Runtime: clock, graph, store, notifier, settings
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


def run_sweep(app: HasAppContext, runtime: SweepRuntime, scope: Scope | None = None, *,
              stopping: threading.Event | None = None,
              on_done: Callable[[Outcome], None] | None = None) -> SweepReport:
    """Check due connections (or the `scope`'s) with bounded concurrency.

    Scheduled sweeps take the cluster lock; `flask meta refresh` relies on claims alone.
    `runtime` brings the clock, Graph client, token store, notifier and keep-alive settings.
    """
    scope = scope or Scope()
    settings = runtime.keepalive  # built once with the runtime
    row_ids, forced, dry_run = scope.row_ids, scope.forced, scope.dry_run
    use_lock = (not forced) if scope.cluster_lock is None else scope.cluster_lock
    with app.app_context():
        lock = ClusterLock(db.engine) if use_lock else None
        # The first statements of a sweep may meet connections that died in the pool (a
        # PostgreSQL restart since the last tick): once more on a fresh one, as requests do.
        if lock is not None and not once_more_if_disconnected(lock.acquire):
            return SweepReport(skipped_reason="another process holds the keepalive lock")
        try:
            if row_ids is None:
                now = runtime.clock.now()
                row_ids = once_more_if_disconnected(lambda: due_ids(now, settings.lease),
                                                    before_retry=db.session.rollback)
            sweep = _Sweep(app, runtime, settings, owner_id(), forced, dry_run, stopping)
            report = SweepReport(outcomes=_Dispatcher(sweep, list(row_ids), on_done).run())
            if not dry_run and not sweep.stopped:
                _check_channels(runtime, report, settings)
            return report
        finally:
            if lock is not None:
                lock.release()


def _check_channels(runtime: SweepRuntime, report: SweepReport, settings: Settings) -> None:
    """The channels of the connections just checked: their Page tokens and subscriptions."""
    tenants = [o.tenant_id for o in report.outcomes if o.checked and o.tenant_id is not None]
    parts = channels.Parts(graph=runtime.graph, store=runtime.store, now=runtime.clock.now())
    try:
        notices = channel_checks.check(parts, tenants, outbox=settings.outbox)
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("channel checks failed; they run again with the next sweep", exc_info=True)
        return
    notify.dispatch(runtime.notifier, notices)
    report.channel_notices = notices


class _Dispatcher:
    """One thread claims batches, keeps `concurrency` workers probing Meta with a queue behind
    them, and writes finished probes back in batches (workers never touch the database on the
    common path, and no transaction waits on Meta)."""

    def __init__(self, sweep: _Sweep, row_ids: list[int], on_done: Callable[[Outcome], None] | None):
        self.sweep, self.ids, self.on_done = sweep, row_ids, on_done
        self.size = sweep.settings.concurrency
        self.next = 0  # index of the first id not claimed yet
        self.clock, self.store = sweep.runtime.clock, sweep.runtime.store
        self.outcomes: list[Outcome] = []
        self.pending: set[Future[Outcome | Checked]] = set()
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

    def _top_up(self, pool: ThreadPoolExecutor) -> None:
        """Claim batches until two batches wait behind the workers."""
        while self.next < len(self.ids) and len(self.pending) < 2 * self.size:
            batch = self.ids[self.next:self.next + self.size]
            self.next += self.size
            if self.sweep.stopped:
                self._report([Outcome(row_id, kind=OutcomeKind.SKIPPED, error="sweep stopped")
                              for row_id in batch])
                continue
            try:
                tickets, skipped = self._claim(batch)
            except SQLAlchemyError:
                # The database went away: claim nothing more, but finish and record what runs.
                log.warning("keepalive claim failed; the rest waits for a later tick", exc_info=True)
                db.session.rollback()
                self.sweep.stop.set()
                tickets = []
                skipped = [Outcome(i, kind=OutcomeKind.SKIPPED, error="claim failed") for i in batch]
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
            notify.dispatch(self.sweep.runtime.notifier, notices)
        self._report(outcomes)

    def _report(self, items: list[Outcome]) -> None:
        for outcome in items:
            self.outcomes.append(outcome)
            if self.on_done is not None:
                self.on_done(outcome)
