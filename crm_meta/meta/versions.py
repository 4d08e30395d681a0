"""Meta's two version calendars: Graph API and Marketing API, each with its source.

A version is served for Graph calls until its Graph sunset, and for Marketing API calls (ads,
campaigns, insights...) until its Marketing sunset, which comes much sooner: v25.0 answers Graph
calls until 2028-07-29 but Marketing calls only until 2027-02-23.

Sources (read 2026-12-06):
- Graph: Meta's "Versions" page, developers.facebook.com/docs/graph-api/changelog/versions
  (v26.0 released 2026-07-29, no sunset announced; v25.0 2028-07-29 ... v21.0 2027-01-21,
  v20.0 2026-09-24, v19.0 2026-05-21).
- Marketing: Meta's "Marketing API version history",
  developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions
  (v27.0 released 2026-11-04 and v26.0 2026-07-29, no expiry announced; v25.0 2027-02-23,
  v24.0 2026-11-10 — an older copy of the page said 2026-10-06: the newer one is used —,
  v23.0 2026-06-09, v22.0 2026-02-19, v21.0 2025-09-09).
- Retired Marketing versions: Meta's blog "Upcoming change in Marketing API version
  deprecation to enable version auto-upgrade" (2024-04-16): a call to a retired version is
  either upgraded to the next available version, with an `X-Ad-Api-Version-Warning` header,
  or refused: "(#2635) You are calling a deprecated version of the Ads API. Please update to
  the latest version: vXX.X".
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

from crm_meta.meta.types import Headers

GRAPH = "graph"
MARKETING = "marketing"

# Graph API: version -> sunset (None: none announced).
SUNSETS = {
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 20),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
    "v26.0": None,  # current; no sunset announced
}
RETIRED = {"v19.0", "v20.0"}
# Marketing API: version -> expiry (None: none announced). v27.0 is in the Marketing calendar
# only: Meta's Graph page and its SDK (facebook-business 26.0.3, 2026-11) still name v26.0.
MARKETING_SUNSETS = {
    "v21.0": date(2025, 9, 9),
    "v22.0": date(2026, 2, 19),
    "v23.0": date(2026, 6, 9),
    "v24.0": date(2026, 11, 10),
    "v25.0": date(2027, 2, 23),
    "v26.0": None,
    "v27.0": None,
}
CALENDARS = {GRAPH: SUNSETS, MARKETING: MARKETING_SUNSETS}
WARN_DAYS = 120
VERSION = re.compile(r"^v(\d+)\.(\d+)$")
# Paths of the Marketing API: ad accounts and what hangs off them, and the ad objects' edges.
_MARKETING_EDGES = frozenset({
    "campaigns", "adsets", "ads", "adcreatives", "insights", "customaudiences", "adimages",
    "advideos", "adrules_library", "ad_studies", "reachestimate", "delivery_estimate",
    "adspixels", "targetingsearch", "owned_ad_accounts", "client_ad_accounts", "copies",
})


def kind_of(path: str) -> str:
    """GRAPH or MARKETING: which calendar serves a call to `path` (no version prefix). An ad
    account or an ads edge is the Marketing API; a bare id is Graph unless its edge says more."""
    segments = [s for s in path.strip("/").split("/") if s]
    if segments and segments[0].startswith("act_"):
        return MARKETING
    return MARKETING if any(s in _MARKETING_EDGES for s in segments[1:]) else GRAPH


def _key(version: str) -> tuple[int, int]:
    found = VERSION.match(version)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def served(version: str, kind: str, today: date) -> bool:
    """Whether Meta still serves `version` for this kind of call on `today`."""
    calendar = CALENDARS[kind]
    if version not in calendar:
        return False
    sunset = calendar[version]
    return sunset is None or today < sunset


def newest(today: date, kind: str | None = None) -> str:
    """The newest version Meta serves for `kind` (or for both calendars when None)."""
    kinds = [kind] if kind else [GRAPH, MARKETING]
    common = [v for v in CALENDARS[kinds[0]] if all(served(v, k, today) for k in kinds)]
    return max(common, key=_key)


def refusal(version: str, kind: str, today: date) -> str | None:
    """Why a call of `kind` cannot use `version` (naming the version to use), or None."""
    if served(version, kind, today):
        return None
    use = newest(today, kind)
    if kind == MARKETING:
        return ("You are calling a deprecated version of the Ads API. Please update to the latest "
                f"version: {use}.")
    return f"Graph API {version} is not served; use {use}"


def version_warning(version: str, today: date) -> str | None:
    """A sentence to log when `version` is retired or unknown, or within 120 days of the sunset
    of either calendar (the Marketing API's first)."""
    if version in RETIRED:
        return f"Graph API {version} is retired: Meta silently serves a newer version; upgrade"
    if version not in SUNSETS:
        return f"Graph API {version} is not a version this service knows"
    for kind, label in ((MARKETING, "Marketing API"), (GRAPH, "Graph API")):
        sunset = CALENDARS[kind].get(version)
        if sunset is None:
            continue
        days = (sunset - today).days
        if days < 0:
            return (f"{label} {version} was retired on {sunset}; set META_GRAPH_API_VERSION "
                    f"to {newest(today)}")
        if days <= WARN_DAYS:
            return (f"{label} {version} sunsets on {sunset} ({days} days); plan the upgrade "
                    f"to {newest(today)}")
    return None


def upgrade_warning(headers: Headers) -> str | None:
    """Meta's `X-Ad-Api-Version-Warning` (a Marketing call auto-upgraded), if any."""
    for name in ("x-ad-api-version-warning", "X-Ad-Api-Version-Warning"):
        value = headers.get(name) if headers is not None else None
        if value:
            return str(value)[:300]
    return None


def warn_about_version(version: str, logger: logging.Logger, today: date | None = None) -> None:
    message = version_warning(version, today or datetime.now(UTC).date())
    if message:
        logger.warning(message)
