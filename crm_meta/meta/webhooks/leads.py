"""Reading a lead (`GET /{leadgen-id}`), what Meta's refusals say about the connection's lead
access, and the backfill of a tenant's forms (`/{form-id}/leads` filtered on time_created)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime

from crm_meta import notify
from crm_meta.infra import metrics
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.meta.errors import GraphError, PermissionMissingError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.types import JsonObject
from crm_meta.models import MetaConnection
from crm_meta.models.statuses import NoticeEvent
from crm_meta.notify.notices import Notice

log = logging.getLogger(__name__)
LEAD_FIELDS = "created_time,field_data,ad_id,adset_id,campaign_id,form_id,is_organic,platform"
# What reading every field of a lead takes (Meta's "Retrieving Leads"); shown when refused.
LEAD_SCOPES = ("leads_retrieval", "ads_management", "pages_show_list", "pages_read_engagement",
               "pages_manage_ads")
PAGE_SIZE = 100


def access_summary(row: MetaConnection) -> JsonObject:
    """What the status answers say of a connection's lead access: the last lead read's verdict
    (`ok`, `blocked`, `permission_missing`; None before the first), Meta's words, when, and the
    lead-reading permissions the grant lacks."""
    return {"state": row.leads_access, "error": row.leads_access_error,
            "checked_at": iso(row.leads_access_at),
            "missing_scopes": [s for s in LEAD_SCOPES if s not in (row.scopes or [])]}


class LeadAccessRefused(Exception):
    """Meta refused to give this connection the lead: `state` says why (no retry will help
    until the tenant's admin fixes it)."""

    def __init__(self, state: str, message: str):
        super().__init__(message)
        self.state = state


def refusal_state(exc: GraphError) -> str | None:
    """`permission_missing` (a permission such as leads_retrieval not granted), `blocked` (the
    Page's Leads Access Manager: Meta documents no error of its own; inferred as a permission
    error naming leads access), or None when the refusal is not about lead access (a 100/33
    "does not exist, cannot be loaded due to missing permissions" is also what a deleted lead
    gets: retried, then dead-lettered, never a verdict on the connection)."""
    text = str(exc).lower()
    if isinstance(exc, PermissionMissingError):
        return "blocked" if "leads access" in text or "lead access" in text else "permission_missing"
    return None


def read_lead(graph: GraphClient, token: str, leadgen_id: str) -> JsonObject:
    """The lead's fields, through the one Graph client, after the governor's say-so."""
    if graph.governor is not None:
        graph.governor.check([])  # the app's budget: held back while Meta says so
    try:
        return graph.get(leadgen_id, token=token, fields=LEAD_FIELDS)
    except GraphError as exc:
        metrics.WEBHOOK_LEAD_READS_FAILED.labels(reason=exc.kind).inc()
        state = refusal_state(exc)
        if state is not None:
            raise LeadAccessRefused(state, exc.message) from None
        raise


def record_access(tenant_id: int, state: str, error: str | None, now: datetime) -> bool:
    """Store the connection's lead access; on a change to a refusal, queue a notice in the same
    transaction. Returns whether a notice was queued."""
    row = db.session.scalar(db.select(MetaConnection).where(MetaConnection.tenant_id == tenant_id)
                            .with_for_update())
    if row is None:
        db.session.rollback()
        return False
    changed = row.leads_access != state
    row.leads_access, row.leads_access_at = state, now
    row.leads_access_error = (error or "")[:500] or None
    queued = False
    if changed and state != "ok":
        notice = Notice.create(event=NoticeEvent.LEADS_ACCESS, tenant_id=tenant_id,
                               status=row.status, now=now, kind=state,
                               key=("leads_access", state, row.token_generation))
        queued = bool(notify.queue(notify.outbox_rows([notice], now)))
        log.warning("tenant %s: Meta refuses its leads (%s)", tenant_id, state)
    db.session.commit()
    return queued


def backfill(graph: GraphClient, tokens: dict[str, str], since: datetime) -> list[JsonObject]:
    """Every lead created after `since` on the forms of these Pages (page id -> the token to
    read it with), as leadgen events' data."""
    found: list[JsonObject] = []
    rule = json.dumps([{"field": "time_created", "operator": "GREATER_THAN",
                        "value": int(since.timestamp())}])
    for page_id, token in tokens.items():
        forms = _walk(graph, token, f"{page_id}/leadgen_forms", {"fields": "id"})
        for form in forms:
            for lead in _walk(graph, token, f"{form['id']}/leads",
                              {"fields": f"id,{LEAD_FIELDS}", "filtering": rule}):
                found.append({"leadgen_id": str(lead["id"]), "page_id": page_id,
                              "form_id": str(form["id"]), "ad_id": str(lead.get("ad_id") or ""),
                              "created_time": lead.get("created_time"), "lead": lead})
    return found


def _walk(graph: GraphClient, token: str, path: str, params: JsonObject) -> list[JsonObject]:
    items: list[JsonObject] = []
    page = graph.get(path, token=token, limit=PAGE_SIZE, **params)
    while True:
        items.extend(page.get("data", []))
        following = graph.next_page_params(page)
        if not following:
            return items
        next_path, next_params = following
        page = graph.get(next_path, token=token, **next_params)


def summary(counts: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing"
