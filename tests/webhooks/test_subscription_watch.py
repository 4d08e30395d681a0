"""The periodic check of the app-level webhook subscription (issue 24): Meta unsubscribes an app
whose webhook keeps failing, and then no lead arrives. The `meta.webhooks.subscription` job
notices, marks the `webhook_subscription` verdict, tells operators once per episode (log, audit,
notice, the hub's banner, a gauge) and clears it when the subscription is back."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from crm_meta import jobs
from crm_meta.infra.database import db
from crm_meta.meta.errors import GraphError
from crm_meta.meta.webhooks import watch
from crm_meta.models import AppHealth, AuditEvent, NotificationOutbox
from crm_meta.runtime import of
from meta_sandbox import serve_in_thread
from tests.helpers.settings import APP_ID, APP_SECRET
from tests.helpers.users import PASSWORD
from tests.webhooks.conftest import VERIFY_TOKEN, subscribe

EVERY = timedelta(minutes=15)
BANNER = 'data-testid="webhooks-unsubscribed"'


@pytest.fixture
def watched(make_app, webhook_sink):
    """A live app whose operators get notices (a notification webhook)."""
    app = make_app(META_VERIFY_TOKEN=VERIFY_TOKEN, WEBHOOK_WAKE=False, NOTIFY_WEBHOOK_URL=webhook_sink.url,
                   NOTIFY_WEBHOOK_SECRET="notify-secret-for-tests")
    server = serve_in_thread(app)
    app.config["API_BASE_URL"] = server.url
    yield app, server.url
    server.shutdown()


def _check(app, at):
    with app.app_context():
        return watch.run(of(app).graph, app.config, now=at, every=EVERY, outbox=True)


def _audits(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(db.select(AuditEvent.action).where(
            AuditEvent.action.like("meta.webhooks.%")).order_by(AuditEvent.id)).all()


def _notices(app) -> list[NotificationOutbox]:
    with app.app_context():
        return db.session.scalars(db.select(NotificationOutbox).where(
            NotificationOutbox.event == "webhooks_unsubscribed")).all()


def _hub(app, email) -> str:
    client = app.test_client()
    client.post("/login", data={"email": email, "password": PASSWORD})
    return client.get("/crm/marketing").get_data(as_text=True)


def _gauge(app) -> str:
    body = app.test_client().get("/metrics").get_data(as_text=True)
    return next(line for line in body.splitlines() if line.startswith("meta_webhook_subscription_lost "))


def _unsubscribe(sandbox) -> None:
    """What Meta does to an app whose webhook failed for 8 hours (W16), through its own edge."""
    requests.delete(f"{sandbox.url}/v25.0/{APP_ID}/subscriptions", params={
        "object": "page", "access_token": f"{APP_ID}|{APP_SECRET}"}, timeout=10).raise_for_status()


def test_a_lost_subscription_is_told_once_shown_to_admins_and_cleared_when_back(
        watched, sandbox, make_tenant, webhook_sink):
    app, url = watched
    tenant = make_tenant("acme", app_=app)
    subscribe(sandbox, f"{url}/webhooks/meta")
    start = of(app).clock.now()
    assert _check(app, start).state == "ok"
    assert _audits(app) == []

    _unsubscribe(sandbox)
    sandbox.advance(EVERY.total_seconds())
    jobs.subscription_tick(app)  # the scheduled job, one interval later
    with app.app_context():
        row = db.session.get(AppHealth, watch.NAME)
        assert row.misconfigured and row.error_message == "no Page subscription"
    assert _audits(app) == ["meta.webhooks.unsubscribed"]
    [notice] = _notices(app)
    assert notice.tenant_id is None
    assert of(app).notifier.flush(timeout=10)
    assert [p["event"] for p in webhook_sink.payloads()] == ["meta.webhooks.unsubscribed"]
    page = _hub(app, tenant.admin_email)
    assert BANNER in page and "flask meta doctor --subscribe" in page
    assert BANNER not in _hub(app, tenant.member_email)
    assert _gauge(app).endswith(" 1.0")

    later = start + timedelta(hours=1)
    assert _check(app, later).state == "lost"  # the same episode: nobody is told again
    assert _check(app, later + timedelta(minutes=1)).state == "skipped"  # another process's lease
    assert _audits(app) == ["meta.webhooks.unsubscribed"]
    assert len(_notices(app)) == 1
    assert of(app).notifier.flush(timeout=10)
    assert len(webhook_sink.payloads()) == 1

    subscribe(sandbox, f"{url}/webhooks/meta")  # the operator ran `flask meta doctor --subscribe`
    back = _check(app, later + EVERY)
    assert (back.state, back.changed) == ("ok", True)
    assert _audits(app) == ["meta.webhooks.unsubscribed", "meta.webhooks.resubscribed"]
    assert BANNER not in _hub(app, tenant.admin_email)
    assert _gauge(app).endswith(" 0.0")


class FailingGraph:
    """Meta failing while the app's subscriptions are listed (an outage, a throttle)."""

    app_id, app_token = APP_ID, "app-token"

    def get(self, *args, **kwargs):
        raise GraphError("An unexpected error has occurred. Please retry your request later.", code=2)


def test_a_meta_error_while_checking_keeps_the_last_verdict(live_hook_app, sandbox):
    app, url = live_hook_app
    app.config["API_BASE_URL"] = url
    start = of(app).clock.now()
    assert _check(app, start).state == "lost"  # never subscribed
    with app.app_context():
        result = watch.run(FailingGraph(), app.config, now=start + EVERY, every=EVERY, outbox=True)
        assert result.state == "unknown"
        assert db.session.get(AppHealth, watch.NAME).misconfigured  # still lost: not cleared
    subscribe(sandbox, f"{url}/webhooks/meta")
    assert _check(app, start + 2 * EVERY).state == "ok"
    with app.app_context():
        result = watch.run(FailingGraph(), app.config, now=start + 3 * EVERY, every=EVERY, outbox=True)
        assert result.state == "unknown"
        assert not db.session.get(AppHealth, watch.NAME).misconfigured  # not "lost" either
    assert _audits(app) == ["meta.webhooks.unsubscribed", "meta.webhooks.resubscribed"]


@pytest.mark.parametrize("settings", [{"META_WEBHOOKS_ENABLED": False, "META_VERIFY_TOKEN": VERIFY_TOKEN},
                                      {"META_WEBHOOKS_ENABLED": True, "META_VERIFY_TOKEN": ""}],
                         ids=["webhooks off", "no verify token"])
def test_with_webhooks_off_nothing_is_checked(make_app, sandbox, settings):
    app = make_app(**settings)
    jobs.subscription_tick(app)
    with app.app_context():
        assert watch.run(FailingGraph(), app.config, now=of(app).clock.now(), every=EVERY,
                         outbox=True).state == "off"
        assert db.session.get(AppHealth, watch.NAME) is None
    assert _audits(app) == []


def test_the_check_is_a_scheduled_job_at_its_configured_interval(make_app):
    app = make_app(WEBHOOK_SUBSCRIPTION_CHECK_MINUTES=5)
    [spec] = [s for s in jobs.JOBS if s.id == "meta.webhooks.subscription"]
    assert spec.every(of(app)) == timedelta(minutes=5)
