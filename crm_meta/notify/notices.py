"""What a notification says: the notice, its webhook body and its e-mail text (no token, no secret)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from crm_meta.infra.timestamps import iso
from crm_meta.models.statuses import FAILING_STATUSES, NoticeEvent

EVENTS = {NoticeEvent.WARNING: "meta.connection.warning",
          NoticeEvent.STATUS_CHANGED: "meta.connection.status_changed",
          NoticeEvent.APP_MISCONFIGURED: "meta.app.misconfigured",
          NoticeEvent.CHANNEL_LOST: "meta.channel.lost",
          NoticeEvent.LEADS_ACCESS: "meta.connection.leads_refused",
          NoticeEvent.WEBHOOKS_UNSUBSCRIBED: "meta.webhooks.unsubscribed",
          NoticeEvent.WEBHOOKS_RESUBSCRIBED: "meta.webhooks.resubscribed"}
CHANNEL_TROUBLES = {"subscription_lost": "lost its webhook subscription at Meta",
                    "token_invalid": "has a Page token Meta no longer accepts"}


@dataclass(frozen=True)
class Notice:
    """One notification about one tenant's connection (no token, no secret)."""

    id: str
    event: NoticeEvent
    tenant_id: int | None
    status: str
    created_at: str
    kind: str | None = None  # token | data_access (warnings)
    days: int | None = None
    ends_at: str | None = None
    previous_status: str | None = None
    tenant_slug: str | None = None
    tenant_name: str | None = None
    recipients: tuple[str, ...] = ()
    asset_id: str | None = None  # channel_lost: the Page or WhatsApp account
    asset_name: str | None = None
    since: str | None = None  # webhooks_resubscribed: when the subscription was found lost

    @classmethod
    def create(cls, *, event: str, tenant_id: int | None, status: str, now: datetime,
               key: tuple | None = None, **fields) -> Notice:
        """A notice; with `key`, its id is derived from it, so that two checks deciding the same
        notice at once queue it once (the outbox keeps the first)."""
        notice_id = (hashlib.sha256(repr(_plain((event, tenant_id, *key))).encode()).hexdigest()[:32]
                     if key is not None else uuid.uuid4().hex)
        return cls(id=notice_id, event=event, tenant_id=tenant_id, status=status,
                   created_at=iso(now), **fields)

    def payload(self) -> dict:
        """The webhook's JSON body."""
        body = asdict(self)
        body.pop("recipients")
        body["event"] = EVENTS.get(self.event, self.event)
        body["tenant"] = {"id": body.pop("tenant_id"), "slug": body.pop("tenant_slug"),
                          "name": body.pop("tenant_name")}
        return body

    def subject(self) -> str:
        if self.event == NoticeEvent.LEADS_ACCESS:
            return "Meta refuses to give your leads to the CRM"
        if self.event == NoticeEvent.APP_MISCONFIGURED:
            return "The Meta app is misconfigured"
        if self.event == NoticeEvent.WEBHOOKS_UNSUBSCRIBED:
            return "Meta stopped sending leads to the CRM"
        if self.event == NoticeEvent.WEBHOOKS_RESUBSCRIBED:
            return "The Meta app's webhook subscription is restored"
        if self.event == NoticeEvent.CHANNEL_LOST:
            return f"A Meta channel stopped working: {self.asset_name or self.asset_id}"
        if self.event == NoticeEvent.WARNING:
            what = "Meta connection" if self.kind == "token" else "Meta data access"
            return f"Your {what} ends in {self.days} day{'s' if self.days != 1 else ''}"
        if self.status in FAILING_STATUSES:
            return "Your Meta connection needs to be reconnected"
        return "Your Meta connection works again"

    def text(self) -> str:
        if self.event == NoticeEvent.APP_MISCONFIGURED:
            return (f"{self.subject()}: Meta refuses the app's own credential (for example, the app "
                    "secret was reset at Meta). Connection checks are paused and no tenant's "
                    "connection is marked. An operator must fix META_APP_ID / META_APP_SECRET; "
                    "`flask meta doctor` names the cause.\n")
        if self.event == NoticeEvent.WEBHOOKS_UNSUBSCRIBED:
            return (f"{self.subject()}: the Meta app's webhook subscription (Page leadgen events to "
                    "this service) is gone or changed, for example because Meta unsubscribed the app "
                    "after its webhook failed for hours. No new lead reaches the CRM until it is "
                    "subscribed again: by this service on its own when it can (another notice then "
                    "says so), otherwise an operator must run `flask meta doctor --subscribe`.\n")
        if self.event == NoticeEvent.WEBHOOKS_RESUBSCRIBED:
            return (f"{self.subject()}: this service found the Meta app's webhook subscription lost at "
                    f"{self.since} and subscribed it again on its own. Leads Meta sent while it was "
                    "off never arrived; an operator can read them back, for each tenant, with "
                    f"`flask leads backfill --tenant <slug> --since {self.since}` (earlier if the webhook "
                    "was failing before: Meta unsubscribes an app after hours of failures). Meta also "
                    "asks that each Page be subscribed to the app again: the keep-alive checks every "
                    "chosen Page's subscription and warns on its channel when one is gone; choosing "
                    "the channel again in the CRM subscribes it.\n")
        name = self.tenant_name or self.tenant_slug or f"tenant {self.tenant_id}"
        lines = [f"{self.subject()} ({name})."]
        if self.event == NoticeEvent.LEADS_ACCESS:
            lines.append("The Page's Leads Access Manager must give this app access to its leads, "
                         "and the connection needs leads_retrieval, ads_management, pages_show_list, "
                         "pages_read_engagement and pages_manage_ads. New leads wait meanwhile.")
            return "\n\n".join(lines) + "\n"
        if self.event == NoticeEvent.CHANNEL_LOST:
            what = CHANNEL_TROUBLES.get(self.kind or "", "stopped working")
            lines.append(f"{self.asset_name or self.asset_id} {what}: the CRM receives no messages "
                         "from it. An admin can choose it again in Marketing > Meta channels, or "
                         "reconnect Meta.")
            return "\n\n".join(lines) + "\n"
        if self.event == NoticeEvent.WARNING:
            lines.append(f"It ends at {self.ends_at}. An admin can renew it in one click from "
                         "Marketing > Meta connection, before it stops working.")
        else:
            lines.append(f"Status: {self.status} (was {self.previous_status}).")
            if self.status in FAILING_STATUSES:
                lines.append("An admin can reconnect it from Marketing > Meta connection.")
        return "\n\n".join(lines) + "\n"


def _plain(values: tuple) -> tuple:
    """Enum members as their plain values: a notice's id must not change with their repr."""
    return tuple(str(value) if isinstance(value, str) else value for value in values)
