"""Watching the app-level webhook subscription: Meta unsubscribes an app whose callback keeps
failing (8 hours), and then no lead arrives, silently. A periodic check (the
`meta.webhooks.subscription` job) asks Meta what the app is subscribed to and keeps the verdict
as the `webhook_subscription` row of `app_health` (misconfigured: the subscription is lost or
changed), so that every process (the hub, /metrics) sees it. The process that makes a transition
tells operators once per episode: a log line, an audit event and, when lost, a notice."""

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
    the last verdict stands), ok or lost; `changed` when this run made the transition."""

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
        seen = subscription.observe(graph, config)
    except GraphError as exc:  # transient or not, it says nothing about the subscription
        log.warning("webhook subscription check: Meta failed (%s, trace %s); the last verdict stands",
                    exc.kind, exc.fbtrace_id)
        return Result("unknown")
    if seen.ok:
        return Result("ok", changed=app_health.report_healthy(now=now, app_id=graph.app_id, actor=ACTOR,
                                                              verdict=BACK))
    notices = _report_lost(now, seen.detail, graph.app_id, outbox)
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
              "the CRM until an operator runs `flask meta doctor --subscribe`", app_id, what)
    audit.record("meta.webhooks.unsubscribed", actor=ACTOR, outcome="failure",
                 details={"app_id": app_id, "found": what})
    notices = [notify.Notice(id=notice_id(now), event=NoticeEvent.WEBHOOKS_UNSUBSCRIBED, tenant_id=None,
                             status="unsubscribed", created_at=iso(now))]
    if outbox:
        notify.queue(notify.outbox_rows(notices, now))
    db.session.commit()
    return notices if outbox else []


def _forget() -> None:
    db.session.execute(update(AppHealth).where(AppHealth.name == NAME, AppHealth.misconfigured.is_(True))
                       .values(misconfigured=False).execution_options(synchronize_session=False))
    db.session.commit()


def notice_id(since: datetime) -> str:
    """One notice per episode, whichever process noticed it first."""
    return hashlib.sha256(f"webhooks_unsubscribed:{iso(since)}".encode()).hexdigest()[:32]
