"""What the alert rules and the dashboard need from /metrics, and who may read it."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from crm_meta import jobs, notify
from crm_meta.infra.database import db
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.versions import SUNSETS
from crm_meta.models import MetaConnection, NotificationOutbox
from crm_meta.ops import monitoring
from crm_meta.runtime import runtime
from tests.tools.configs import meta_settings

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def samples(client, **kwargs) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of one scrape."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- who may read ----------------------------------------------------------------------------
@pytest.mark.parametrize("address, status", [("127.0.0.1", 200), ("::1", 200), ("127.8.9.10", 200),
                                             ("203.0.113.9", 403), ("10.1.2.3", 403), ("", 403)])
def test_without_a_token_only_this_host_may_scrape(app, address, status):
    response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status
    if status == 403:
        assert b"meta_connections" not in response.data


@pytest.mark.parametrize("header, status", [
    (None, 401), ("Bearer wrong-token", 401), (f"Basic {METRICS_TOKEN}", 401),
    (f"Bearer {METRICS_TOKEN}x", 401), (f"Bearer {METRICS_TOKEN}", 200), (f"bearer {METRICS_TOKEN}", 200),
])
def test_with_a_token_every_scrape_needs_it_wherever_it_comes_from(make_app, header, status):
    client = make_app(METRICS_TOKEN=METRICS_TOKEN).test_client()
    for address in ("127.0.0.1", "198.51.100.7"):
        headers = {"Authorization": header} if header else {}
        response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})
        assert response.status_code == status
        assert (b"meta_connections" in response.data) is (status == 200)


def test_a_forwarded_loopback_is_not_loopback(make_app):
    """The review's reproduction: with TRUSTED_PROXIES=1, `X-Forwarded-For: 127.0.0.1` from a
    remote socket passed; only the socket's own peer counts."""
    client = make_app(TRUSTED_PROXIES=1).test_client()
    response = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"},
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403 and b"meta_connections" not in response.data


@pytest.mark.parametrize("trusted", [0, 1])
@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_same_host_proxy_relaying_a_remote_scrape_is_refused(make_app, trusted, header):
    """Behind a reverse proxy or sidecar on this host the socket is 127.0.0.1 for everyone."""
    client = make_app(TRUSTED_PROXIES=trusted).test_client()
    value = "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
    response = client.get("/metrics", headers={header: value},
                          environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 403


def test_production_without_a_token_serves_no_one(make_app):
    client = make_app(APP_ENV="production", METRICS_ALLOW_LOOPBACK=False).test_client()
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 401 and b"meta_connections" not in response.data


def test_production_opt_out_serves_unproxied_loopback(make_app):
    client = make_app(APP_ENV="production", METRICS_ALLOW_LOOPBACK=True).test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 403


@pytest.mark.parametrize("env, allowed", [
    ({"APP_ENV": "production"}, False), ({"APP_ENV": "production", "METRICS_ALLOW_LOOPBACK": "1"}, True),
    ({}, True), ({"METRICS_ALLOW_LOOPBACK": "0"}, False)])
def test_the_loopback_opt_out_defaults(env, allowed):
    from config import config_from_env

    assert config_from_env(env).METRICS_ALLOW_LOOPBACK is allowed


# -- per-scrape state ------------------------------------------------------------------------
def test_each_tenant_reports_its_status_expiry_and_whether_the_keepalive_can_still_extend(
        app, meta_flow, client):
    assert meta_flow.connect().status_code == 200
    found = samples(client)
    assert found[("meta_connection_status", (("status", "connected"), ("tenant", "acme")))] == 1
    assert found[("meta_token_extendable", (("tenant", "acme"),))] == 1
    assert 80 * 24 < found[("meta_data_access_expires_in_hours", (("tenant", "acme"),))] <= 90 * 24
    # The sweep tried to extend it inside the window and Meta gave nothing better: a reconnect
    # is the only way left.
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        row.extension_attempted_at = row.expires_at - timedelta(days=10)
        row.expires_at = runtime().clock.now() + timedelta(days=5)
        db.session.commit()
    found = samples(client)
    assert found[("meta_token_extendable", (("tenant", "acme"),))] == 0
    assert found[("meta_connection_status", (("status", "expiring"), ("tenant", "acme")))] == 1
    assert 4 * 24 < found[("meta_token_expires_in_hours", (("tenant", "acme"),))] <= 5 * 24


def test_an_extension_that_worked_keeps_the_token_extendable():
    row = MetaConnection(token_type="USER", expires_at=None, extension_attempted_at=None)
    assert monitoring.extendable(row) is False  # never expires: nothing to extend
    start = datetime(2027, 3, 1, tzinfo=UTC)
    row.expires_at = start + timedelta(days=10)
    assert monitoring.extendable(row) is True  # not tried yet
    row.extension_attempted_at = start
    assert monitoring.extendable(row) is False  # tried 10 days before the end: did not help
    row.expires_at = start + timedelta(days=59)
    assert monitoring.extendable(row) is True  # the try gave a fresh 60 days
    row.token_type = "SYSTEM_USER"
    assert monitoring.extendable(row) is True  # an expiring system-user token is refreshed too
    row.token_type = "PAGE"
    assert monitoring.extendable(row) is False  # the keep-alive exchanges only user and system-user tokens


def test_the_outbox_reports_pending_and_given_up_notices(app, tenant, client):
    with app.app_context():
        now = runtime().clock.now()
        notices = [notify.Notice.create(event="warning", tenant_id=tenant.tenant_id, status="expiring",
                                        now=now, kind="token", days=7) for _ in range(4)]
        rows = notify.outbox_rows(notices, now)
        rows[1].next_attempt_at = None  # given up
        rows[2].next_attempt_at = None
        rows[3].delivered_at, rows[3].next_attempt_at = now, None  # delivered: not counted
        db.session.add_all(rows)
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(NotificationOutbox)) == 4
    found = samples(client)
    assert found[("meta_notify_outbox_notices", (("state", "pending"),))] == 1
    assert found[("meta_notify_outbox_notices", (("state", "given_up"),))] == 2


