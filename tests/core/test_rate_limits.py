"""Rate limits on our own endpoints: per tenant when authenticated (per address otherwise), the
envelope with Retry-After; with Redis, counters shared by every process."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from crm_meta.infra.database import db
from crm_meta.models import Tenant, User
from tests.helpers.responses import assert_envelope
from tests.helpers.settings import ROOT
from tests.helpers.users import PASSWORD, bearer


# -- in-process counters (memory) ------------------------------------------------------------
@pytest.fixture
def limited(make_app, make_tenant):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_META_URL="3/minute",
                   RATELIMIT_META_DISCONNECT="2/minute", RATELIMIT_META_CALLBACK="2/minute")
    tenants = make_tenant("alpha", app_=app), make_tenant("beta", app_=app)
    return app, tenants


def test_url_limit_is_per_tenant_and_answers_the_envelope(limited):
    app, (alpha, beta) = limited
    client = app.test_client()
    for _ in range(3):
        assert client.get("/crm/auth/meta/url", headers=bearer(alpha.tenant_id)).status_code == 200
    response = client.get("/crm/auth/meta/url", headers=bearer(alpha.tenant_id, sub="other-user"))
    assert response.status_code == 429
    body = response.get_json()
    assert body["success"] is False and body["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    assert client.get("/crm/auth/meta/url", headers=bearer(beta.tenant_id)).status_code == 200


def test_disconnect_limit(limited):
    app, (alpha, _beta) = limited
    client = app.test_client()
    client.post("/login", data={"email": alpha.admin_email, "password": PASSWORD})
    codes = [client.post("/crm/auth/meta/disconnect").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_callback_is_limited_by_address(limited):
    app, _ = limited
    client = app.test_client()
    codes = [client.get("/crm/auth/meta/callback?state=x&code=y").status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    other = app.test_client()
    response = other.get("/crm/auth/meta/callback?state=x&code=y",
                         environ_overrides={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 400



def test_refused_calls_spend_no_budget_and_limited_answers_carry_the_headers(limited):
    # The limiter's after-request hook counts a bearer-keyed call only once it got past the
    # roles (deduct_when): a member's 403s leave the admins' three calls intact.
    app, (alpha, _beta) = limited
    client = app.test_client()
    member = bearer(alpha.tenant_id, role="member")
    for _ in range(4):
        assert client.get("/crm/auth/meta/url", headers=member).status_code == 403
    answers = [client.get("/crm/auth/meta/url", headers=bearer(alpha.tenant_id)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert answers[0].headers["X-RateLimit-Remaining"] == "2"


def test_an_endpoint_without_a_limit_costs_the_limiter_nothing(limited, monkeypatch):
    # Only the endpoints of LIMITS run the limiter's hooks: a status read makes none of its
    # lookups and no per-request context of it (issue 21 item 7), a limited one still does.
    from flask_limiter import Limiter

    app, (alpha, _beta) = limited
    calls = []
    identify, context = Limiter.identify_request, Limiter.context
    monkeypatch.setattr(Limiter, "identify_request",
                        lambda self: calls.append("identify") or identify(self))
    monkeypatch.setattr(Limiter, "context",
                        property(lambda self: calls.append("context") or context.fget(self)))
    client = app.test_client()
    response = client.get("/crm/marketing/token-status", headers=bearer(alpha.tenant_id))
    assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers
    assert client.get("/healthz").status_code == 200
    assert calls == []
    assert client.get("/crm/auth/meta/url", headers=bearer(alpha.tenant_id)).status_code == 200
    assert "identify" in calls and "context" in calls


# -- counters in Redis, shared by every process ----------------------------------------------
PATH = "/crm/auth/meta/test-connection"
# "per hour" rather than "per minute": a slow machine must not see the window roll over mid-test.
LIMIT = "2/hour"

OTHER_PROCESS = """
import json, sys
from crm_meta.app import create_app
from tests.helpers.settings import testing_config
from tests.helpers.users import bearer
cfg = json.loads(sys.argv[1])
app = create_app(testing_config(cfg["sandbox"], cfg["database"], RATELIMIT_ENABLED=True,
                                RATELIMIT_STORAGE_URI=cfg["redis"], RATELIMIT_META_TEST=cfg["limit"],
                                RATELIMIT_KEY_PREFIX=cfg["prefix"]))
