"""The audit trail: one function records who did what to which tenant, and how it ended."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.models import AuditEvent

log = logging.getLogger("crm_meta.audit")
# Keys whose values never reach the audit table or the log, whatever a caller passes.
SECRET_MARKERS = ("token", "secret", "password", "code_verifier", "signed_request", "proof")


def _clean(value, depth: int = 0):
    """Drop secret-looking keys at any depth; cut long strings and deep nesting."""
    if depth > 4:
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for k, v in value.items()
                if not any(marker in str(k).lower() for marker in SECRET_MARKERS)}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value[:50]]
    if isinstance(value, str):
        return value[:300]
    return value


@dataclass(frozen=True)
class Actor:
    """Who did something, and the address their request came from (when one did)."""

    name: str
    ip: str | None = None


def record(action: str, *, actor: str | Actor, tenant_id: int | None = None, outcome: str = "success",
           details: dict | None = None) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits; `record_now` commits)."""
    who = actor if isinstance(actor, Actor) else Actor(actor)
    event = AuditEvent(tenant_id=tenant_id, actor=who.name[:120], action=action, outcome=outcome,
                       ip=who.ip, details=_clean(details or {}))
    db.session.add(event)
    log.info("audit %s %s tenant=%s actor=%s", action, outcome, tenant_id, who.name,
             extra={"tenant_id": tenant_id, "actor": who.name, "action": action, "outcome": outcome})
    return event


def record_now(action: str, *, actor: str | Actor, tenant_id: int | None = None, outcome: str = "success",
               details: dict | None = None) -> AuditEvent:
    """Record an audit event and commit it at once (with whatever else the transaction holds)."""
    event = record(action, actor=actor, tenant_id=tenant_id, outcome=outcome, details=details)
    db.session.commit()
    return event


# -- reading the trail back: a tenant's admins (page) and the CRM's audit tab (internal API) ----
OUTCOMES = ("success", "failure", "refused", "denied")
# CRM Ventas' `system_events.severity` for each outcome (its audit tab filters on it).
SEVERITY = {"success": "info", "denied": "info", "refused": "warning", "failure": "error"}
MAX_PAGE = 100


def tenant_events(tenant_id: int, *, action: str | None = None, outcomes: list[str] | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[AuditEvent], int]:
    """One page of a tenant's events, newest first, and how many match in all."""
    query = db.select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if outcomes:
        query = query.where(AuditEvent.outcome.in_(outcomes))
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
                              .limit(max(1, min(limit, MAX_PAGE))).offset(max(0, offset))).all()
    return list(rows), total or 0


def tenant_actions(tenant_id: int) -> list[str]:
    """The actions a tenant's trail holds (the filter's choices)."""
    return list(db.session.scalars(db.select(AuditEvent.action).distinct()
                                   .where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.action)))


def as_system_event(event: AuditEvent) -> dict:
    """An event in the shape of CRM Ventas' `system_events` rows (its audit tab, "Sistema"):
    never the IP, and details were cleaned of secrets when recorded."""
    severity = SEVERITY.get(event.outcome, "warning")
    return {"id": event.id, "tenant_id": event.tenant_id, "event_type": event.action,
            "severity": severity, "message": f"{event.action} {event.outcome} ({event.actor})",
            "payload": {"actor": event.actor, "outcome": event.outcome, **(event.details or {})},
            "occurred_at": iso(event.created_at), "created_at": iso(event.created_at)}
