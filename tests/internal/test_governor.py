"""The shared rate governor: Meta's usage headers in, holds out; refusals before calling Meta."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

import config as configuration
from crm_meta.meta.governor import Governor, GovernorRefusal, MemoryHolds, RedisHolds
from crm_meta.meta.keepalive import sweep
from crm_meta.meta.settings import GovernorSettings
from crm_meta.meta.usage import readings
from crm_meta.runtime import of
from tests.helpers.graph import assert_graph_error
from tests.helpers.sandbox import ACCOUNT, BUSINESS
from tests.tools.clock import FrozenClock
from tests.tools.configs import config_values

PROXY = "/internal/meta/connections/{}/graph/{}"
OTHER_BUSINESS_ACCOUNT = "act_301000002000001"


def app_usage(pct):
    return {"x-app-usage": json.dumps({"call_count": pct, "total_time": 1, "total_cputime": 1})}


def buc(business, pct, regain=0):
    return {"x-business-use-case-usage": json.dumps({business: [
        {"type": "ads_management", "call_count": pct, "total_time": 1, "total_cputime": 1,
         "estimated_time_to_regain_access": regain}]})}


RULES = GovernorSettings.from_config(config_values())  # config.py's threshold and hold


def governor(holds=None, **options):
    return Governor(holds or MemoryHolds(), replace(RULES, **options), clock=FrozenClock())


def refusal(gov, scopes=()):
    with pytest.raises(GovernorRefusal) as caught:
        gov.check(list(scopes))
    return caught.value


# -- unit: reading headers and holding ---------------------------------------------------------
def test_readings_take_the_highest_percentage_and_metas_waiting_times():
    headers = {**app_usage(42), **buc("77", 12, regain=3),
               "x-ad-account-usage": json.dumps({"acc_id_util_pct": 91.5, "reset_time_duration": 40})}
    assert readings("/act_5/insights", headers) == [("app", 42.0, 0.0), ("business:77", 12.0, 180.0),
                                                    ("ad_account:act_5", 91.5, 40.0)]
    assert readings("/me", {"x-ad-account-usage": "{}"}) == []  # no account in the path: not whose
    assert readings("/me", {"x-app-usage": "not json"}) == []


def test_the_app_over_the_threshold_is_held_for_the_hold_time():
    gov = governor(threshold=90, hold_seconds=60)
    gov.observe("/me", app_usage(89))
    gov.check([])
    gov.observe("/me", app_usage(90))
    held = refusal(gov, ["business:1"])
    assert (held.scope, held.retry_after, held.code, held.kind) == ("app", 60, None, "governed")
    gov.clock.advance(seconds=59)
    assert refusal(gov).retry_after == 1
    gov.clock.advance(seconds=1)
    gov.check([])


def test_a_business_or_account_is_held_for_the_time_meta_names_and_only_it():
    gov = governor()
    gov.observe("/act_9/campaigns", {**buc(BUSINESS, 100, regain=5),
                                      "x-ad-account-usage": json.dumps({"acc_id_util_pct": 95,
                                                                        "reset_time_duration": 30})})
    assert refusal(gov, [f"business:{BUSINESS}"]).retry_after == 300
    assert refusal(gov, ["ad_account:act_9"]).retry_after == 30
    gov.check(["business:2", "ad_account:act_8"])
    gov.observe("/act_9/campaigns", buc(BUSINESS, 10))  # an answer in flight never shortens a hold
    assert refusal(gov, [f"business:{BUSINESS}"]).retry_after == 300


def test_redis_holds_are_shared_and_survive_redis_going_away(redis_url):
    prefix = f"test-governor:{uuid.uuid4().hex[:8]}"
    clock = FrozenClock()
    one = Governor(RedisHolds(redis_url, prefix), RULES, clock=clock)
    two = Governor(RedisHolds(redis_url, prefix), RULES, clock=clock)
    one.observe("/me", app_usage(97))
    assert refusal(two).retry_after == 60
    down = Governor(RedisHolds("redis://127.0.0.1:1/0", prefix), RULES, clock=clock)
    down.check([])  # no Redis: nothing known, nothing refused, no error
    down.observe("/me", app_usage(99))
    assert refusal(down).scope == "app"  # held in this process meanwhile


# -- integration: every Graph answer feeds it; the proxy obeys it ------------------------------
def test_the_proxy_refuses_with_429_while_meta_reports_the_app_near_its_budget(client, connect, service,
                                                                               sandbox):
    connect("acme")
    url = PROXY.format("acme", f"{ACCOUNT}/campaigns")
    sandbox.post("config", app_call_budget=1)  # every answer now says 100% of the app's budget
    assert client.get(url, headers=service.headers).status_code == 200  # Meta still answered
    before = len(sandbox.calls())
    held = client.get(url, headers=service.headers)
    assert assert_graph_error(held, 429, 4, "governor_app")["is_transient"] is True  # Meta's app throttle
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    assert len(sandbox.calls()) == before  # refused before calling Meta
    sandbox.post("config", app_call_budget=10000)
    sandbox.advance(61)
    assert client.get(url, headers=service.headers).status_code == 200


def test_a_throttled_business_holds_its_accounts_not_the_others(client, connect, service, sandbox):
    connect("acme")
    sandbox.fault(f"/v25.0/{ACCOUNT}/campaigns", code=80004, regain_minutes=5)
    throttled = client.get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers)
    assert throttled.status_code == 400 and throttled.get_json()["error"]["code"] == 80004
    assert throttled.headers["Retry-After"] == "300"
    before = len(sandbox.calls())
    for path in (f"{ACCOUNT}/campaigns", f"{ACCOUNT}/insights"):
        held = client.get(PROXY.format("acme", path), headers=service.headers)
        assert held.status_code == 429 and 290 <= int(held.headers["Retry-After"]) <= 300
    assert len(sandbox.calls()) == before
    other = client.get(PROXY.format("acme", f"{OTHER_BUSINESS_ACCOUNT}/campaigns"), headers=service.headers)
    assert other.status_code == 200
    sandbox.advance(301)
    again = client.get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers)
    assert again.status_code == 200


def test_discovery_answers_feed_the_governor_too(make_app, connect, make_key, sandbox):
    app = make_app(META_GOVERNOR_THRESHOLD=2)  # low, so a few calls cross it below Meta's own 100
    sandbox.post("config", app_call_budget=100)
    connect("acme", app_=app)  # the connect flow's own calls (exchange, inspect, discovery)
    held = app.test_client().get(PROXY.format("acme", f"{ACCOUNT}/campaigns"),
                                 headers=make_key(app_=app).headers)
    assert held.status_code == 429


def test_sweep_answers_feed_the_governor_too(make_app, connect, make_key, sandbox):
    app = make_app(META_GOVERNOR_THRESHOLD=50)
    connect("acme", app_=app)
    sandbox.post("config", app_call_budget=2)  # the sweep's debug_token answer reports >= 50%
    report = sweep.run_sweep(app, of(app), sweep.Scope(forced=True, row_ids=[1]))
    assert report.counts()["checked"] == 1
    held = app.test_client().get(PROXY.format("acme", f"{ACCOUNT}/campaigns"),
                                 headers=make_key(app_=app).headers)
    assert held.status_code == 429


@pytest.mark.parametrize(("setting", "value", "word"), [
    ("META_GOVERNOR_THRESHOLD", 0, "META_GOVERNOR_THRESHOLD"),
    ("META_GOVERNOR_THRESHOLD", 101, "META_GOVERNOR_THRESHOLD"),
    ("META_PROXY_ALLOWED_PATHS", ["ad_account/campaigns", "../me"], "META_PROXY_ALLOWED_PATHS"),
    ("META_PROXY_ALLOWED_PATHS", ["ad_account//insights"], "META_PROXY_ALLOWED_PATHS"),
])
def test_governor_and_allow_list_settings_are_checked_at_start(setting, value, word):
    with pytest.raises(configuration.ConfigError, match=word):
        configuration.TestingConfig(**{setting: value}).validate()


def test_the_settings_come_from_the_environment():
    config = configuration.TestingConfig({"META_GOVERNOR_THRESHOLD": "80", "META_GOVERNOR_HOLD_SECONDS": "15",
                            "META_PROXY_ALLOWED_PATHS": "ad_account/insights, lead_form/leads:GET"})
    config.validate()
    assert config.META_GOVERNOR_THRESHOLD == 80 and config.META_GOVERNOR_HOLD_SECONDS == 15
    assert config.META_PROXY_ALLOWED_PATHS == ["ad_account/insights", "lead_form/leads:GET"]