response = app.test_client().get(cfg["path"], headers=bearer(cfg["tenant"], role="member"))
print(json.dumps({"status": response.status_code}))
"""


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def tenant_ids(redis_client):
    """Tenant ids no other test uses, so the counters are this test's alone; deleted afterwards."""
    ids = [uuid.uuid4().int % 10**9 + 10**6 for _ in range(2)]
    yield ids
    for tenant_id in ids:
        for key in redis_client.scan_iter(match=f"*tenant:{tenant_id}/*"):
            redis_client.delete(key)


@pytest.fixture
def limited_app(make_app, redis_url, tenant_ids):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_META_TEST=LIMIT,
                   RATELIMIT_KEY_PREFIX=f"crm-meta-test-{uuid.uuid4().hex[:8]}")
    with app.app_context():
        for tenant_id in tenant_ids:
            db.session.add(Tenant(id=tenant_id, name=f"T{tenant_id}", slug=f"t{tenant_id}"))
        db.session.commit()
    return app


def call(app, tenant_id):
    return app.test_client().get(PATH, headers=bearer(tenant_id, role="member"))


def call_from_another_process(app, sandbox_server, redis_url, tenant_id) -> int:
    config = {
        "sandbox": sandbox_server.url, "database": app.config["SQLALCHEMY_DATABASE_URI"],
        "redis": redis_url, "limit": LIMIT, "path": PATH, "tenant": tenant_id,
        "prefix": app.config["RATELIMIT_KEY_PREFIX"],
    }
    result = subprocess.run([sys.executable, "-c", OTHER_PROCESS, json.dumps(config)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["status"]


@pytest.mark.redis
def test_counters_are_shared_between_processes(limited_app, sandbox_server, redis_url, redis_client,
                                               tenant_ids):
    tenant_id = tenant_ids[0]
    assert call(limited_app, tenant_id).status_code == 200
    assert call_from_another_process(limited_app, sandbox_server, redis_url, tenant_id) == 200
    response = call(limited_app, tenant_id)
    assert_envelope(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    keys = list(redis_client.scan_iter(match=f"*tenant:{tenant_id}/*"))
    assert keys, "no counter in Redis"


@pytest.mark.redis
def test_the_other_process_is_refused_too(limited_app, sandbox_server, redis_url, tenant_ids):
    tenant_id = tenant_ids[0]
    for _ in range(2):
        assert call(limited_app, tenant_id).status_code == 200
    assert call_from_another_process(limited_app, sandbox_server, redis_url, tenant_id) == 429


@pytest.mark.redis
def test_limits_are_per_tenant(limited_app, tenant_ids):
    busy, quiet = tenant_ids
    for _ in range(2):
        assert call(limited_app, busy).status_code == 200
    assert call(limited_app, busy).status_code == 429
    assert call(limited_app, quiet).status_code == 200
    assert call(limited_app, quiet).status_code == 200
    assert call(limited_app, quiet).status_code == 429


@pytest.mark.redis
def test_session_users_count_against_their_tenant(limited_app, tenant_ids):
    with limited_app.app_context():
        slug = db.session.get(Tenant, tenant_ids[0]).slug
        user = User(email=f"member@{slug}.test", tenant_id=tenant_ids[0], role="member")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    browser = limited_app.test_client()
    browser.post("/login", data={"email": f"member@{slug}.test", "password": PASSWORD})
    assert browser.get(PATH).status_code == 200
    assert call(limited_app, tenant_ids[0]).status_code == 200  # a bearer caller of the same tenant
    assert_envelope(browser.get(PATH), 429, "rate_limited")