def test_the_graph_version_reports_its_days_to_sunset(make_app):
    client = make_app(META_GRAPH_API_VERSION="v24.0").test_client()
    with client.application.app_context():
        today = runtime().clock.now().date()
    found = samples(client)
    assert found[("meta_graph_api_version_days_to_sunset", (("version", "v24.0"),))] == (
        SUNSETS["v24.0"] - today).days


@pytest.mark.parametrize("version, today, expected", [
    ("v20.0", date(2027, 2, 1), 0),  # retired before the table's dates
    ("v21.0", date(2027, 2, 1), 0),  # its sunset has passed
    ("v25.0", SUNSETS["v25.0"] - timedelta(days=31), 31),
    ("v26.0", date(2027, 2, 1), None),  # no sunset announced
    ("v99.0", date(2027, 2, 1), None),  # unknown here (a warning is logged at start)
])
def test_days_to_sunset(version, today, expected):
    assert monitoring.days_to_sunset(version, today) == expected


# -- counters and gauges kept by the process -------------------------------------------------
def test_oauth_callbacks_count_by_outcome(meta_flow):
    connected, invalid = value("meta_oauth_callbacks_total", outcome="connected"), value(
        "meta_oauth_callbacks_total", outcome="invalid_state")
    assert meta_flow.connect().status_code == 200
    assert meta_flow.client.get("/crm/auth/meta/callback?state=nope&code=x").status_code == 400
    assert value("meta_oauth_callbacks_total", outcome="connected") == connected + 1
    assert value("meta_oauth_callbacks_total", outcome="invalid_state") == invalid + 1


def test_a_scheduled_sweep_records_its_success_duration_and_outcomes(app, meta_flow):
    assert meta_flow.connect().status_code == 200
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        row.next_check_at = None  # due now
        db.session.commit()
    completed, valid = value("meta_keepalive_sweeps_total", result="completed"), value(
        "meta_keepalive_checks_total", outcome="valid")
    durations = value("meta_keepalive_sweep_duration_seconds_count")
    before = time.time()
    jobs.keepalive_tick(app)
    assert value("meta_keepalive_sweeps_total", result="completed") == completed + 1
    assert value("meta_keepalive_checks_total", outcome="valid") == valid + 1
    assert value("meta_keepalive_sweep_duration_seconds_count") == durations + 1
    assert value("meta_keepalive_sweep_last_success_timestamp_seconds") >= before


def test_a_sweep_that_fails_is_no_success(app, monkeypatch):
    jobs.keepalive_tick(app)
    last = value("meta_keepalive_sweep_last_success_timestamp_seconds")
    failed = value("meta_keepalive_sweeps_total", result="failed")

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(jobs, "run_sweep", broken)
    jobs.keepalive_tick(app)
    assert value("meta_keepalive_sweeps_total", result="failed") == failed + 1
    assert value("meta_keepalive_sweep_last_success_timestamp_seconds") == last


def test_the_scheduler_exports_its_interval_and_starts_the_clock(make_app):
    app = make_app(KEEPALIVE_TICK_MINUTES=7)
    try:
        jobs.start(app)
        assert value("meta_keepalive_sweep_interval_seconds") == 7 * 60
        assert value("meta_keepalive_sweep_last_success_timestamp_seconds") > time.time() - 60
    finally:
        jobs.shutdown()


def test_meta_throttling_the_whole_app_is_counted(requests_mock):
    graph = GraphClient(meta_settings(base_url="https://graph.test", version="v25.0", app_id="42",
                                      app_secret="s", http_retries=0), sleep=lambda seconds: None)
    code_4, usage = value("meta_app_throttled_total", cause="code_4"), value(
        "meta_app_throttled_total", cause="app_usage")
    requests_mock.get("https://graph.test/v25.0/me", json={"id": "1"},
                      headers={"x-app-usage": json.dumps({"call_count": 100})})
    graph.get("me", token="EAAx")
    assert value("meta_app_usage_percent") == 100
    assert value("meta_app_throttled_total", cause="app_usage") == usage + 1
    graph._cooldown_until = None
    requests_mock.get("https://graph.test/v25.0/me", status_code=400,
                      json={"error": {"code": 4, "message": "Application request limit reached"}},
                      headers={"x-app-usage": json.dumps({"call_count": 42})})
    with pytest.raises(Exception, match="limit"):
        graph.get("me", token="EAAx")
    assert value("meta_app_throttled_total", cause="code_4") == code_4 + 1
    assert value("meta_app_usage_percent") == 42
