"""The per-process status cache: zero round trips once warm, every auth check still made, and
kept true across processes by PostgreSQL LISTEN/NOTIFY (never a stale answer while it cannot
hear the notifications)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_meta.auth.principal import mint_jwt
from crm_meta.infra import statuscache
from crm_meta.infra.database import db
from tests.helpers.responses import assert_envelope
from tests.helpers.sandbox import MetaFlow
from tests.helpers.settings import JWT_SECRET, testing_config
from tests.helpers.users import AuthActions, add_tenant, bearer
from tests.helpers.waiting import wait_for
from tests.tools.tcp_proxy import TcpProxy
from tests.tools.wire import counting_connection

pytestmark = pytest.mark.postgres
STATUS = "/crm/marketing/token-status"
ROOT = Path(__file__).resolve().parents[2]
TTL = 60.0
# The other process: the same app, disconnecting the tenant through the API.
ELSEWHERE = """
import json, sys
from config import TestingConfig
from crm_meta.app import create_app
settings, headers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
response = create_app(TestingConfig(**settings)).test_client().post(
    "/crm/auth/meta/disconnect", headers=headers)
assert response.status_code == 200, response.get_data(as_text=True)
"""
SHARED = ("SQLALCHEMY_DATABASE_URI", "META_APP_ID", "META_APP_SECRET", "META_REDIRECT_URI",
          "META_MODE", "META_DIALOG_URL", "META_GRAPH_URL", "ENCRYPTION_KEY", "SECRET_KEY",
          "JWT_SECRET_KEY", "RATELIMIT_ENABLED")


def cache_of(app) -> statuscache.StatusCache:
    with app.app_context():
        cache = statuscache.for_engine(db.engine, TTL)
    wait_for(lambda: cache.generation() is not None, "the listener to be in place")
    return cache


@pytest.fixture
def cached(make_app, postgres_url, sandbox):
    """A PostgreSQL app with the cache on, a tenant connected through the sandbox, and what its
    driver sends."""
    connection_class, sent = counting_connection()
    options = dict(testing_config("", postgres_url).SQLALCHEMY_ENGINE_OPTIONS,
                   connect_args={"connection_factory": connection_class})
    app = make_app(database_url=postgres_url, STATUS_CACHE_SECONDS=TTL,
                   SQLALCHEMY_ENGINE_OPTIONS=options)
    tenant = add_tenant(app, "acme")
    client = app.test_client()
    AuthActions(client).login(tenant.admin_email)
    assert MetaFlow(client, sandbox).connect().status_code == 200
    AuthActions(client).logout()
    cache = cache_of(app)
    yield app, tenant, cache, sent
    cache.close()


def status(app, tenant, **headers):
    return app.test_client().get(STATUS, headers=bearer(tenant.tenant_id, "member", **headers))


def test_a_warm_status_read_costs_no_round_trip(cached):
    app, tenant, cache, sent = cached
    assert status(app, tenant).get_json()["data"]["connected"] is True  # fills the cache
    sent.clear()
    response = status(app, tenant)
    assert response.status_code == 200 and response.get_json()["data"]["connected"] is True
    assert sent == []


def test_every_auth_check_still_applies_on_a_cache_hit(cached):
    app, tenant, cache, sent = cached
    assert status(app, tenant).status_code == 200
    sent.clear()
    assert_envelope(status(app, tenant, **{"X-Tenant-ID": "999"}), 403, "tenant_mismatch")
    assert status(app, tenant, **{"X-Tenant-ID": "acme"}).status_code == 200
    client = app.test_client()
    stranger = {"Authorization": "Bearer " + mint_jwt(JWT_SECRET, tenant_id=tenant.tenant_id,
                                                      sub="9", role="guest")}
    assert_envelope(client.get(STATUS, headers=stranger), 403, "unknown_role")
    expired = {"Authorization": "Bearer " + mint_jwt(JWT_SECRET, tenant_id=tenant.tenant_id,
                                                     sub="9", role="admin", ttl=-10)}
    assert_envelope(client.get(STATUS, headers=expired), 401, "token_expired")
    assert sent == []  # all answered from the cache, each check made
    by_slug = client.get(STATUS, headers=bearer("acme"))  # cached under its own key
    assert by_slug.status_code == 200 and by_slug.get_json()["data"]["connected"] is True


def test_a_disconnect_in_another_process_reaches_this_one(cached):
    app, tenant, cache, sent = cached
    assert status(app, tenant).get_json()["data"]["connected"] is True
    settings = {key: app.config[key] for key in SHARED}
    before = cache.generation()
    done = subprocess.run([sys.executable, "-c", ELSEWHERE, json.dumps(settings),
                           json.dumps(bearer(tenant.tenant_id))], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert cache.wait_for_invalidation(before, timeout=30)  # the NOTIFY arrived
    data = status(app, tenant).get_json()["data"]
    assert data["connected"] is False and data["status"] == "disconnected"


def test_a_tenant_deleted_elsewhere_is_refused_again(cached, postgres_url):
    app, tenant, cache, sent = cached
    assert status(app, tenant).status_code == 200
    before = cache.generation()
    elsewhere = create_engine(postgres_url)
    with elsewhere.begin() as conn:
        conn.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": tenant.tenant_id})
    elsewhere.dispose()
    assert cache.wait_for_invalidation(before, timeout=30)
    assert_envelope(status(app, tenant), 401, "unknown_tenant")


def test_a_write_in_this_process_is_seen_at_once(cached):
    app, tenant, cache, sent = cached
    client = app.test_client()
    assert status(app, tenant).get_json()["data"]["connected"] is True
    assert client.post("/crm/auth/meta/disconnect", headers=bearer(tenant.tenant_id)).status_code == 200
    # No waiting for the notification: the commit itself cleared this process's cache.
    assert status(app, tenant).get_json()["data"]["connected"] is False


def test_nothing_is_served_from_the_cache_while_the_listener_cannot_hear(make_app, postgres_url):
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        app = make_app(database_url=url.set(host="127.0.0.1", port=proxy.port)
                       .render_as_string(hide_password=False), STATUS_CACHE_SECONDS=TTL)
        tenant = add_tenant(app, "acme")
        cache = cache_of(app)
        assert status(app, tenant).status_code == 200
        assert status(app, tenant).status_code == 200  # from the cache now

        proxy.cut()  # PostgreSQL restarts: the listener's connection is gone too
        wait_for(lambda: cache.generation() is None, "the listener to notice")
        assert_envelope(status(app, tenant), 503, "database_unavailable")  # not a cached answer

        proxy.restore()
        wait_for(lambda: cache.generation() is not None, "the listener to come back")
        assert status(app, tenant).status_code == 200
        cache.close()
    finally:
        proxy.cut()


def test_a_black_holed_listener_is_noticed_by_its_ping_timeout(make_app, postgres_url, monkeypatch):
    """Review 2: the listener's ping had no timeout; a connection that gets no answer (and no
    reset) held the listener forever. Now the ping gives up and nothing is served stale."""
    monkeypatch.setattr(statuscache, "PING_EVERY", 0.2)
    monkeypatch.setattr(statuscache, "PING_TIMEOUT", 0.5)
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        app = make_app(database_url=url.set(host="127.0.0.1", port=proxy.port)
                       .render_as_string(hide_password=False), STATUS_CACHE_SECONDS=TTL)
        add_tenant(app, "acme")
        cache = cache_of(app)
        proxy.freeze()  # no byte passes, no connection is reset
        wait_for(lambda: cache.generation() is None, "the ping to give up", limit=30)
        cache.close()
    finally:
        proxy.cut()


def test_a_lead_access_verdict_written_elsewhere_reaches_this_process(cached, build_app, postgres_url):
    """The lead-access columns are read with the status: the trigger watches them (migration
    0012), so their writer's commit reaches every process with nothing announced by hand."""
    from crm_meta.meta.webhooks import leads
    from crm_meta.runtime import of

    app, tenant, cache, sent = cached
    assert status(app, tenant).get_json()["data"]["leads_access"]["state"] is None  # now cached
    elsewhere = build_app(postgres_url)  # another process: its own engine and cache
    before = cache.generation()
    with elsewhere.app_context():
        leads.record_access(tenant.tenant_id, "blocked", "(#200) no leads access", of(elsewhere).clock.now())
    assert cache.wait_for_invalidation(before, timeout=30)  # the announcement arrived
    access = status(app, tenant).get_json()["data"]["leads_access"]
    assert access["state"] == "blocked" and access["error"] == "(#200) no leads access"


@pytest.mark.parametrize("change", [
    "UPDATE meta_tokens SET leads_access = 'blocked' WHERE tenant_id = :id",
    "UPDATE meta_tokens SET leads_access_error = '(#200) no leads access' WHERE tenant_id = :id",
    "UPDATE meta_tokens SET leads_access_at = now() WHERE tenant_id = :id"])
def test_lead_access_written_by_plain_sql_elsewhere_reaches_this_process(cached, postgres_url, change):
    """Whoever writes a lead-access column, crm-meta or not, the trigger tells every process
    (migration 0012; before it only crm-meta's writer announced its own changes)."""
    app, tenant, cache, sent = cached
    before_read = status(app, tenant).get_json()["data"]["leads_access"]  # now cached
    before = cache.generation()
    elsewhere = create_engine(postgres_url)
    with elsewhere.begin() as conn:
        conn.execute(text(change), {"id": tenant.tenant_id})
    elsewhere.dispose()
    assert cache.wait_for_invalidation(before, timeout=30)  # the NOTIFY arrived
    assert status(app, tenant).get_json()["data"]["leads_access"] != before_read
