"""The two steps of a sweep's check, so no database work waits on Meta and none is done per row:
a worker probes a claimed connection (network only), and the sweep writes finished probes back
in batches: one transaction that locks the batch's rows, fences each (still our claim, still the
token that was checked), applies the verdicts with their audit events and outbox rows, and
releases the claims."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select

from crm_meta import notify
from crm_meta.infra.clock import Clock
from crm_meta.infra.database import db
from crm_meta.meta import app_health, usage
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.keepalive import deadlines, probing, verdicts
from crm_meta.meta.keepalive.leases import TICKET_COLUMNS, TOKENS, Ticket, release, still_ours, ticket
from crm_meta.meta.keepalive.probing import APP_THROTTLE_CODE, Probe, ProbeKind
from crm_meta.meta.keepalive.verdicts import Outcome, OutcomeKind
from crm_meta.meta.store import TokenStore
from crm_meta.meta.types import HasAppContext
from crm_meta.models import MetaConnection

log = logging.getLogger(__name__)
MAX_PAUSE = 2.0  # seconds a worker waits per call when Meta's budget is nearly spent


class SweepRuntime(Protocol):
    """What a sweep uses of the runtime (crm_meta.runtime.Runtime)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def graph(self) -> GraphClient: ...

    @property
    def store(self) -> TokenStore: ...

    @property
    def notifier(self) -> notify.Notifier: ...

    @property
    def keepalive(self) -> verdicts.Settings: ...


class SweepRun(Protocol):
    """One sweep as its workers see it (crm_meta.meta.keepalive.sweep)."""

    app_ok_reported: bool  # Meta accepted the app's credential once in this sweep

    @property
    def app(self) -> HasAppContext: ...

    @property
    def runtime(self) -> SweepRuntime: ...

    @property
    def settings(self) -> verdicts.Settings: ...

    @property
    def dry_run(self) -> bool: ...

    @property
    def stopped(self) -> bool: ...

    @property
    def stop(self) -> threading.Event: ...


@dataclass
class Checked:
    """A finished probe waiting to be written back."""

    ticket: Ticket
    result: Probe
    now: datetime


def write_back(checked: list[Checked], settings: verdicts.Settings, store: TokenStore, *,
               dry_run: bool) -> tuple[list[Outcome], list[notify.Notice]]:
    """Record a batch of probes in one transaction; (outcomes, notices to dispatch after it).

    A batch that fails is written again row by row, so one bad row costs only its own check
    (its claim is then released, as for any crashed check).
    """
    try:
        return _write_batch(checked, settings, store, dry_run=dry_run)
    except Exception:
        db.session.rollback()
        if len(checked) == 1:
            return [_crashed(checked[0], dry_run=dry_run)], []
    outcomes: list[Outcome] = []
    notices: list[notify.Notice] = []
    for item in checked:
        done, sent = write_back([item], settings, store, dry_run=dry_run)
        outcomes += done
        notices += sent
    return outcomes, notices


def _write_batch(checked: list[Checked], settings: verdicts.Settings, store: TokenStore, *,
                 dry_run: bool) -> tuple[list[Outcome], list[notify.Notice]]:
    query = (select(MetaConnection).where(MetaConnection.id.in_([c.ticket.row_id for c in checked]))
             .order_by(MetaConnection.id).execution_options(populate_existing=True))
    if not dry_run:
        query = query.with_for_update()  # in id order: two writers never wait on each other
    rows = {row.id: row for row in db.session.scalars(query)}
    # The batch's single load of its tenants (slug, name, admins) for the notices: not per row.
    contacts = {} if dry_run else deadlines.contacts(row.tenant_id for row in rows.values())
    outcomes: list[Outcome] = []
    notices: list[notify.Notice] = []
    for item in checked:
        row, claim = rows.get(item.ticket.row_id), item.ticket.claim_id
        if not dry_run and not still_ours(row, claim, item.ticket.token_ciphertext):
            if row is not None and still_ours(row, claim):  # reconnected meanwhile: our verdict is stale
                row.claimed_by = row.claimed_until = None
            outcomes.append(Outcome(item.ticket.row_id, item.ticket.tenant_id, kind=OutcomeKind.LOST))
            continue
        if row is None:
            outcomes.append(Outcome(item.ticket.row_id, kind=OutcomeKind.LOST))
            continue
        outcome = verdicts.apply(row, item.result, verdicts.Recording(
            item.now, settings, store, contacts.get(row.tenant_id), dry_run=dry_run))
        if item.result.error is not None:
            outcome.error = str(item.result.error)[:200]
        if not dry_run:
            row.claimed_by = row.claimed_until = None
        outcomes.append(outcome)
        notices += outcome.notices
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    return outcomes, notices


