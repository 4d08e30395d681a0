"""Watching the app-level webhook subscription: Meta unsubscribes an app whose callback keeps
failing (8 hours), and then no lead arrives, silently. A periodic check (the
`meta.webhooks.subscription` job) asks Meta what the app is subscribed to and keeps the verdict
as the `webhook_subscription` row of `app_health` (misconfigured: the subscription is lost or
changed), so that every process (the hub, /metrics) sees it. The process that makes a transition
tells operators once per episode: a log line, an audit event and, when lost, a notice. With
META_WEBHOOKS_AUTO_RESUBSCRIBE it then subscribes this server again (a second notice says so)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update

from crm_meta import notify
from crm_meta.infra.database import db, rowcount
from crm_meta.infra.timestamps import iso
from crm_meta.infra.upsert import insert_ignore
from crm_meta.meta import app_health
from crm_meta.meta.errors import GraphError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.webhooks import subscription
from crm_meta.models import AppHealth, audit
from crm_meta.models.statuses import NoticeEvent

log = logging.getLogger(__name__)
NAME = "webhook_subscription"
ACTOR = "subscription-watch"
BACK = app_health.Verdict(NAME, "meta.webhooks.resubscribed",
                          "Meta sends this app's Page leadgen webhooks again (app %s)")


@dataclass(frozen=True)
class Result:
    """What one run did: off, skipped (another process checked lately), unknown (Meta failed:
    the last verdict stands), ok, lost, or restored (found lost and subscribed again by this
    run); `changed` when this run made the transition."""

    state: str
    changed: bool = False
    notices: tuple[notify.Notice, ...] = ()


def enabled(config: Mapping[str, Any]) -> bool:
    """Webhooks on, with the verify token Meta needs to (re)subscribe: as `flask meta doctor`."""
    return bool(config["META_WEBHOOKS_ENABLED"] and config.get("META_VERIFY_TOKEN"))


def lost() -> AppHealth | None:
    """The stored verdict when it says the subscription is lost (for the hub's banner)."""
    row = db.session.get(AppHealth, NAME)
    return row if row is not None and row.misconfigured else None


def is_lost() -> bool:
    return lost() is not None


def claim(now: datetime, every: timedelta) -> bool:
    """The lease: the process that moves `checked_at` on checks; the others skip until the next
    interval (a tenth of slack so a scheduler a little early still runs). Commits."""
    insert_ignore(AppHealth, [{"name": NAME, "misconfigured": False}])
    won = rowcount(db.session.execute(
        update(AppHealth)
        .where(AppHealth.name == NAME,
               or_(AppHealth.checked_at.is_(None), AppHealth.checked_at <= now - every * 0.9))
        .values(checked_at=now).execution_options(synchronize_session=False))) == 1
    db.session.commit()
    return won


def run(graph: GraphClient, config: Mapping[str, Any], *, now: datetime, every: timedelta,
        outbox: bool) -> Result:
    """One check when webhooks are on and no other process checked within `every`. Commits.
    The notices returned are for the caller to dispatch."""
    if not enabled(config):
        _forget()  # a verdict from before webhooks were turned off would alert forever
        return Result("off")
    if not claim(now, every):
        return Result("skipped")
    try:
        page = subscription.listed(graph, config)
    except GraphError as exc:  # transient or not, it says nothing about the subscription
        log.warning("webhook subscription check: Meta failed (%s, trace %s); the last verdict stands",
                    exc.kind, exc.fbtrace_id)
        return Result("unknown")
    seen = subscription.verdict(page, config)
    if seen.ok:
        return Result("ok", changed=app_health.report_healthy(now=now, app_id=graph.app_id, actor=ACTOR,
                                                              verdict=BACK))
    notices = _report_lost(now, seen.detail, graph.app_id, outbox)
    # A subscription sending to another URL is left alone: Meta keeps one callback per object, so
    # it may be another deployment's (staging on the same app, or the new host of a move), and two
    # servers re-subscribing themselves would steal it from each other every interval.
    if config["META_WEBHOOKS_AUTO_RESUBSCRIBE"] and not subscription.elsewhere(page, config):
        restored = _resubscribe(graph, config, now=now, outbox=outbox, what=seen.detail)
        if restored is not None:
            return Result("restored", changed=True, notices=(*(notices or ()), *restored))
    return Result("lost", changed=notices is not None, notices=tuple(notices or ()))


def _report_lost(now: datetime, what: str, app_id: str, outbox: bool) -> list[notify.Notice] | None:
    """Mark the row lost; None when it already was (only the message is refreshed)."""
    won = rowcount(db.session.execute(
        update(AppHealth).where(AppHealth.name == NAME, AppHealth.misconfigured.is_(False))
        .values(misconfigured=True, since=now, error_code="unsubscribed", error_message=what[:500])
        .execution_options(synchronize_session=False))) == 1
    if not won:
        db.session.execute(update(AppHealth).where(AppHealth.name == NAME).values(error_message=what[:500])
                           .execution_options(synchronize_session=False))
        db.session.commit()
        return None
    log.error("Meta no longer sends this app's Page leadgen webhooks (app %s: %s); no lead reaches "
              "the CRM until it is subscribed again (`flask meta doctor --subscribe`, or this check "
              "itself with META_WEBHOOKS_AUTO_RESUBSCRIBE)", app_id, what)
    audit.record("meta.webhooks.unsubscribed", actor=ACTOR, outcome="failure",
                 details={"app_id": app_id, "found": what})
    notices = [notify.Notice(id=notice_id(now), event=NoticeEvent.WEBHOOKS_UNSUBSCRIBED, tenant_id=None,
                             status="unsubscribed", created_at=iso(now))]
    if outbox:
        notify.queue(notify.outbox_rows(notices, now))
    db.session.commit()
    return notices if outbox else []


def _resubscribe(graph: GraphClient, config: Mapping[str, Any], *, now: datetime, outbox: bool,
                 what: str) -> list[notify.Notice] | None:
    """Ask Meta to subscribe this server again, as `flask meta doctor --subscribe` does: this job
    runs in the server, so the callback Meta verifies first is up. Restored: audit, log, a notice
    naming the backfill, and the verdict cleared. Refused (None): the verdict stays lost with
    Meta's message; the next run (the lease: one per interval) tries again, with no new notice."""
    made = subscription.subscribe_here(graph, config)
    details = {"app_id": graph.app_id, "callback_url": subscription.callback_url(config)}
    if not made.ok:
        log.warning("re-subscribing this app's Page leadgen webhooks failed (app %s): %s; the next "
                    "check tries again", graph.app_id, made.detail)
        audit.record("meta.webhooks.auto_resubscribe", actor=ACTOR, outcome="failure",
                     details={**details, "error": made.detail})
        db.session.execute(update(AppHealth).where(AppHealth.name == NAME)
                           .values(error_message=f"{what}; re-subscribing: {made.detail}"[:500])
                           .execution_options(synchronize_session=False))
        db.session.commit()
        return None
    row = db.session.get(AppHealth, NAME)
    since = iso((row.since if row is not None and row.since else now).replace(microsecond=0))
    log.warning("re-subscribed this app's Page leadgen webhooks (app %s), lost since %s: leads sent "
                "meanwhile can be read back with `flask leads backfill --tenant <slug> --since %s`",
                graph.app_id, since, since)
    audit.record("meta.webhooks.auto_resubscribe", actor=ACTOR, details={**details, "lost_since": since})
    notices = [notify.Notice(id=_restored_id(since), event=NoticeEvent.WEBHOOKS_RESUBSCRIBED,
                             tenant_id=None, status="subscribed", created_at=iso(now), since=since)]
    if outbox:
        notify.queue(notify.outbox_rows(notices, now))
    app_health.report_healthy(now=now, app_id=graph.app_id, actor=ACTOR, verdict=BACK)
    db.session.commit()  # the notice's outbox row, whether or not the verdict was still set
    return notices if outbox else []


def _restored_id(since: str) -> str:
    """One restoration notice per episode (the episode is named by when it was found lost)."""
    return hashlib.sha256(f"webhooks_resubscribed:{since}".encode()).hexdigest()[:32]


def _forget() -> None:
    db.session.execute(update(AppHealth).where(AppHealth.name == NAME, AppHealth.misconfigured.is_(True))
                       .values(misconfigured=False).execution_options(synchronize_session=False))
    db.session.commit()


def notice_id(since: datetime) -> str:
    """One notice per episode, whichever process noticed it first."""
    return hashlib.sha256(f"webhooks_unsubscribed:{iso(since)}".encode()).hexdigest()[:32]
