"""Settings of the Meta sandbox: defaults, coercion and validation."""

from __future__ import annotations

from typing import Any

#: Scopes this product asks for; also what a Login for Business configuration grants.
PRODUCT_SCOPES = (
    "ads_management",
    "business_management",
    "whatsapp_business_management",
    "pages_show_list",
    "pages_read_engagement",
    "read_insights",
)

#: Graph API versions Meta currently serves, oldest first.
CURRENT_VERSIONS = ("v21.0", "v22.0", "v23.0", "v24.0", "v25.0", "v26.0")

#: Marketing API versions and the day each expires (Meta's "Marketing API version history");
#: after it a call is upgraded to the oldest version still served, with X-Ad-Api-Version-Warning.
MARKETING_EXPIRY = {"v21.0": "2025-09-09", "v22.0": "2026-02-19", "v23.0": "2026-06-09",
                    "v24.0": "2026-11-10", "v25.0": "2027-02-23"}

DEFAULTS: dict[str, Any] = {
    # Application name shown on the consent page and in debug_token.
    "app_name": "CRM Meta (sandbox)",
    # "Require App Secret": user/page/system-user calls must carry appsecret_proof.
    "require_appsecret_proof": True,
    # Re-exchanging a long-lived token pushes its expiry out (Meta does not: observed).
    "extend_long_lived": False,
    # Lifetime of a token from the web code flow (Meta: already long-lived).
    "code_token_expires_in": 5183944,
    # Lifetime of a token from fb_exchange_token (about 60 days).
    "long_lived_expires_in": 5184000,
    # Lifetime of a system-user token from Facebook Login for Business (config_id): 0 never
    # expires; 5184000 is Meta's expiring kind (60 days, refreshed with fb_exchange_token and
    # set_token_expires_in_60_days=true).
    "system_user_expires_in": 0,
    # Lifetime of an authorization code.
    "code_ttl_seconds": 600,
    # Data access lasts this long after the user's last pass through the dialog.
    "data_access_days": 90,
    # Fixture size: number of businesses of the first test user.
    "businesses": 3,
    # Ad accounts owned by each business: an int for all, or a list per business
    # (the last value repeats). The default gives the first business two pages of 100.
    "ad_accounts_per_business": [130, 6, 4],
    # Ad accounts owned by outside agencies that each business also sees as clients.
    "client_ad_accounts_per_business": 2,
    # Personal ad accounts of the second test user (who has no business).
    "personal_ad_accounts": 3,
    # More Pages of the first test user (each with an Instagram account), and more phone
    # numbers on its first WhatsApp account: channel discovery at any size.
    "extra_pages": 0,
    "extra_phone_numbers": 0,
    # Seed of the deterministic fixture generator.
    "seed": 2026,
    # Added delay on every Graph call, in milliseconds.
    "latency_ms": 0,
    # Calls per hour that make x-app-usage report 100 (percent).
    "app_call_budget": 10000,
    # Calls per hour and business that make x-business-use-case-usage report 100.
    "business_call_budget": 10000,
    # Calls per hour and ad account that make x-ad-account-usage report 100.
    "ad_account_call_budget": 10000,
    # When on, a call once a budget is spent fails with code 4 / 80004 like Meta.
    "enforce_rate_limits": False,
    # Page size of edges when no limit is given, and the largest limit honoured.
    "default_limit": 25,
    "max_limit": 100,
    # Quirk seen at Meta: the first page of every listing comes back empty, with `next`.
    "empty_first_page": False,
    # How many Graph calls the call log keeps (oldest dropped first).
    "call_log_limit": 100000,
    # Version used for calls without a version prefix (Meta: the app's default version).
    "default_version": "v25.0",
    # Webhooks (webhooks.py): send deliveries on their own (a thread) as Meta does; off, only
    # POST /_sandbox/webhooks/run sends them.
    "webhook_autosend": True,
    # Seconds Meta waits for the callback's answer (Messenger documents 20).
    "webhook_timeout_seconds": 20,
    # Largest number of entries in one delivery (Meta batches up to 1,000).
    "webhook_batch_max": 1000,
    # Milliseconds entries wait for others to share their delivery.
    "webhook_batch_window_ms": 20,
    # The next N attempts count as failed whatever the callback answers (a lost answer), so
    # Meta retries a delivery the app did store: duplicates, as at Meta.
    "webhook_ignore_acks": 0,
    # The Page's Leads Access Manager withholds leads from user tokens (inferred error).
    "leads_access_blocked": False,
}

#: Settings whose change rebuilds the fixtures.
FIXTURE_KEYS = frozenset(
    {
        "businesses",
        "ad_accounts_per_business",
        "client_ad_accounts_per_business",
        "personal_ad_accounts",
        "extra_pages",
        "extra_phone_numbers",
        "seed",
    }
)

_BOOL_KEYS = {
    "require_appsecret_proof",
    "extend_long_lived",
    "enforce_rate_limits",
    "empty_first_page",
    "webhook_autosend",
    "leads_access_blocked",
}
_STR_KEYS = {"app_name", "default_version"}
_POSITIVE_KEYS = {
    "code_ttl_seconds",
    "data_access_days",
    "app_call_budget",
    "business_call_budget",
    "ad_account_call_budget",
    "default_limit",
    "max_limit",
    "call_log_limit",
    "long_lived_expires_in",
    "webhook_timeout_seconds",
    "webhook_batch_max",
}


def _as_int(key: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum}")
    return value


def _coerce(key: str, value: Any) -> Any:
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if key in _STR_KEYS:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key} must be a non-empty string")
        if key == "default_version" and value not in CURRENT_VERSIONS:
            raise ValueError(f"default_version must be one of {', '.join(CURRENT_VERSIONS)}")
        return value
    if key == "ad_accounts_per_business":
        if isinstance(value, list):
            if not value:
                raise ValueError("ad_accounts_per_business must not be an empty list")
            return [_as_int(key, v) for v in value]
        return _as_int(key, value)
    if key == "businesses":
        return _as_int(key, value, 0)
    if key in _POSITIVE_KEYS:
        return _as_int(key, value, 1)
    return _as_int(key, value, 0)


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """Return the changes coerced, or raise ValueError naming the bad key."""
    unknown = sorted(set(changes) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    return {key: _coerce(key, value) for key, value in changes.items()}


def accounts_for_business(setting: int | list[int], index: int) -> int:
    """Ad accounts owned by the business at 0-based index under the given setting."""
    if isinstance(setting, int):
        return setting
    return setting[index] if index < len(setting) else setting[-1]
