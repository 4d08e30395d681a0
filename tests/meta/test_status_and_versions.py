"""Connection status from stored facts, and Graph version warnings."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from crm_meta.meta.status import days_left, effective_status, missing_scopes
from crm_meta.meta.versions import version_warning

NOW = datetime(2026, 11, 28, tzinfo=UTC)
REQUIRED = ["ads_management", "business_management"]


def row(**overrides):
    values = dict(status="connected", expires_at=NOW + timedelta(days=50), data_access_expires_at=None,
                  throttled_until=None, scopes=REQUIRED, declined_scopes=[], login_config_id=None)
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("overrides, expected", [
    ({}, "connected"),
    ({"expires_at": None}, "connected"),
    ({"expires_at": NOW + timedelta(days=6)}, "expiring"),
    ({"data_access_expires_at": NOW + timedelta(days=3)}, "expiring"),
    ({"expires_at": NOW - timedelta(seconds=1)}, "expired"),
    ({"data_access_expires_at": NOW - timedelta(days=1)}, "needs_reauth"),
    ({"scopes": ["ads_management"]}, "partial"),
    ({"status": "throttled", "throttled_until": NOW + timedelta(minutes=5)}, "throttled"),
    ({"status": "throttled", "throttled_until": NOW - timedelta(minutes=5)}, "connected"),
    ({"status": "revoked"}, "revoked"),
    ({"status": "needs_reauth"}, "needs_reauth"),
])
def test_effective_status(overrides, expected):
    assert effective_status(row(**overrides), NOW, REQUIRED) == expected


def test_no_row_is_disconnected():
    assert effective_status(None, NOW, REQUIRED) == "disconnected"


def test_missing_scopes_and_days_left():
    assert missing_scopes(row(scopes=["ads_management"]), REQUIRED) == ["business_management"]
    assert missing_scopes(row(login_config_id="cfg", scopes=[]), REQUIRED) == []
    assert days_left(row(), NOW) == 50
    assert days_left(row(expires_at=None), NOW) is None


@pytest.mark.parametrize("version, today, fragment", [
    # Two calendars: the Marketing API's dates come first (Meta's Marketing API version history).
    ("v25.0", date(2026, 6, 1), None),
    ("v25.0", date(2026, 11, 28), "Marketing API v25.0 sunsets on 2027-02-23"),
    ("v26.0", date(2026, 11, 28), None),
    ("v21.0", date(2026, 11, 28), "Marketing API v21.0 was retired on 2025-09-09"),
    ("v21.0", date(2027, 2, 1), "was retired"),
    ("v20.0", date(2026, 11, 28), "retired"),
    ("v99.0", date(2026, 11, 28), "not a version"),
])
def test_version_warnings(version, today, fragment):
    message = version_warning(version, today)
    assert (message is None) if fragment is None else (fragment in message)


def test_start_up_warns_about_a_version_near_its_sunset(make_app, caplog):
    make_app(META_GRAPH_API_VERSION="v26.0")  # no sunset announced
    assert not [r for r in caplog.records if "Graph API" in r.getMessage()]
    make_app(META_GRAPH_API_VERSION="v20.0")
    warnings = [r for r in caplog.records if "Graph API v20.0" in r.getMessage()]
    assert warnings and warnings[0].levelname == "WARNING"


@pytest.mark.parametrize("version, path, today, words", [
    ("v25.0", "act_1/insights", date(2026, 12, 6), None),
    ("v25.0", "act_1/insights", date(2027, 2, 23), "latest version: v27.0"),  # Marketing: refused
    ("v25.0", "1090000000000001", date(2027, 2, 23), None),  # Graph: served until 2028-07-29
    ("v21.0", "1090000000000001", date(2026, 12, 6), None),
    ("v21.0", "1090000000000001", date(2027, 1, 21), "use v26.0"),
    ("v21.0", "1/campaigns", date(2026, 12, 6), "deprecated version of the Ads API"),
    ("v26.0", "act_1/campaigns", date(2026, 12, 6), None),
    ("v99.0", "me", date(2026, 12, 6), "not served"),
])
def test_each_kind_of_call_follows_its_own_calendar(version, path, today, words):
    from crm_meta.meta.versions import kind_of, refusal

    message = refusal(version, kind_of(path), today)
    assert (message is None) if words is None else (words in message)


def test_the_default_version_is_the_newest_both_calendars_serve():
    from config import Config
    from crm_meta.meta.versions import newest

    assert newest(date(2026, 12, 6)) == "v26.0"
    assert Config({}).META_GRAPH_API_VERSION == "v26.0"
