"""Meta's usage headers, read in one place: the Graph client and the rate governor both use them.

`x-app-usage` (the app's budget), `x-business-use-case-usage` (per business, with
`estimated_time_to_regain_access` in minutes) and `x-ad-account-usage` (per ad account, with
`reset_time_duration` in seconds). An unreadable header reads as "nothing said", never an error.
"""

from __future__ import annotations

import json
import logging
import re

from crm_meta.meta.types import Headers, JsonObject

log = logging.getLogger(__name__)
AD_ACCOUNT = re.compile(r"^/?(act_\d+)(?:/|$)")
APP = "app"
SLOWDOWN = 80  # percent of the app's budget at which we start backing off on our own
SPENT = 100  # percent at which Meta refuses the app's calls
# The longest wait we take from Meta's headers: a day. Meta names minutes or an hour or so; a
# larger figure (or Infinity) is a broken header, never a reason to hold a scope for millennia.
MAX_WAIT_SECONDS = 24 * 3600
MAX_PERCENT = 1000.0  # Meta's percentages pass 100 when over budget; nothing sane goes past this


def _bounded(value: float | str | None, most: float) -> float:
    """A number from a header, within [0, most]: NaN or a negative reads as 0, Infinity as most."""
    number = float(value or 0)
    if number != number or number < 0:  # NaN is the only value not equal to itself
        return 0.0
    return min(number, most)


def usage_percent(entry: JsonObject) -> float:
    """The highest of Meta's percentages in one usage entry."""
    values = [entry.get(k) or 0 for k in ("call_count", "total_time", "total_cputime", "acc_id_util_pct")]
    return max(_bounded(v, MAX_PERCENT) for v in values)


def _business_entries(headers: Headers) -> dict[str, list[JsonObject]]:
    raw = headers.get("x-business-use-case-usage")
    if not raw:
        return {}
    return {business: entries if isinstance(entries, list) else [entries]
            for business, entries in json.loads(raw).items()}


def _regain_minutes(entries: list[JsonObject]) -> float:
    return max((_bounded(e.get("estimated_time_to_regain_access"), MAX_WAIT_SECONDS / 60)
                for e in entries), default=0.0)


def readings(path: str, headers: Headers) -> list[tuple[str, float, float]]:
    """(scope, percent, seconds Meta says to wait) from one answer's usage headers."""
    found: list[tuple[str, float, float]] = []
    try:
        if headers.get("x-app-usage"):
            found.append((APP, usage_percent(json.loads(headers["x-app-usage"])), 0.0))
        for business_id, entries in _business_entries(headers).items():
            pct = max((usage_percent(e) for e in entries), default=0.0)
            found.append((f"business:{business_id}", pct, _regain_minutes(entries) * 60))
        account = AD_ACCOUNT.match(path or "")
        if account and headers.get("x-ad-account-usage"):
            usage = json.loads(headers["x-ad-account-usage"])
            found.append((f"ad_account:{account.group(1)}", usage_percent(usage),
                          _bounded(usage.get("reset_time_duration"), MAX_WAIT_SECONDS)))
    except (ValueError, TypeError, AttributeError):
        log.warning("unreadable Meta usage header on %s; ignored", path)
    return found


def app_usage(headers: Headers) -> int:
    """The app's usage in percent of its budget (0 when Meta did not say)."""
    try:
        return int(usage_percent(json.loads(headers.get("x-app-usage") or "{}")))
    except (ValueError, AttributeError, TypeError):
        return 0


def regain_seconds(headers: Headers) -> int | None:
    """The longest `estimated_time_to_regain_access` Meta announced, in seconds (None: none)."""
    try:
        minutes = max((_regain_minutes(entries) for entries in _business_entries(headers).values()),
                      default=0.0)
    except (ValueError, AttributeError, TypeError):
        return None
    return int(minutes * 60) or None
