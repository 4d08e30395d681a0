"""Keep-alive rules in isolation (FrozenClock, plain objects), and `flask meta refresh`'s summary."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from crm_meta.cli import refresh
from crm_meta.meta.errors import TokenInvalidError, TransientError
from crm_meta.meta.keepalive import deadlines, probing, verdicts
from crm_meta.meta.keepalive.probing import Probe
from crm_meta.meta.keepalive.verdicts import Settings
from crm_meta.meta.tokens import TokenInfo
from tests.tools.clock import FrozenClock
from tests.tools.configs import config_values

NOW = FrozenClock().now()
SETTINGS = Settings.from_config(config_values(META_SCOPES=["ads_management"], KEEPALIVE_CONCURRENCY=2))


def info(**fields) -> TokenInfo:
    base = dict(is_valid=True, token_type="USER", user_id="42", expires_at=NOW + timedelta(days=10),
                data_access_expires_at=NOW + timedelta(days=80), issued_at=NOW,
                scopes=["ads_management", "business_management"])
    return TokenInfo(**{**base, **fields})


@pytest.mark.parametrize(("new", "better"), [
    (info(expires_at=NOW + timedelta(days=60)), True),
    (info(expires_at=None), True),
    (info(expires_at=NOW + timedelta(days=10)), False),  # the same end: not worth a swap
    (info(expires_at=NOW + timedelta(days=10, minutes=30)), False),
    (info(expires_at=NOW + timedelta(days=5)), False),
    (info(expires_at=NOW + timedelta(days=60), is_valid=False), False),
    (info(expires_at=NOW + timedelta(days=60), user_id="43"), False),
    (info(expires_at=NOW + timedelta(days=60), scopes=["ads_management"]), False),
    (info(expires_at=NOW + timedelta(days=60), token_type="PAGE"), False),
    (info(expires_at=NOW + timedelta(days=60), data_access_expires_at=NOW + timedelta(days=30)), False),
])
def test_a_new_token_is_kept_only_when_it_is_really_better(new, better):
    assert probing.is_better(info(), new) is better


def test_nothing_outlives_a_token_that_never_expires():
    assert not probing.is_better(info(expires_at=None), info(expires_at=NOW + timedelta(days=60)))


@pytest.mark.parametrize(("token", "attempted", "expected"), [
    (info(), None, True),
    (info(expires_at=NOW + timedelta(days=20)), None, False),
    (info(expires_at=None, token_type="SYSTEM_USER"), None, False),
    (info(token_type="PAGE"), None, False),
    (info(), NOW - timedelta(hours=3), False),  # at most once a day
    (info(), NOW - timedelta(hours=21), True),
])
def test_only_user_tokens_near_their_end_are_exchanged_at_most_daily(token, attempted, expected):
    assert probing.should_extend(token, NOW, attempted) is expected


def row(**fields):
    base = dict(id=1, tenant_id=7, status="connected", expires_at=NOW + timedelta(days=50),
                data_access_expires_at=NOW + timedelta(days=80), throttled_until=None,
                consecutive_failures=0, warnings_sent={}, scopes=["ads_management"], declined_scopes=[],
                login_config_id=None, last_checked_at=None, last_error=None, last_error_code=None,
                extension_attempted_at=None, token_type="USER", issued_at=None, next_check_at=None,
                token_generation=0)
    return SimpleNamespace(**{**base, **fields})


@pytest.mark.parametrize(("left", "expected"), [
    (timedelta(days=50), timedelta(hours=6)),
    (timedelta(days=14, hours=2), timedelta(hours=2)),  # the 14-day warning is due in 2 hours
    (timedelta(days=7, hours=1), timedelta(hours=1)),
    (timedelta(hours=20), timedelta(hours=1)),  # the last day: hourly
    (timedelta(minutes=20), timedelta(minutes=20)),  # at the end itself
])
def test_next_check_comes_sooner_near_an_end(left, expected):
    target = row(expires_at=NOW + left)
    assert verdicts.next_check(target, NOW, SETTINGS.interval, "connected") - NOW == expected


def test_next_check_after_failures_throttling_and_death():
    assert verdicts.next_check(row(), NOW, SETTINGS.interval, "connected",
                                verdicts.RETRY_SOON) - NOW == verdicts.RETRY_SOON
    throttled = row(throttled_until=NOW + timedelta(minutes=40))
    assert verdicts.next_check(throttled, NOW, SETTINGS.interval, "throttled") == throttled.throttled_until
    assert verdicts.next_check(row(), NOW, SETTINGS.interval, "revoked") - NOW == timedelta(days=1)


CONTACT = deadlines.Contact("acme", "Acme", ("admin@acme.test",))  # passed in: apply reads nothing


def apply(target, probe, now=NOW):
    return verdicts.apply(target, probe, verdicts.Recording(now, SETTINGS, store=None, contact=CONTACT))


@pytest.fixture
def no_audit(monkeypatch):
    """No database: audit events are stubbed (the tenant's contact is passed in)."""
    recorded = []
    monkeypatch.setattr(verdicts.audit, "record", lambda action, **kw: recorded.append((action, kw)))
    return recorded


def test_two_consecutive_token_errors_before_needs_reauth(no_audit):
    target = row()
    error = TokenInvalidError("Error validating access token", code=190, subcode=460)

    first = apply(target, Probe("token_error", error=error))
    assert (target.status, target.consecutive_failures, first.notices) == ("connected", 1, [])
    second = apply(target, Probe("token_error", error=error))
    assert (target.status, second.status_after) == ("needs_reauth", "needs_reauth")
    assert [n.event for n in second.notices] == ["status_changed"]
    recovered = apply(target, Probe("valid", info=info(expires_at=target.expires_at)))
    assert (target.status, target.consecutive_failures) == ("connected", 0)
    assert [(n.event, n.status, n.previous_status) for n in recovered.notices] == [
        ("status_changed", "connected", "needs_reauth")]


def test_transient_failures_leave_status_and_failure_count_alone(no_audit):
    target = row(consecutive_failures=1)
    outcome = apply(target, Probe("transient", error=TransientError("Meta did not answer")))
    assert (target.status, target.consecutive_failures, outcome.notices) == ("connected", 1, [])
    assert target.next_check_at - NOW == verdicts.RETRY_SOON


@pytest.mark.parametrize(("subcode", "status"), [(458, "revoked"), (463, "expired"), (460, "connected")])
def test_debug_token_verdicts(no_audit, subcode, status):
    target = row()
    apply(target, Probe("invalid", info=info(is_valid=False, error_code=190, error_subcode=subcode)))
    assert target.status == status
    assert target.expires_at == NOW + timedelta(days=50)  # an invalid answer's dates are not trusted


def test_each_warning_once_per_deadline_and_again_for_a_new_deadline(no_audit):
    clock = FrozenClock(NOW)
    target = row(expires_at=NOW + timedelta(days=20))
    sent = []
    for _ in range(20 * 4):  # every 6 hours until the end
        outcome = apply(target, Probe("valid", info=info(expires_at=target.expires_at)), clock.now())
        sent += [(n.kind, n.days) for n in outcome.notices if n.event == "warning"]
        clock.advance(hours=6)
    assert sent == [("token", 14), ("token", 7), ("token", 1)]
    # A reconnect or an extension gives a new end: its warnings come again.
    target.expires_at = clock.now() + timedelta(days=13)
    outcome = apply(target, Probe("valid", info=info(expires_at=target.expires_at)), clock.now())
    assert [(n.kind, n.days) for n in outcome.notices] == [("token", 14)]


def test_a_jump_over_several_thresholds_sends_only_the_most_urgent(no_audit):
    target = row(expires_at=NOW + timedelta(days=3))
    outcome = apply(target, Probe("valid", info=info(expires_at=target.expires_at)))
    assert [(n.kind, n.days) for n in outcome.notices] == [("token", 7)]
    assert target.warnings_sent["token:14"]["sent"] is False
    assert target.warnings_sent["token:7"]["sent"] is True


def test_no_date_warnings_while_the_tenant_must_reconnect_anyway(no_audit):
    target = row(status="revoked", expires_at=NOW + timedelta(days=3))
    outcome = apply(target, Probe("invalid", info=info(is_valid=False, error_code=190, error_subcode=458)))
    assert [n.event for n in outcome.notices] == ["status_changed"]


def test_summary_table():
    table = refresh.format_table({"checked": 12, "extended": 1, "warned": 3, "failed": 0, "skipped": 2})
    lines = table.splitlines()
    assert lines[1].split("|")[1:-1] == [" checked ", " extended ", " warned ", " failed ", " skipped "]
    assert [cell.strip() for cell in lines[3].split("|")[1:-1]] == ["12", "1", "3", "0", "2"]


def test_settings_come_from_the_config():
    settings = Settings.from_config(config_values(KEEPALIVE_INTERVAL_HOURS=2, KEEPALIVE_CONCURRENCY=3,
                                                  KEEPALIVE_CLAIM_SECONDS=60, META_SCOPES=["a"]))
    assert settings == Settings(timedelta(hours=2), ("a",), timedelta(seconds=60), 3,
                                tick=timedelta(minutes=15), outbox=False)
    assert settings.wake_every == timedelta(minutes=15)
