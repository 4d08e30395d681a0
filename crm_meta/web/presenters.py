"""Turn stored connection facts into what the banner and wizard show (no Flask request here)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from math import ceil

from flask_babel import lazy_gettext as _l

# What each permission lets the CRM do, and why it is asked for (step 1 and "missing" lists).
PERMISSIONS = {
    "ads_management": (
        _l("Manage your ads"),
        _l("To read your ad accounts and keep the CRM's campaigns in sync with Meta."),
    ),
    "ads_read": (
        _l("Read your ads"),
        _l("To show how your campaigns perform next to your sales."),
    ),
    "business_management": (
        _l("Access your Business Manager"),
        _l("To list your business portfolios and the ad accounts they own."),
    ),
    "whatsapp_business_management": (
        _l("Manage your WhatsApp Business accounts"),
        _l("To send approved WhatsApp template messages to your customers from the CRM."),
    ),
    "whatsapp_business_messaging": (
        _l("Send WhatsApp messages"),
        _l("To answer your customers on WhatsApp from the CRM."),
    ),
    "pages_show_list": (
        _l("See the Pages you manage"),
        _l("To let you pick the Facebook Page your leads come from."),
    ),
    "pages_read_engagement": (
        _l("Read your Pages"),
        _l("To link leads and conversations to the right Facebook Page."),
    ),
    "read_insights": (
        _l("Read insights"),
        _l("To show campaign and Page metrics in your CRM reports."),
    ),
    "leads_retrieval": (
        _l("Retrieve leads from lead ads"),
        _l("To bring the leads from your lead ads into the CRM automatically."),
    ),
}
OTHER_PERMISSION = _l("Requested by your CRM's configuration.")


@dataclass(frozen=True)
class Permission:
    scope: str
    title: str
    why: str


def permissions(scopes: list[str]) -> list[Permission]:
    """Each scope with its translated title and reason (unknown scopes get a generic reason)."""
    result = []
    for scope in scopes:
        title, why = PERMISSIONS.get(scope, (scope, OTHER_PERMISSION))
        result.append(Permission(scope, str(title), str(why)))
    return result


# The banner: one tone, title and explanation per contract status.
TONES = {"disconnected": "neutral", "connected": "ok", "expiring": "warn", "partial": "warn",
         "throttled": "info", "needs_reauth": "danger", "expired": "danger", "revoked": "danger"}
TITLES = {
    "disconnected": _l("Meta is not connected"),
    "connected": _l("Meta is connected"),
    "expiring": _l("Your Meta connection ends soon"),
    "partial": _l("Some Meta permissions are missing"),
    "throttled": _l("Meta asked us to slow down"),
    "needs_reauth": _l("Meta needs you to log in again"),
    "expired": _l("Your Meta connection has expired"),
    "revoked": _l("Access was removed at Meta"),
}
STATUS_LABELS = {
    "disconnected": _l("Not connected"),
    "connected": _l("Connected"),
    "expiring": _l("Ending soon"),
    "partial": _l("Missing permissions"),
    "throttled": _l("Paused for a moment"),
    "needs_reauth": _l("Needs reconnection"),
    "expired": _l("Expired"),
    "revoked": _l("Access removed"),
}
# Meta's ad account states (AdAccount.status) in words.
ACCOUNT_STATUSES = {
    "ACTIVE": _l("Active"),
    "DISABLED": _l("Disabled"),
    "UNSETTLED": _l("Unpaid balance"),
    "PENDING_RISK_REVIEW": _l("Under review by Meta"),
    "PENDING_SETTLEMENT": _l("Payment pending"),
    "IN_GRACE_PERIOD": _l("Grace period"),
    "PENDING_CLOSURE": _l("Closing"),
    "CLOSED": _l("Closed"),
    "UNKNOWN": _l("Unknown"),
}


def account_status(status: str | None) -> str:
    return str(ACCOUNT_STATUSES.get(status or "UNKNOWN", ACCOUNT_STATUSES["UNKNOWN"]))


@dataclass
class Banner:
    """Everything the banner template needs; actions are names the template knows."""

    status: str
    tone: str
    title: str
    label: str
    row: object | None = None
    payload: dict = field(default_factory=dict)
    business_name: str | None = None
    missing: list[Permission] = field(default_factory=list)
    data_access_ended: bool = False
    ends_at: object | None = None  # the nearer of token expiry and data-access expiry
    ends_in_days: int | None = None
    actions: list[str] = field(default_factory=list)
    # Names of the businesses Meta's grant covers, when the grant names them (granular scopes).
    granted_businesses: list[str] = field(default_factory=list)


ADMIN_ACTIONS = {
    "disconnected": ["connect"],
    "connected": ["test", "choose", "disconnect"],
    "expiring": ["reconnect", "test", "choose", "disconnect"],
    "partial": ["grant", "test", "choose", "disconnect"],
    "throttled": ["choose", "disconnect"],
    "needs_reauth": ["reconnect", "disconnect"],
    "expired": ["reconnect", "disconnect"],
    "revoked": ["reconnect", "disconnect"],
}
MEMBER_ACTIONS = {status: (["test"] if "test" in actions else [])
                  for status, actions in ADMIN_ACTIONS.items()}


def business_name(row, business_id: str | None) -> str | None:
    if row is None or not business_id:
        return None
    for business in row.business_managers or []:
        if business["id"] == business_id:
            return business["name"]
    return None


def granted_businesses(row) -> list[str]:
    """The businesses business_management was granted for (debug_token's granular_scopes):
    a user may grant only some of them. Names where discovered, ids otherwise."""
    if row is None:
        return []
    names = {b["id"]: b["name"] for b in row.business_managers or []}
    for entry in row.granular_scopes or []:
        if entry.get("scope") == "business_management" and entry.get("target_ids"):
            return [names.get(str(t), str(t)) for t in entry["target_ids"]]
    return []


def banner(row, payload: dict, now, *, is_admin: bool) -> Banner:
    """The banner for a status payload (from `payloads.status_payload`)."""
    status = payload["status"]
    actions = (ADMIN_ACTIONS if is_admin else MEMBER_ACTIONS).get(status, [])
    selected = payload.get("selected_ad_account") or {}
    ended = bool(row is not None and row.data_access_expires_at is not None
                 and now >= row.data_access_expires_at)
    ends = [m for m in (getattr(row, "expires_at", None), getattr(row, "data_access_expires_at", None))
            if m is not None]
    ends_at = min(ends) if ends else None
    return Banner(status=status, tone=TONES.get(status, "neutral"),
                  title=str(TITLES.get(status, TITLES["disconnected"])),
                  label=str(STATUS_LABELS.get(status, status)), row=row, payload=payload,
                  business_name=business_name(row, selected.get("business_id")),
                  missing=permissions(payload.get("missing_scopes") or []),
                  data_access_ended=ended, ends_at=ends_at,
                  ends_in_days=max(0, (ends_at - now).days) if ends_at else None,
                  actions=list(actions), granted_businesses=granted_businesses(row))


# -- the wizard's account list: search and pages, server-side ---------------------------------
PER_PAGE = 20


def _fold(text: str) -> str:
    """Lower case without accents, so "busqueda" finds "Búsqueda"."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search(accounts: list[dict], query: str) -> list[dict]:
    """Accounts whose name or id contains every word of the query."""
    words = _fold(query).split()
    if not words:
        return list(accounts)
    found = []
    for account in accounts:
        haystack = _fold(f"{account.get('name', '')} {account.get('id', '')}")
        if all(word in haystack for word in words):
            found.append(account)
    return found


@dataclass(frozen=True)
class Page:
    items: list[dict]
    number: int
    pages: int
    total: int
    first: int  # 1-based position of the first item shown (0 when empty)
    last: int


def paginate(items: list[dict], number: int, per_page: int = PER_PAGE) -> Page:
    pages = max(1, ceil(len(items) / per_page))
    number = min(max(1, number), pages)
    start = (number - 1) * per_page
    shown = items[start:start + per_page]
    return Page(shown, number, pages, len(items), start + 1 if shown else 0, start + len(shown))


def page_of(items: list[dict], account_id: str | None, per_page: int = PER_PAGE) -> int:
    """The page holding `account_id` (1 when it is not in the list)."""
    for index, item in enumerate(items):
        if item["id"] == account_id:
            return index // per_page + 1
    return 1
