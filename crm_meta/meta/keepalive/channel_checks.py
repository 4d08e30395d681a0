"""The keep-alive's look at the channels: each subscribed Page (`GET /{page-id}/subscribed_apps`
with its own token: is the token alive, is our app still subscribed?) and each subscribed
WhatsApp account. A new trouble is recorded on the channel and warned once (banner, webhook,
e-mail); it clears when a check finds the channel well again, or when the admin chooses it again
or reconnects (crm_meta.meta.channels). Meta is asked outside any transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from crm_meta import notify
from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.meta import channels, subscriptions
from crm_meta.meta.errors import GraphError
from crm_meta.meta.keepalive import deadlines
from crm_meta.models import MetaChannel, MetaConnection, audit
from crm_meta.models.statuses import FAILING_STATUSES, NoticeEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Look:
    channel_id: int
    trouble: str | None  # None: well; subscription_lost; token_invalid
    known: bool = True  # False: Meta could not be asked (transient): nothing is changed


@dataclass(frozen=True)
class _Channel:
    """A channel's fields a look needs, copied out of the session."""

    id: int
    tenant_id: int
    asset_type: str
    asset_id: str
    token_ciphertext: str | None


@dataclass(frozen=True)
class _Row:
    """The connection's token, copied out of the session."""

    tenant_id: int
    token_ciphertext: str | None


def _snapshot(channel: MetaChannel, row: MetaConnection) -> tuple[_Channel, _Row]:
    """What a look needs, copied out of the session (it is closed while Meta answers)."""
    return (_Channel(channel.id, channel.tenant_id, channel.asset_type, channel.asset_id,
                     channel.token_ciphertext),
            _Row(row.tenant_id, row.token_ciphertext))


def _watched(tenant_ids: list[int]) -> list[tuple[MetaChannel, MetaConnection]]:
    query = (db.select(MetaChannel, MetaConnection)
             .join(MetaConnection, MetaChannel.connection_id == MetaConnection.id)
             .where(MetaChannel.tenant_id.in_(tenant_ids),
                    MetaChannel.asset_type.in_(("page", "waba"))))
    return [(c, row) for c, row in db.session.execute(query)
            if (c.subscribed or c.trouble) and row.status not in FAILING_STATUSES]


def _look(parts: channels.Parts, channel: _Channel, row: _Row) -> Look:
    try:
        if channel.asset_type == "page":
            if not channel.token_ciphertext:
                return Look(channel.id, "token_invalid")
            token = channels.read_page_token(parts.store, channel)
            return Look(channel.id, subscriptions.check_page(parts.graph, channel.asset_id, token))
        body = parts.graph.get(f"{channel.asset_id}/subscribed_apps", token=parts.store.read(row))
        apps = body.get("data") if isinstance(body, dict) else None
        return Look(channel.id, None if apps else "subscription_lost")
    except (GraphError, CryptoError) as exc:
        log.warning("channel check of %s failed: %s", channel.asset_id, type(exc).__name__)
        return Look(channel.id, None, known=False)


def check(parts: channels.Parts, tenant_ids: list[int], *, outbox: bool) -> list[notify.Notice]:
    """Check the channels of these tenants; returns the notices to dispatch after the commit."""
    if not tenant_ids:
        return []
    watched = _watched(sorted(set(tenant_ids)))
    copies = [_snapshot(c, row) for c, row in watched]
    db.session.rollback()  # read, then asked Meta with no transaction open
    looks = [_look(parts, c, row) for c, row in copies]
    # The tenants and their admins, for the notices: one load for the whole check, not per channel.
    troubled = {c.tenant_id for (c, _row), look in zip(copies, looks, strict=True) if look.trouble}
    contacts = deadlines.contacts(troubled)
    notices = []
    for (copy, _row), look in zip(copies, looks, strict=True):
        channel_id = copy.id
        if not look.known:
            continue
        channel = db.session.get(MetaChannel, channel_id, with_for_update=True)
        if channel is None:
            continue
        notices += _record(channel, look.trouble, parts.now, contacts.get(channel.tenant_id))
    if outbox and notices:
        notify.queue(notify.outbox_rows(notices, parts.now))
    db.session.commit()
    return notices


def _record(channel: MetaChannel, trouble: str | None, now: datetime,
            contact: deadlines.Contact | None) -> list[notify.Notice]:
    channel.checked_at = now
    if trouble is None:
        channel.trouble, channel.trouble_warned = None, False
        return []
    channel.trouble = trouble
    if trouble == "subscription_lost":
        channel.subscribed_fields = []  # gone at Meta: choosing it again subscribes it again
    if channel.trouble_warned:
        return []
    channel.trouble_warned = True
    notice = notify.Notice.create(
        event=NoticeEvent.CHANNEL_LOST, tenant_id=channel.tenant_id, status="connected", now=now,
        key=(channel.asset_id, trouble, channel.checked_at.isoformat()), kind=trouble,
        asset_id=channel.asset_id, asset_name=channel.asset_name,
        tenant_slug=contact.slug if contact else None, tenant_name=contact.name if contact else None,
        recipients=contact.admins if contact else ())
    audit.record("meta.keepalive.channel_lost", actor="keepalive", tenant_id=channel.tenant_id,
                 outcome="failure", details={"asset_id": channel.asset_id, "trouble": trouble,
                                             "notice": notice.id})
    return [notice]
