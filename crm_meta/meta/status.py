"""A connection's status, derived from stored facts and the clock (no Meta call)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from crm_meta.models.meta_connection import STATUS_COLUMNS, MetaConnection
from crm_meta.models.statuses import FAILING_STATUSES, Status

EXPIRING_WITHIN = timedelta(days=7)
# Stored health set by live checks; these win over anything derived from dates.


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """The stored facts a status answer needs, named as MetaConnection's columns: small ones only,
    never the token or the discovered assets, so they can be read with the caller's tenant."""

    status: str
    expires_at: datetime | None
    data_access_expires_at: datetime | None
    throttled_until: datetime | None
    last_checked_at: datetime | None
    scopes: list[str] | None
    declined_scopes: list[str] | None
    login_config_id: str | None
    meta_user_name: str | None
    selected_business_id: str | None
    selected_ad_account_id: str | None
    selected_ad_account_name: str | None
    business_count: int | None
    ad_account_count: int | None
    discovery_pending_since: datetime | None  # a connect's discovery still being finished
    leads_access: str | None
    leads_access_error: str | None
    leads_access_at: datetime | None


STATUS_FIELDS = tuple(f.name for f in fields(ConnectionStatus))
# The triggers watch the model's list: they must agree.
if STATUS_FIELDS != STATUS_COLUMNS:
    raise RuntimeError("ConnectionStatus and MetaConnection's STATUS_COLUMNS differ")


def missing_scopes(row: MetaConnection | None, required: Sequence[str]) -> list[str]:
    """Required scopes the user did not grant (a Login-for-Business token brings its own)."""
    if row is None:
        return []
    if row.login_config_id:
        return sorted(set(row.declined_scopes or []))
    granted = set(row.scopes or [])
    return [scope for scope in required if scope not in granted]


def effective_status(row: MetaConnection | None, now: datetime, required: Sequence[str]) -> str:
    """One of the contract's states; `disconnected` when there is no connection."""
    if row is None:
        return "disconnected"
    if row.status in FAILING_STATUSES:
        return str(row.status)
    if row.expires_at is not None and now >= row.expires_at:
        return Status.EXPIRED
    if row.data_access_expires_at is not None and now >= row.data_access_expires_at:
        return Status.NEEDS_REAUTH
    if row.status == Status.THROTTLED and row.throttled_until and now < row.throttled_until:
        return Status.THROTTLED
    if missing_scopes(row, required):
        return Status.PARTIAL
    if ends_within(row, now, EXPIRING_WITHIN):
        return Status.EXPIRING
    return Status.CONNECTED


def ends_within(row: MetaConnection, now: datetime, window: timedelta) -> bool:
    """Whether the token or its data access ends within `window` from now."""
    return any(
        moment is not None and moment - now <= window
        for moment in (row.expires_at, row.data_access_expires_at)
    )


def days_left(row: MetaConnection | None, now: datetime) -> int | None:
    """Whole days until the token ends (None for a token that never expires)."""
    if row is None or row.expires_at is None:
        return None
    left: timedelta = row.expires_at - now
    return max(0, left.days)

