"""The audit trail: one function records who did what to which tenant, and how it ended."""

from __future__ import annotations

import logging

from crm_meta.infra.database import db
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


def record(action: str, *, actor: str, tenant_id: int | None = None, outcome: str = "success",
           ip: str | None = None, details: dict | None = None, commit: bool = False) -> AuditEvent:
    """Add an audit event to the current transaction (or commit it at once)."""
    event = AuditEvent(tenant_id=tenant_id, actor=actor[:120], action=action, outcome=outcome,
                       ip=ip, details=_clean(details or {}))
    db.session.add(event)
    if commit:
        db.session.commit()
    log.info("audit %s %s tenant=%s actor=%s", action, outcome, tenant_id, actor,
             extra={"tenant_id": tenant_id, "actor": actor, "action": action, "outcome": outcome})
    return event
