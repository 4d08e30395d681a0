"""Which warnings a check makes due: each deadline (the token's end, the data access's end)
warned 14, 7 and 1 days ahead, once per deadline; and one notice each time a connection enters
or leaves a failing state. What is due is marked on the row (`warnings_sent`), so it is sent once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from crm_meta import notify
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.meta.types import JsonObject
from crm_meta.models import MetaConnection, Tenant, User, audit
from crm_meta.models.statuses import FAILING_STATUSES, NoticeEvent

WARN_DAYS = (14, 7, 1)  # warnings ahead of the token's or the data access's end


@dataclass(frozen=True)
class Contact:
    """Who a tenant's notices name and reach: its slug and name, its admins' e-mails."""

    slug: str
    name: str
    admins: tuple[str, ...] = ()


def contacts(tenant_ids: Iterable[int]) -> dict[int, Contact]:
    """The contacts of these tenants in one query (a batch's single load): a tenant that no
    longer exists is absent."""
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    found = db.session.execute(
        db.select(Tenant.id, Tenant.slug, Tenant.name, User.email).select_from(Tenant)
        .outerjoin(User, (User.tenant_id == Tenant.id) & (User.role == "admin"))
        .where(Tenant.id.in_(ids)).order_by(Tenant.id, User.id)).all()
    slugs: dict[int, tuple[str, str]] = {}
    admins: dict[int, list[str]] = {}
    for tenant_id, slug, name, email in found:
        slugs[tenant_id] = (slug, name)
        if email is not None:
            admins.setdefault(tenant_id, []).append(email)
    return {t: Contact(slug, name, tuple(admins.get(t, ()))) for t, (slug, name) in slugs.items()}


def due_notices(row: MetaConnection, now: datetime, change: tuple[str, str], *, dry_run: bool,
                contact: Contact | None) -> list[notify.Notice]:
    """Warnings due now (each once per deadline) and a notice on entering/leaving a failing state.
    `change`: the status before and after the check; `contact`: the tenant's, loaded by the
    caller (None: unknown tenant, or a dry run)."""
    before, after = change
    sent = dict(row.warnings_sent or {})
    due: list[JsonObject] = []
    if after not in FAILING_STATUSES:
        for kind, end in (("token", row.expires_at), ("data_access", row.data_access_expires_at)):
            due.extend(_deadline_warnings(sent, kind, end, now))
    notified_state = sent.get("state")  # the failing state last announced; None: healthy
    current = after if after in FAILING_STATUSES else None
    if current != notified_state:
        # Each announced change is an episode: two checks that decide the same change at once
        # read the same episode number, so their notices share one id and are queued once.
        sent["episode"] = int(sent.get("episode") or 0) + 1
        due.append({"event": NoticeEvent.STATUS_CHANGED, "previous_status": notified_state or before,
                    "key": (after, row.token_generation or 0, sent["episode"])})
        sent["state"] = current
    if not due:
        return []
    row.warnings_sent = sent  # a new dict: the JSON column notices the change
    tenant = None if dry_run else contact
    recipients = tenant.admins if tenant else ()
    notices = []
    for item in due:
        key = item.get("key") or (item.get("kind"), item.get("days"), item.get("ends_at"),
                                  row.token_generation or 0)
        notice = notify.Notice.create(event=item["event"], tenant_id=row.tenant_id, status=after,
                               key=key, kind=item.get("kind"), days=item.get("days"),
                               ends_at=item.get("ends_at"), previous_status=item.get("previous_status"),
                               now=now, tenant_slug=tenant.slug if tenant else None,
                               tenant_name=tenant.name if tenant else None, recipients=recipients)
        if not dry_run:
            audit.record(f"meta.keepalive.{item['event']}", actor="keepalive",
                         tenant_id=row.tenant_id,
                         outcome="failure" if after in FAILING_STATUSES else "success",
                         details={"notice": notice.id, "kind": notice.kind, "days": notice.days,
                                  "ends_at": notice.ends_at, "status": after,
                                  "previous_status": notice.previous_status})
        notices.append(notice)
    return notices


def _deadline_warnings(sent: JsonObject, kind: str, end: datetime | None, now: datetime) -> list[JsonObject]:
    """The most urgent threshold crossed for this deadline, unless already sent for it."""
    if end is None or end <= now:
        return []
    crossed = [d for d in WARN_DAYS if end - now <= timedelta(days=d)]
    if not crossed:
        return []
    stamp = iso(end)
    urgent = min(crossed)
    fresh = sent.get(f"{kind}:{urgent}", {}).get("ends_at") != stamp
    for days in crossed:  # thresholds jumped over are marked, so they never fire late
        key = f"{kind}:{days}"
        if sent.get(key, {}).get("ends_at") != stamp:
            sent[key] = {"ends_at": stamp, "at": iso(now), "sent": days == urgent}
    if not fresh:
        return []
    return [{"event": NoticeEvent.WARNING, "kind": kind, "days": urgent, "ends_at": stamp}]

