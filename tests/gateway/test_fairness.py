"""Fair to every tenant: one tenant's burst spends its own budget (the gateway's limit per
service and tenant) and holds only the business and ad account Meta names, never the whole app
unless Meta's app usage says so. Counters and holds in Redis, as deployed."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers.sandbox import ACCOUNT

pytestmark = pytest.mark.redis
OTHER_BUSINESS_ACCOUNT = "act_301000002000001"


@pytest.fixture
def shared_app(make_app, redis_url):
    run = uuid.uuid4().hex[:8]
    return make_app(REDIS_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_ENABLED=True,
                    RATELIMIT_KEY_PREFIX=f"test-limits:{run}", RATELIMIT_GRAPH_GATEWAY="100/minute",
                    META_GOVERNOR_KEY_PREFIX=f"test-governor:{run}")


def test_one_tenants_burst_does_not_stop_another_tenants_calls(shared_app, connect, make_key,
                                                                gateway_token, sandbox):
    # Meta's budgets, small: 100 calls an hour for the app and for each business.
    sandbox.post("config", app_call_budget=100, business_call_budget=100)
    connect("acme", app_=shared_app)
    connect("beta", account=OTHER_BUSINESS_ACCOUNT, app_=shared_app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=shared_app)
    acme, beta = (gateway_token(slug, service=service, app_=shared_app) for slug in ("acme", "beta"))
    client = shared_app.test_client()

    burst = [client.get(f"/graph/v25.0/{ACCOUNT}/campaigns", query_string={"access_token": acme})
             for _ in range(150)]
    codes = [r.status_code for r in burst]
    refused = [r.get_json()["error"] for r in burst if r.status_code != 200]
    assert codes.count(200) >= 50 and refused, codes
    # Refused as Meta refuses: its business's throttle, the hold on it, or acme's own limit.
    assert {e["code"] for e in refused} <= {80004, 613, 17}
    assert all(e["is_transient"] for e in refused if e["code"] in (613, 17))

    before = len(sandbox.calls("/campaigns"))
    other = client.get(f"/graph/v25.0/{OTHER_BUSINESS_ACCOUNT}/campaigns",
                       query_string={"access_token": beta})
    assert other.status_code == 200, other.get_data(as_text=True)
    assert len(sandbox.calls("/campaigns")) == before + 1  # it reached Meta: nothing held it back


def test_the_app_is_held_only_when_metas_app_usage_says_so(shared_app, connect, make_key, gateway_token,
                                                           sandbox):
    connect("acme", app_=shared_app)
    connect("beta", account=OTHER_BUSINESS_ACCOUNT, app_=shared_app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=shared_app)
    acme, beta = (gateway_token(slug, service=service, app_=shared_app) for slug in ("acme", "beta"))
    client = shared_app.test_client()
    sandbox.post("config", app_call_budget=1)  # any Graph (not Marketing) call now reports 100%
    page = client.get("/graph/v25.0/1090000000000001", query_string={"access_token": acme, "fields": "name"})
    assert page.status_code == 200  # Meta answered, and said the app is spent
    held = client.get(f"/graph/v25.0/{OTHER_BUSINESS_ACCOUNT}/campaigns", query_string={"access_token": beta})
    error = held.get_json()["error"]
    assert held.status_code == 429 and error["code"] == 4 and error["is_transient"] is True
