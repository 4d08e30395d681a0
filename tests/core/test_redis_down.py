"""Redis unreachable: rate limits fall back to in-process counters (warning and metric), the
routes keep answering, and /readyz says Redis is degraded."""

from __future__ import annotations

import logging
import socket

import pytest
from prometheus_client import REGISTRY

from tests.helpers.users import bearer

FALLBACKS = "meta_ratelimit_storage_fallbacks_total"


@pytest.fixture
def dead_redis_url():
    """A port where nothing listens: bound but never listening, so connections are refused
    and no other process can take the port meanwhile."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{placeholder.getsockname()[1]}/0"


def redis_app(make_app, url: str):
    return make_app(REDIS_URL=url, RATELIMIT_STORAGE_URI=url, RATELIMIT_ENABLED=True,
                    RATELIMIT_META_URL="3/minute")


def fallbacks() -> float:
    return REGISTRY.get_sample_value(FALLBACKS) or 0.0


def test_rate_limited_routes_keep_working_on_in_process_counters(make_app, make_tenant,
                                                                  dead_redis_url, caplog):
    app = redis_app(make_app, dead_redis_url)
    tenant = make_tenant("acme", app_=app)
    client = app.test_client()
    before = fallbacks()

    with caplog.at_level(logging.WARNING):
        codes = [client.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id)).status_code
                 for _ in range(4)]

    assert codes == [200, 200, 200, 429]  # still limited, counted in this process
    assert fallbacks() == before + 1  # one switch, not one per request
    warnings = [r for r in caplog.records if r.name == "crm_meta.auth.ratelimits"]
    assert len(warnings) == 1 and "in this process" in warnings[0].getMessage()
    assert dead_redis_url not in caplog.text


def test_readyz_reports_redis_degraded_and_stays_ready(make_app, dead_redis_url):
    app = redis_app(make_app, dead_redis_url)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "degraded", "database": True, "redis": "degraded"}


def test_readyz_without_redis_configured_says_nothing_about_it(client):
    assert client.get("/readyz").get_json() == {"status": "ok", "database": True}


@pytest.mark.redis
def test_readyz_with_redis_up(make_app, redis_url):
    response = redis_app(make_app, redis_url).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": True, "redis": "ok"}
