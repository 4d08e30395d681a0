"""Scheduled jobs: APScheduler in-process, with a declarative job list of stable ids.

The jobs are safe however many processes run a scheduler: the keep-alive sweep takes a
cluster-wide lock and per-connection claims (crm_meta.meta.keepalive.sweep), and the notification
outbox claims each notice (crm_meta.notify).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from crm_meta import notify
from crm_meta import runtime as runtimes
from crm_meta.infra import metrics
from crm_meta.infra.database import db
from crm_meta.meta import connections
from crm_meta.meta.keepalive.leases import ClusterLock
from crm_meta.meta.keepalive.sweep import run_sweep
from crm_meta.meta.webhooks import watch

log = logging.getLogger(__name__)
FIRST_RUN_DELAY = timedelta(seconds=30)  # let the app finish booting before the first sweep
NOTIFY_FLUSH_SECONDS = 5.0  # at shutdown, time for a delivery in flight (the outbox keeps the rest)


# -- the declarative job list ----------------------------------------------------------------
@dataclass(frozen=True)
class JobSpec:
    """A job with a stable id: re-adding it replaces, never duplicates."""

    id: str
    func: Callable
    every: Callable[[runtimes.Runtime], timedelta]
    description: str


def keepalive_tick(app, stopping: threading.Event | None = None) -> None:
    """Scheduled: check the connections that are due (most ticks find few or none)."""
    started = time.monotonic()
    try:
        report = run_sweep(app, runtimes.of(app), stopping=stopping)
        if report.skipped_reason:
            metrics.SWEEPS.labels(result="skipped").inc()
            log.debug("keepalive sweep skipped: %s", report.skipped_reason)
            return
        if report.outcomes:
            log.info("keepalive sweep: %s", report.counts())
    except Exception:  # never let a bad tick take the scheduler down
        metrics.SWEEPS.labels(result="failed").inc()
        log.exception("keepalive sweep failed")
        return
    metrics.SWEEP_DURATION.observe(time.monotonic() - started)
    metrics.SWEEPS.labels(result="completed").inc()
    metrics.SWEEP_LAST_SUCCESS.set(time.time())
    for outcome in report.outcomes:
        metrics.KEEPALIVE_CHECKS.labels(outcome=outcome.kind).inc()
        if outcome.extended:
            metrics.TOKENS_EXTENDED.inc()


def outbox_tick(app, stopping: threading.Event | None = None) -> None:
    """Scheduled: deliver the notices still due (a failed attempt, or a process that died before
    its sender ran), then prune delivered ones. Safe in every process at once: rows are claimed."""
    parts = runtimes.of(app)
    try:
        counts = notify.deliver_due(app, sender=parts.notifier, stopping=stopping)
        if counts:
            log.info("notification outbox: %s", dict(counts))
        pruned = notify.prune(app, clock=parts.clock, keep=parts.notifier.policy.keep)
        if pruned:
            log.info("notification outbox: %s delivered notices pruned", pruned)
    except Exception:  # never let a bad tick take the scheduler down
        log.exception("notification outbox run failed")


def webhooks_tick(app, stopping: threading.Event | None = None) -> None:
    """Scheduled: route deliveries left in the inbox (a process died before its pass) and
    forward the events due (retries). Safe in every process at once: rows are locked or claimed."""
    try:
        counts = runtimes.of(app).webhooks.run_pass(stopping)
        if counts:
            log.info("meta webhooks: %s", dict(counts))
    except Exception:  # never let a bad tick take the scheduler down
        log.exception("meta webhooks run failed")


def subscription_every(app) -> timedelta:
    return timedelta(minutes=float(app.config["WEBHOOK_SUBSCRIPTION_CHECK_MINUTES"]))


def subscription_tick(app, stopping: threading.Event | None = None) -> None:
    """Scheduled: whether Meta still sends the app's Page leadgen webhooks here (webhooks on);
    one process checks per interval (a lease on the stored verdict), a lost one warns once and
    is subscribed again when META_WEBHOOKS_AUTO_RESUBSCRIBE allows (watch.run)."""
    parts = runtimes.of(app)
    try:
        with app.app_context():
            result = watch.run(parts.graph, app.config, now=parts.clock.now(), every=subscription_every(app),
                               outbox=parts.keepalive.outbox)
        if result.state not in {"off", "skipped"}:
            metrics.WEBHOOK_SUBSCRIPTION_CHECKS.labels(result=result.state).inc()
        notify.dispatch(parts.notifier, list(result.notices))
    except Exception:  # never let a bad tick take the scheduler down
        log.exception("meta webhook subscription check failed")


def discovery_tick(app, stopping: threading.Event | None = None) -> None:
    """Scheduled: finish the discoveries a connect left partial (its round budget: issue 23).
    One process at a time (an advisory lock, as the sweep's): the others skip this tick rather
    than list the same assets at Meta again; each merge is still idempotent under the row's lock.
    A discovery that keeps failing is tried less and less often (connections.discovery_due)."""
    parts = runtimes.of(app)
    try:
        with app.app_context(), ClusterLock(db.engine, "discovery") as ours:
            if not ours:
                return
            done = connections.finish_discoveries(graph=parts.graph, store=parts.store,
                                                  now=parts.clock.now(), stopping=stopping)
        if done:
            log.info("meta discovery completed for %s connections", done)
    except Exception:  # never let a bad tick take the scheduler down
        log.exception("meta discovery run failed")


JOBS: tuple[JobSpec, ...] = (
    JobSpec("meta.keepalive.sweep", keepalive_tick, lambda parts: parts.keepalive.wake_every,
            "Check due Meta connections, extend tokens, warn tenants"),
    JobSpec("meta.notify.outbox", outbox_tick, lambda parts: timedelta(minutes=1),
            "Deliver due notifications from the outbox, prune delivered ones"),
    JobSpec("meta.webhooks", webhooks_tick, lambda parts: timedelta(seconds=10),
            "Route Meta's webhook deliveries left in the inbox, forward due events to the CRM"),
    JobSpec("meta.webhooks.subscription", subscription_tick,
            lambda parts: subscription_every(parts.webhooks.app),
            "Check that Meta still sends the app's Page leadgen webhooks here; subscribe again, warn once"),
    JobSpec("meta.discovery", discovery_tick, lambda parts: timedelta(seconds=30),
            "Read the assets a connect left unread (its round budget), merge them"),
)


# -- the scheduler: one per process ----------------------------------------------------------
_state_lock = threading.Lock()
_scheduler = None
_scheduler_pid: int | None = None
_scheduler_app = None
_stopping: threading.Event | None = None  # set on shutdown: the running sweep stops claiming


def start(app):
    """Start this process's scheduler with every job in JOBS; idempotent per process."""
    global _scheduler, _scheduler_pid, _stopping, _scheduler_app
    with _state_lock:
        if _scheduler is not None and _scheduler_pid == os.getpid() and _scheduler.running:
            return _scheduler
        stopping = threading.Event()
        scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        first = datetime.now(UTC) + FIRST_RUN_DELAY
        parts = runtimes.of(app)
        for spec in JOBS:
            scheduler.add_job(spec.func, "interval", args=[app, stopping], id=spec.id, name=spec.description,
                              seconds=spec.every(parts).total_seconds(), next_run_time=first,
                              replace_existing=True)
        scheduler.start()
        # Until a sweep completes, the alert on a stalled sweep counts from the scheduler's start.
        metrics.SWEEP_INTERVAL.set(parts.keepalive.wake_every.total_seconds())
        metrics.SWEEP_LAST_SUCCESS.set(time.time())
        _scheduler, _scheduler_pid, _stopping = scheduler, os.getpid(), stopping
        _scheduler_app = app
        atexit.register(shutdown)
        log.info("scheduler started in pid %s with jobs %s", os.getpid(), [s.id for s in JOBS])
        return scheduler


def shutdown(wait: bool = True) -> None:
    """Stop the scheduler: sweeps in flight finish their current checks and stop claiming."""
    global _scheduler, _scheduler_pid, _stopping, _scheduler_app
    with _state_lock:
        scheduler, stopping, app = _scheduler, _stopping, _scheduler_app
        _scheduler, _scheduler_pid, _stopping, _scheduler_app = None, None, None, None
    if scheduler is None:
        return
    stopping.set()
    if scheduler.running:
        scheduler.shutdown(wait=wait)
    sender = runtimes.of(app).notifier if app is not None else None
    if sender is not None and not sender.flush(timeout=NOTIFY_FLUSH_SECONDS):
        log.warning("shutting down during a delivery; the outbox keeps what was not sent")


def start_if_enabled(app):
    """The serving entry point's call (gunicorn's post_worker_init): a scheduler in this worker
    when SCHEDULER_ENABLED says so, nothing otherwise."""
    if app.config["SCHEDULER_ENABLED"]:
        return start(app)
    log.info("scheduler not started in pid %s (SCHEDULER_ENABLED is off)", os.getpid())
    return None


def run_forever(app, stop: threading.Event | None = None) -> None:
    """`flask jobs run`: this process hosts the jobs until SIGTERM, SIGINT or `stop`."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    start(app)
    try:
        stop.wait()
    finally:
        shutdown()