def _crashed(item: Checked, *, dry_run: bool) -> Outcome:
    log.exception("keepalive write-back of connection %s crashed", item.ticket.row_id)
    if not dry_run:
        try:
            release(item.ticket.row_id, item.ticket.claim_id)
        except Exception:
            db.session.rollback()
            log.warning("could not release claim on connection %s", item.ticket.row_id,
                        exc_info=True)
    return Outcome(item.ticket.row_id, item.ticket.tenant_id, kind=OutcomeKind.CRASHED,
                   error="write-back failed")


def dry_run_tickets(row_ids: list[int], now: datetime) -> tuple[list[Ticket], list[Outcome]]:
    """A dry run claims nothing: the rows as they are; throttled ones are left alone."""
    found = {r.id: r for r in db.session.execute(
        select(*TICKET_COLUMNS, TOKENS.c.throttled_until).where(TOKENS.c.id.in_(row_ids)))}
    db.session.rollback()
    tickets, skipped = [], []
    for row_id in row_ids:
        row = found.get(row_id)
        if row is None:
            skipped.append(Outcome(row_id, kind=OutcomeKind.LOST))
        elif row.throttled_until and row.throttled_until > now:
            skipped.append(Outcome(row_id, row.tenant_id, kind=OutcomeKind.THROTTLED))
        else:
            tickets.append(ticket(tuple(row)[:5], None))
    return tickets, skipped


def not_claimed(row_ids: Iterable[int], now: datetime, lease: timedelta) -> list[Outcome]:
    """Why rows could not be claimed: gone, throttled, held by someone, or no longer due."""
    row_ids = list(row_ids)
    if not row_ids:
        return []
    found = {r.id: r for r in db.session.execute(
        select(TOKENS.c.id, TOKENS.c.tenant_id, TOKENS.c.throttled_until, TOKENS.c.claimed_until)
        .where(TOKENS.c.id.in_(row_ids)))}
    db.session.rollback()
    outcomes = []
    for row_id in row_ids:
        row = found.get(row_id)
        if row is None:
            outcomes.append(Outcome(row_id, kind=OutcomeKind.LOST))
            continue
        if row.throttled_until and row.throttled_until > now:
            kind = OutcomeKind.THROTTLED
        elif row.claimed_until and now < row.claimed_until <= now + 2 * lease:
            kind = OutcomeKind.BUSY
        else:
            kind = OutcomeKind.SKIPPED  # checked by another process moments ago
        outcomes.append(Outcome(row_id, row.tenant_id, kind=kind))
    return outcomes


# -- the worker's step: Meta only -----------------------------------------------------------
def probe_one(sweep: SweepRun, ticket: Ticket) -> Outcome | Checked:
    """One claimed connection, in a worker thread: ask Meta, touch the database only when the
    check cannot be made (its claim goes back)."""
    with sweep.app.app_context():
        try:
            return _probe_claimed(sweep, ticket)
        except Exception as exc:  # one tenant's failure never stops the sweep
            log.exception("keepalive check of connection %s crashed", ticket.row_id)
            db.session.rollback()
            _release(sweep, ticket)
            return Outcome(ticket.row_id, ticket.tenant_id, kind=OutcomeKind.CRASHED,
                           error=type(exc).__name__)


