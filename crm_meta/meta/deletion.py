"""Meta's deauthorize and data-deletion callbacks: the rows they delete, the request they leave.

The callbacks' views verify the signed request and shape the answer; the work is here."""

from __future__ import annotations

import secrets

from crm_meta.infra.database import db
from crm_meta.meta.connections import drop_meta_user
from crm_meta.models import DataDeletionRequest, audit
from crm_meta.models.types import utcnow


def deauthorize(meta_user_id: str) -> list[int]:
    """Delete the Meta user's connections; the tenants they belonged to (audited either way)."""
    tenants = drop_meta_user(meta_user_id=meta_user_id, action="meta.deauthorize")
    if not tenants:
        audit.record("meta.deauthorize", actor="meta", outcome="no_connection")
    db.session.commit()
    return tenants


def delete_data(meta_user_id: str) -> str:
    """Delete the Meta user's connections and forget its id; the confirmation code of the
    (completed) deletion request, for Meta's status URL."""
    tenants = drop_meta_user(meta_user_id=meta_user_id, action="meta.data_deletion", forget=True)
    code = secrets.token_hex(8)
    db.session.add(DataDeletionRequest(confirmation_code=code, status="completed",
                                       connections_deleted=len(tenants), completed_at=utcnow()))
    audit.record("meta.data_deletion", actor="meta", details={"confirmation_code": code,
                                                              "connections": len(tenants)})
    db.session.commit()
    return code


def request_of(confirmation_code: str) -> DataDeletionRequest | None:
    """The deletion request with this code; None for an unknown or malformed code."""
    if not (confirmation_code.isalnum() and len(confirmation_code) <= 32):
        return None
    return db.session.get(DataDeletionRequest, confirmation_code)
