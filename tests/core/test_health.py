"""Liveness, readiness and metrics."""

from __future__ import annotations

import pytest

UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/none"


@pytest.fixture
def app_without_db(build_app):
    return build_app(UNREACHABLE_DB, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_with_a_working_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": True}


@pytest.mark.postgres
def test_readyz_on_postgres(pg_app):
    assert pg_app.test_client().get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(app_without_db):
    client = app_without_db.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": False}
    assert "127.0.0.1:1" not in response.get_data(as_text=True)


def test_healthz_does_not_depend_on_the_database(app_without_db):
    assert app_without_db.test_client().get("/healthz").status_code == 200


def test_health_endpoints_need_no_login_and_are_not_rate_limited(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1/minute")
    client = app.test_client()
    for _ in range(30):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_metrics_serve_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "version=" in response.headers["Content-Type"]
    body = response.get_data(as_text=True)
    for name in ("meta_oauth_requests_total", "meta_graph_calls_total", "meta_api_response_time_seconds",
                 "meta_token_expires_in_hours", "meta_connections"):
        assert f"# TYPE {name} " in body, name


def test_every_response_carries_the_security_headers(client):
    for path in ("/healthz", "/login", "/nope"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_a_responses_own_security_header_is_kept_and_none_is_doubled(make_app):
    app = make_app(HSTS="max-age=60")

    @app.get("/own-policy")
    def own_policy():
        return "x", 200, {"content-security-policy": "default-src 'none'"}

    headers = app.test_client().get("/own-policy").headers
    assert headers.getlist("Content-Security-Policy") == ["default-src 'none'"]  # any case kept
    assert headers.getlist("X-Frame-Options") == ["DENY"]
    assert headers.getlist("Strict-Transport-Security") == ["max-age=60"]
