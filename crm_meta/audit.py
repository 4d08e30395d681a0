"""The audit trail: one function records who did what to which tenant, and how it ended."""

from __future__ import annotations

import logging

from crm_meta.extensions import db
from crm_meta.models import AuditEvent

log = logging.getLogger("crm_meta.audit")
# Keys whose values never reach the audit table or the log, whatever a caller passes.
SECRET_MARKERS = ("token", "secret", "password", "code_verifier", "signed_request", "proof")


def _clean(details: dict | None) -> dict:
    clean = {}
    for key, value in (details or {}).items():
        if any(marker in key.lower() for marker in SECRET_MARKERS):
            continue
        if isinstance(value, str):
            value = value[:300]
        clean[key] = value
    return clean


def record(action: str, *, actor: str, tenant_id: int | None = None, outcome: str = "success",
           ip: str | None = None, details: dict | None = None, commit: bool = False) -> AuditEvent:
    """Add an audit event to the current transaction (or commit it at once)."""
    event = AuditEvent(tenant_id=tenant_id, actor=actor[:120], action=action, outcome=outcome,
                       ip=ip, details=_clean(details))
    db.session.add(event)
    if commit:
        db.session.commit()
    log.info("audit %s %s tenant=%s actor=%s", action, outcome, tenant_id, actor,
             extra={"tenant_id": tenant_id, "actor": actor, "action": action, "outcome": outcome})
    return event
