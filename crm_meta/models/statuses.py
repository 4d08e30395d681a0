"""A connection's statuses and how the rules group them, in one place below every layer that
reads them (the domain, the notices, the API's payloads). Values are the stored strings, the
API's JSON and the metrics' labels: a member is equal to its value, so rows and JSON are
unchanged (no migration)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    CONNECTED = "connected"
    EXPIRING = "expiring"
    PARTIAL = "partial"
    THROTTLED = "throttled"
    NEEDS_REAUTH = "needs_reauth"
    EXPIRED = "expired"
    REVOKED = "revoked"


# The token no longer works: the tenant must reconnect. A check cannot clear these by itself
# (they are sticky); only a new token through Meta's dialog does.
FAILING_STATUSES = frozenset({Status.NEEDS_REAUTH, Status.EXPIRED, Status.REVOKED})
# States the user can only fix by passing through Meta's dialog again.
NEEDS_RECONNECT = FAILING_STATUSES | {Status.EXPIRING}
# Meta's own verdict that the token is gone for good: looked at rarely.
DEAD = frozenset({Status.REVOKED, Status.EXPIRED})


class NoticeEvent(StrEnum):
    """What a tenant notice is about (crm_meta.notify)."""

    WARNING = "warning"
    STATUS_CHANGED = "status_changed"
    APP_MISCONFIGURED = "app_misconfigured"  # app-wide: no tenant
    CHANNEL_LOST = "channel_lost"  # a Page or WhatsApp account stopped working
    LEADS_ACCESS = "leads_access"  # Meta refuses to give the tenant's leads
    WEBHOOKS_UNSUBSCRIBED = "webhooks_unsubscribed"  # app-wide: Meta dropped the app's leadgen webhooks
    WEBHOOKS_RESUBSCRIBED = "webhooks_resubscribed"  # app-wide: the service subscribed them again