def _release(sweep: SweepRun, ticket: Ticket) -> None:
    if sweep.dry_run:
        return
    try:
        release(ticket.row_id, ticket.claim_id)
    except Exception:
        db.session.rollback()
        log.warning("could not release claim on connection %s", ticket.row_id, exc_info=True)


def _probe_claimed(sweep: SweepRun, ticket: Ticket) -> Outcome | Checked:
    if sweep.stopped:
        _release(sweep, ticket)
        return Outcome(ticket.row_id, ticket.tenant_id, kind=OutcomeKind.SKIPPED, error="sweep stopped")
    rt = sweep.runtime
    now = rt.clock.now()
    if ticket.claimed_until is not None and now >= ticket.claimed_until:
        # Waited past its lease (someone may hold it now): leave it to whoever does.
        return Outcome(ticket.row_id, ticket.tenant_id, kind=OutcomeKind.LOST)
    token = rt.store.read(ticket)
    _pace(rt.graph)
    result = probing.probe(rt.graph, token, now=now,
                           extension_attempted_at=ticket.extension_attempted_at,
                           allow_extend=not sweep.dry_run)
    if result.kind == ProbeKind.APP_MISCONFIGURED:
        return _app_misconfigured(sweep, rt, ticket, result, now)
    answered = result.kind in {ProbeKind.VALID, ProbeKind.INVALID}  # Meta accepted the app's credential
    if answered and not sweep.app_ok_reported and not sweep.dry_run:
        sweep.app_ok_reported = True
        app_health.report_healthy(now=now, credential=rt.graph.credential, app_id=rt.graph.app_id)
    if _app_wide(result, rt.graph):
        sweep.stop.set()  # Meta throttles the whole app: leave the rest for a later tick
    if result.kind == ProbeKind.APP_THROTTLED:  # nothing learnt about this connection: it stays due
        _release(sweep, ticket)
        return Outcome(ticket.row_id, ticket.tenant_id, kind=OutcomeKind.DEFERRED,
                       error=str(result.error)[:200])
    return Checked(ticket, result, now)


def _app_misconfigured(sweep: SweepRun, rt: SweepRuntime, ticket: Ticket, result: Probe,
                       now: datetime) -> Outcome:
    """Meta refuses the app itself: stop the sweep, strike nobody, tell operators once."""
    sweep.stop.set()
    error = str(result.error)[:200]
    if sweep.dry_run:
        return Outcome(ticket.row_id, ticket.tenant_id, kind=OutcomeKind.APP_MISCONFIGURED, error=error)
    _release(sweep, ticket)  # nothing learnt about this connection: it stays due
    notices = app_health.report_misconfigured(
        result.failure(), now=now, app=rt.graph, outbox=sweep.settings.outbox)
    notify.dispatch(rt.notifier, notices)
    return Outcome(ticket.row_id, ticket.tenant_id, kind=OutcomeKind.APP_MISCONFIGURED, notices=notices,
                   error=error)


def _pace(graph: GraphClient) -> None:
    """Slow down before Meta's budget runs out, not only after an error."""
    spent = getattr(graph, "last_app_usage", 0) or 0
    if spent >= usage.SLOWDOWN:
        graph.sleep(MAX_PAUSE * min(1.0, (spent - usage.SLOWDOWN) / (usage.SPENT - usage.SLOWDOWN)))


def _app_wide(result: Probe, graph: GraphClient) -> bool:
    """Meta throttles the app as a whole (code 4), or its usage header says the budget is spent."""
    errors = [result.error, result.extension.error if result.extension else None]
    if any(getattr(e, "code", None) == APP_THROTTLE_CODE for e in errors):
        return True
    spent = (getattr(graph, "last_app_usage", 0) or 0) >= usage.SPENT
    return result.kind == ProbeKind.THROTTLED_NOW and spent
