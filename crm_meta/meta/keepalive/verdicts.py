"""Keep-alive: record what Meta said about a connection on its row - status, token, warnings,
next check - and the check someone asks for (test-connection).

Two halves so no database transaction stays open while Meta is asked anything:
crm_meta.meta.keepalive.probing only talks to Meta; `apply` here only changes the (claimed, re-read) row.
Which warnings are due lives in crm_meta.meta.keepalive.deadlines; the sweep machinery around all of it -
claims, locks, threads - in crm_meta.meta.keepalive.sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from crm_meta import notify
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.meta import app_health
from crm_meta.meta.errors import (
    ConnectionChanged,
    GraphError,
    ThrottledError,
    TokenInvalidError,
)
from crm_meta.meta.exchange import apply_token_info
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.keepalive import deadlines
from crm_meta.meta.keepalive.probing import APP_THROTTLE_CODE, Probe, ProbeKind, probe
from crm_meta.meta.status import effective_status
from crm_meta.meta.store import TokenStore
from crm_meta.models import MetaConnection, audit
from crm_meta.models.statuses import DEAD, FAILING_STATUSES, Status

log = logging.getLogger(__name__)

# debug_token subcodes that say why a token died: Meta's own verdict, no threshold.
DEAD_TOKEN_STATUS = {458: Status.REVOKED, 463: Status.EXPIRED}
TOKEN_ERROR_THRESHOLD = 2  # consecutive token errors before needs_reauth: one bad answer won't do
RETRY_SOON = timedelta(minutes=30)  # after a transient failure
CONFIRM_SOON = timedelta(minutes=15)  # after a first token error, to confirm or clear it
DEAD_RECHECK = timedelta(days=1)  # revoked/expired tokens cannot come back; look rarely
LAST_DAY_RECHECK = timedelta(hours=1)  # in the last day before an end, look hourly


@dataclass(frozen=True)
class Settings:
    """What a sweep needs from the configuration (built once by the runtime; config.py holds the
    defaults, so a missing key is an error here)."""

    interval: timedelta
    required: tuple[str, ...]
    lease: timedelta
    concurrency: int
    tick: timedelta  # how often the scheduler wakes to look for due connections
    outbox: bool  # a channel is configured: notices go to the outbox with the check

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            interval=timedelta(hours=float(config["KEEPALIVE_INTERVAL_HOURS"])),
            required=tuple(config["META_SCOPES"]),
            lease=timedelta(seconds=float(config["KEEPALIVE_CLAIM_SECONDS"])),
            concurrency=max(1, int(config["KEEPALIVE_CONCURRENCY"])),
            tick=timedelta(minutes=float(config["KEEPALIVE_TICK_MINUTES"])),
            outbox=notify.channels_configured(config),
        )

    @property
    def wake_every(self) -> timedelta:
        """The scheduler's period: often enough that "due sooner" (close to an end) is honoured;
        the per-connection interval lives in next_check_at."""
        return min(self.interval, self.tick)


class OutcomeKind(StrEnum):
    """How one connection's turn in a sweep ended: a probe's kind, or why there was none (the
    values are the keep-alive metric's labels)."""

    VALID = ProbeKind.VALID.value
    INVALID = ProbeKind.INVALID.value
    TOKEN_ERROR = ProbeKind.TOKEN_ERROR.value
    THROTTLED_NOW = ProbeKind.THROTTLED_NOW.value
    APP_THROTTLED = ProbeKind.APP_THROTTLED.value
    APP_MISCONFIGURED = ProbeKind.APP_MISCONFIGURED.value
    TRANSIENT = ProbeKind.TRANSIENT.value
    ERROR = ProbeKind.ERROR.value
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    BUSY = "busy"
    THROTTLED = "throttled"
    LOST = "lost"
    CRASHED = "crashed"


CHECKED = frozenset({OutcomeKind.VALID, OutcomeKind.INVALID, OutcomeKind.TOKEN_ERROR,
                     OutcomeKind.THROTTLED_NOW, OutcomeKind.TRANSIENT, OutcomeKind.ERROR})
FAILED = frozenset({OutcomeKind.TOKEN_ERROR, OutcomeKind.THROTTLED_NOW, OutcomeKind.TRANSIENT,
                    OutcomeKind.ERROR, OutcomeKind.CRASHED, OutcomeKind.APP_MISCONFIGURED})
NO_VERDICT = frozenset({ProbeKind.THROTTLED_NOW, ProbeKind.APP_THROTTLED, ProbeKind.TRANSIENT,
                        ProbeKind.ERROR})  # Meta did not answer about the token


@dataclass
class Outcome:
    """The result of one connection's check, for the sweep report."""

    row_id: int
    tenant_id: int | None = None
    kind: OutcomeKind = OutcomeKind.SKIPPED
    status_before: str | None = None
    status_after: str | None = None
    extended: bool = False
    notices: list[notify.Notice] = field(default_factory=list)
    error: str | None = None

    @property
    def checked(self) -> bool:
        return self.kind in CHECKED

    @property
    def failed(self) -> bool:
        return self.kind in FAILED


@dataclass(frozen=True)
class Recording:
    """How a probe is recorded on a row: when, by which settings, with which token store, and
    for whose tenant (`contact`, loaded by the caller: None for an unknown tenant or a dry run).
    `dry_run`: nothing is kept; `confirmed`: someone asked for this check and sees its answer,
    so a token error counts at once instead of waiting for a second one."""

    now: datetime
    settings: Settings
    store: TokenStore
    contact: deadlines.Contact | None
    dry_run: bool = False
    confirmed: bool = False


def check_now(graph: GraphClient, store: TokenStore, row: MetaConnection, now: datetime,
              settings: Settings) -> tuple[Probe, Outcome]:
    """A check someone asked for (test-connection): the same probe and status rules as the
    sweep, /me on top, and Meta's verdict counts at once. Fenced like the sweep: the verdict is
    applied only to the token that was checked (a reconnect meanwhile makes it stale).
    Commits; Meta failures re-raise."""
    token, ciphertext, row_id = store.read(row), row.token_ciphertext, row.id
    db.session.rollback()  # no transaction stays open while Meta answers
    result = probe(graph, token, now=now, extension_attempted_at=None, allow_extend=False)
    if result.kind == ProbeKind.APP_MISCONFIGURED:
        notices = app_health.report_misconfigured(result.failure(), now=now, app=graph,
                                                  outbox=settings.outbox, actor="test-connection")
        raise AppCheckFailed(result.failure(), notices)
    if result.kind in {ProbeKind.VALID, ProbeKind.INVALID}:
        app_health.report_healthy(now=now, credential=graph.credential, app_id=graph.app_id,
                                  actor="test-connection")
    name = None
    if result.kind == ProbeKind.VALID:
        try:
            name = graph.get("me", token=token, fields="id,name").get("name")
        except TokenInvalidError as exc:  # debug_token was fine, a real call is not
            result = Probe(ProbeKind.TOKEN_ERROR, info=result.info, error=exc)
        except GraphError:
            pass  # no verdict on the token: keep the stored name
    row = db.session.scalar(db.select(MetaConnection).where(MetaConnection.id == row_id).with_for_update()
                            .execution_options(populate_existing=True))
    if row is None or row.token_ciphertext != ciphertext:
        db.session.rollback()  # reconnected (or disconnected) meanwhile: our verdict is stale
        raise ConnectionChanged()
    if name:
        row.meta_user_name = name
    contact = deadlines.contacts([row.tenant_id]).get(row.tenant_id)
    outcome = apply(row, result, Recording(now, settings, store, contact, confirmed=True))
    db.session.commit()
    if result.kind in NO_VERDICT and result.error is not None:
        raise result.error
    return result, outcome


class AppCheckFailed(Exception):
    """Meta refuses the app itself; carries the Graph error and the notices to dispatch."""

    def __init__(self, error: GraphError, notices: list[notify.Notice]):
        super().__init__(str(error))
        self.error = error
        self.notices = notices


# -- changing the row (no Meta calls) --------------------------------------------------------
def apply(row: MetaConnection, result: Probe, how: Recording) -> Outcome:
    """Record the probe on the row: status with its threshold, token, warnings, next check.
    No query of its own: `how.contact` (the tenant's, for its notices) comes from the caller's load.

    Adds audit events and outbox rows to the session; the caller commits (or rolls back for a
    dry run), so a recorded warning and its delivery are one transaction.
    """
    now, settings, dry_run, confirmed = how.now, how.settings, how.dry_run, how.confirmed
    before = effective_status(row, now, list(settings.required))
    outcome = Outcome(row.id, row.tenant_id, OutcomeKind(result.kind), status_before=before)
    retry_soon = None
    match result.kind:
        case ProbeKind.VALID:
            _record_valid(row, result, outcome, how)
        case ProbeKind.INVALID:
            info = result.verdict()
            row.last_checked_at = now
            row.last_error_code = str(info.error_code or "190")
            row.last_error = (info.error_message or "Meta says the token is not valid")[:500]
            if info.error_subcode in DEAD_TOKEN_STATUS:  # Meta's own verdict: authoritative
                row.status = DEAD_TOKEN_STATUS[info.error_subcode]
                row.consecutive_failures = (row.consecutive_failures or 0) + 1
            else:
                retry_soon = _strike(row, confirmed)
        case ProbeKind.TOKEN_ERROR:
            row.last_checked_at = now
            error = result.failure()
            row.last_error_code = f"{error.code}/{error.subcode or ''}".rstrip("/")
            row.last_error = error.message[:500]
            retry_soon = _strike(row, confirmed)
        case ProbeKind.THROTTLED_NOW:
            row.status = Status.THROTTLED
            row.throttled_until = now + timedelta(seconds=result.failure().retry_after or 300)
        case _:  # transient or error: no verdict on the token, so neither status nor token moves
            row.last_error_code = str(getattr(result.error, "code", None) or result.kind)
            row.last_error = str(result.error)[:500]
            retry_soon = RETRY_SOON
    after = effective_status(row, now, list(settings.required))
    outcome.status_after = after
    outcome.notices = deadlines.due_notices(row, now, (before, after), dry_run=dry_run, contact=how.contact)
    if settings.outbox and not dry_run:
        notify.queue(notify.outbox_rows(outcome.notices, now))
    row.next_check_at = next_check(row, now, settings.interval, after, retry_soon)
    if before != after:
        audit.record("meta.keepalive.status", actor="keepalive", tenant_id=row.tenant_id,
                     outcome="success" if after not in FAILING_STATUSES else "failure",
                     details={"from": before, "to": after, "check": result.kind,
                              "error_code": row.last_error_code if after in FAILING_STATUSES else None})
    return outcome


def _record_valid(row: MetaConnection, result: Probe, outcome: Outcome, how: Recording) -> None:
    now, dry_run, store = how.now, how.dry_run, how.store
    info = result.verdict()
    apply_token_info(row, info, now)
    row.status = Status.CONNECTED
    row.consecutive_failures = 0
    row.throttled_until = None
    row.last_error = row.last_error_code = None
    ext = result.extension
    if ext is None:
        return
    row.extension_attempted_at = now
    if ext.kept and ext.token and ext.info is not None and not dry_run:
        store.replace(row, ext.token)  # the new string replaces the old one, encrypted
        apply_token_info(row, ext.info, now)
        outcome.extended = True
        audit.record("meta.keepalive.extend", actor="keepalive", tenant_id=row.tenant_id,
                     details={"expires_at": iso(ext.info.expires_at),
                              "previous_expires_at": iso(info.expires_at)})
    elif ext.error is not None:
        # The stored token is untouched: a failed exchange never costs a working token.
        audit.record("meta.keepalive.extend", actor="keepalive", tenant_id=row.tenant_id,
                     outcome="failure", details={"error": type(ext.error).__name__,
                                                 "code": getattr(ext.error, "code", None)})
        if isinstance(ext.error, ThrottledError) and ext.error.code != APP_THROTTLE_CODE:
            row.status = Status.THROTTLED
            row.throttled_until = now + timedelta(seconds=ext.error.retry_after or 300)


def _strike(row: MetaConnection, confirmed: bool = False) -> timedelta:
    """One more consecutive token error; the threshold turns it into needs_reauth."""
    row.consecutive_failures = (row.consecutive_failures or 0) + 1
    if confirmed or row.consecutive_failures >= TOKEN_ERROR_THRESHOLD:
        row.status = Status.NEEDS_REAUTH
    return CONFIRM_SOON


def next_check(row: MetaConnection, now: datetime, interval: timedelta, status: str,
               retry_soon: timedelta | None = None) -> datetime:
    """The regular interval, sooner after a failure, and never later than the next warning."""
    if status == Status.THROTTLED and row.throttled_until:
        return row.throttled_until
    step = min(interval, retry_soon) if retry_soon else interval
    if status in DEAD:
        step = max(interval, DEAD_RECHECK)
    moment = now + step
    for end in (row.expires_at, row.data_access_expires_at):
        if end is None or end <= now:
            continue
        upcoming = [end - timedelta(days=d) for d in (*deadlines.WARN_DAYS, 0)]
        moment = min([moment, *(m for m in upcoming if m > now)])
        if end - now <= timedelta(days=1):
            moment = min(moment, now + LAST_DAY_RECHECK)
    return moment


