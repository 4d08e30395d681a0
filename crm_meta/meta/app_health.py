"""The Meta app's own health: when Meta refuses the app's credential, the whole app is
misconfigured. Stored in the database so every process (hub, /metrics, sweeps) sees it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, not_, update

from crm_meta import notify
from crm_meta.infra.database import db, rowcount
from crm_meta.infra.timestamps import iso
from crm_meta.infra.upsert import insert_ignore
from crm_meta.meta.errors import GraphError
from crm_meta.models import AppHealth, audit
from crm_meta.models.statuses import NoticeEvent

log = logging.getLogger(__name__)
NAME = "meta_app"


def current(credential: str) -> AppHealth | None:
    """The stored verdict when it says the app (with this credential) is misconfigured."""
    row = db.session.get(AppHealth, NAME)
    if row is None or not row.misconfigured or row.credential != credential:
        return None
    return row


def is_misconfigured(credential: str) -> bool:
    return current(credential) is not None


class TheApp(Protocol):
    """The Meta app a verdict is about (the Graph client is one): its id, and a fingerprint of
    its credential (never the secret)."""

    @property
    def app_id(self) -> str: ...

    @property
    def credential(self) -> str: ...


def report_misconfigured(exc: GraphError, *, now: datetime, app: TheApp, outbox: bool,
                         actor: str = "keepalive") -> list[notify.Notice]:
    """Record the verdict; the process that makes the transition tells operators once (log
    line, audit event, notice). Commits. Returns the notices queued (none unless this call
    made the transition), for the caller to dispatch."""
    credential, app_id = app.credential, app.app_id
    insert_ignore(AppHealth, [{"name": NAME, "misconfigured": False}])
    code = f"{exc.code}/{exc.subcode or ''}".rstrip("/") if exc.code else exc.kind
    won = rowcount(db.session.execute(
        update(AppHealth)
        .where(AppHealth.name == NAME,
               not_(and_(AppHealth.misconfigured.is_(True), AppHealth.credential == credential)))
        .values(misconfigured=True, credential=credential, since=now, checked_at=now,
                error_code=code[:64], error_message=str(exc.message)[:500])
        .execution_options(synchronize_session=False))) == 1
    if not won:
        db.session.execute(update(AppHealth).where(AppHealth.name == NAME)
                           .values(checked_at=now).execution_options(synchronize_session=False))
        db.session.commit()
        return []
    log.error("the Meta app %s is misconfigured: Meta refuses its credential (code %s, trace %s); "
              "checks are paused and no connection is marked; fix META_APP_ID/META_APP_SECRET",
              app_id, code, exc.fbtrace_id)
    audit.record("meta.app.misconfigured", actor=actor, outcome="failure",
                 details={"app_id": app_id, "error_code": code, "fbtrace_id": exc.fbtrace_id})
    notices = [notify.Notice(id=notice_id(credential, now), event=NoticeEvent.APP_MISCONFIGURED,
                             tenant_id=None, status="misconfigured", created_at=iso(now))]
    if outbox:
        notify.queue(notify.outbox_rows(notices, now))
    db.session.commit()
    return notices if outbox else []


@dataclass(frozen=True)
class Verdict:
    """One stored verdict about the Meta app (an `app_health` row) and what clearing it says:
    its audit event and its log line (`%s`: the app's id)."""

    name: str
    recovered: str
    said: str


META_APP = Verdict(NAME, "meta.app.recovered", "the Meta app %s accepts its credential again; checks resume")


def report_healthy(*, now: datetime, app_id: str, credential: str | None = None, actor: str = "keepalive",
                   verdict: Verdict = META_APP) -> bool:
    """Meta accepted the app: clear a stored verdict (the credential's own, when one is given),
    its error with it; the process that clears it tells operators (log line, audit event).
    Commits when it did."""
    match = [AppHealth.name == verdict.name, AppHealth.misconfigured.is_(True)]
    if credential is not None:
        match.append(AppHealth.credential == credential)
    cleared = rowcount(db.session.execute(
        update(AppHealth).where(*match)
        .values(misconfigured=False, checked_at=now, error_code=None, error_message=None)
        .execution_options(synchronize_session=False))) == 1
    if cleared:
        log.warning(verdict.said, app_id)
        audit.record(verdict.recovered, actor=actor, details={"app_id": app_id})
        db.session.commit()
    return cleared


def notice_id(credential: str, since: datetime) -> str:
    """One notice per episode, whichever process noticed it first."""
    return hashlib.sha256(f"app_misconfigured:{credential}:{iso(since)}".encode()).hexdigest()[:32]

