"""Graph API versions and their sunsets (from Meta's changelog)."""

from __future__ import annotations

from datetime import UTC, date, datetime

SUNSETS = {
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 20),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
    "v26.0": None,  # current; no sunset announced
}
RETIRED = {"v19.0", "v20.0"}
WARN_DAYS = 120


def version_warning(version: str, today: date) -> str | None:
    """A sentence to log when `version` is retired, unknown, or within 120 days of sunset."""
    if version in RETIRED:
        return f"Graph API {version} is retired: Meta silently serves a newer version; upgrade"
    if version not in SUNSETS:
        return f"Graph API {version} is not a version this service knows"
    sunset = SUNSETS[version]
    if sunset is None:
        return None
    days = (sunset - today).days
    if days < 0:
        return f"Graph API {version} was retired on {sunset}; set META_GRAPH_API_VERSION"
    if days <= WARN_DAYS:
        return f"Graph API {version} sunsets on {sunset} ({days} days); plan the upgrade"
    return None


def warn_about_version(version: str, logger, today: date | None = None) -> None:
    message = version_warning(version, today or datetime.now(UTC).date())
    if message:
        logger.warning(message)
