"""The periodic check of the app-level webhook subscription (issue 24): Meta unsubscribes an app
whose webhook keeps failing, and then no lead arrives. The `meta.webhooks.subscription` job
notices, marks the `webhook_subscription` verdict, tells operators once per episode (log, audit,
notice, the hub's banner, a gauge) and clears it when the subscription is back."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from crm_meta import jobs, notify
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
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
def serve(make_app, webhook_sink):
    """Live apps whose operators get notices (a notification webhook)."""
    servers = []

    def start(**settings):
        app = make_app(META_VERIFY_TOKEN=VERIFY_TOKEN, WEBHOOK_WAKE=False,
                       NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_WEBHOOK_SECRET="notify-secret-for-tests",
                       **settings)
        servers.append(serve_in_thread(app))
        app.config["API_BASE_URL"] = servers[-1].url
        return app, servers[-1].url

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def watched(serve):
    """A live app that leaves re-subscribing to an operator (as before it could do it itself)."""
    return serve(META_WEBHOOKS_AUTO_RESUBSCRIBE=False)


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
    assert not [s for s in _listed(sandbox) if s["object"] == "page"]  # left to an operator (setting off)
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
    app.config["META_WEBHOOKS_AUTO_RESUBSCRIBE"] = False  # the operator subscribes, below
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


# -- re-subscribing on its own (META_WEBHOOKS_AUTO_RESUBSCRIBE, on by default) ----------------------
def _listed(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.url}/v25.0/{APP_ID}/subscriptions",
                        params={"access_token": f"{APP_ID}|{APP_SECRET}"}, timeout=10).json()["data"]


def _outcomes(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(db.select(AuditEvent.action, AuditEvent.outcome).where(
            AuditEvent.action.like("meta.webhooks.%")).order_by(AuditEvent.id))]


def _told(app) -> dict[str, notify.Notice]:
    """The operators' notices about the subscription, by event."""
    with app.app_context():
        found = [notify.to_notice(r) for r in db.session.scalars(db.select(NotificationOutbox).where(
            NotificationOutbox.event.like("webhooks_%")))]
    assert len({n.event for n in found}) == len(found)  # one of each per episode
    return {n.event: n for n in found}


def _subscription_posts(sandbox) -> int:
    return len([c for c in sandbox.calls(f"/{APP_ID}/subscriptions") if c["method"] == "POST"])




@pytest.fixture
def healing(serve, sandbox):
    """A live app with the defaults (it re-subscribes on its own), subscribed at Meta."""
    app, url = serve()
    assert app.config["META_WEBHOOKS_AUTO_RESUBSCRIBE"] is True
    subscribe(sandbox, f"{url}/webhooks/meta")
    start = of(app).clock.now()
    assert _check(app, start).state == "ok"
    return app, url, start


def test_a_lost_subscription_is_restored_on_its_own_and_told_with_the_backfill(
        healing, sandbox, make_tenant, webhook_sink):
    app, url, start = healing
    tenant = make_tenant("acme", app_=app)
    _unsubscribe(sandbox)
    assert not [s for s in _listed(sandbox) if s["object"] == "page"]
    sandbox.advance(EVERY.total_seconds())
    lost_at = of(app).clock.now()
    jobs.subscription_tick(app)  # the scheduled job, one interval later

    [page] = [s for s in _listed(sandbox) if s["object"] == "page"]  # Meta lists it again
    assert page["callback_url"] == f"{url}/webhooks/meta"
    assert "leadgen" in {f["name"] if isinstance(f, dict) else f for f in page["fields"]}
    assert _outcomes(app) == [("meta.webhooks.unsubscribed", "failure"),  # the episode, as it was
                              ("meta.webhooks.auto_resubscribe", "success"),
                              ("meta.webhooks.resubscribed", "success")]
    with app.app_context():
        row = db.session.get(AppHealth, watch.NAME)
        assert not row.misconfigured and row.error_message is None
        assert abs(row.since - lost_at) < timedelta(seconds=5)  # the lost transition, kept
    told = _told(app)
    assert set(told) == {"webhooks_unsubscribed", "webhooks_resubscribed"}
    restored = told["webhooks_resubscribed"]
    assert restored.since == iso(row.since.replace(microsecond=0))
    assert "subscribed it again on its own" in restored.text()
    command = f"flask leads backfill --tenant <slug> --since {restored.since}"
    assert command in restored.text()
    assert of(app).notifier.flush(timeout=10)
    assert sorted(p["event"] for p in webhook_sink.payloads()) == ["meta.webhooks.resubscribed",
                                                                   "meta.webhooks.unsubscribed"]
    # the command the notice names takes these arguments (the tenant has no Meta connection here)
    args = command.replace("<slug>", tenant.slug).split()[1:]
    backfill = app.test_cli_runner().invoke(args=args)
    assert "has no Meta connection" in backfill.output, backfill.output
    assert BANNER not in _hub(app, tenant.admin_email)
    assert _gauge(app).endswith(" 0.0")

    later = start + 3 * EVERY
    assert (_check(app, later).state, _check(app, later + EVERY).changed) == ("ok", False)
    assert len(_told(app)) == 2


def test_meta_refusing_keeps_it_lost_with_its_message_and_the_next_run_tries_again(healing, sandbox):
    app, url, start = healing
    _unsubscribe(sandbox)
    # The callback refuses the verification Meta makes first (here: a verify token it does not
    # know, as after rotating it in one process only), so Meta refuses the subscription.
    refused = {**app.config, "META_VERIFY_TOKEN": "rotated-0123456789-abcdefghijklmn"}
    posts = _subscription_posts(sandbox)

    def run(at, config=refused):
        with app.app_context():
            return watch.run(of(app).graph, config, now=at, every=EVERY, outbox=True)

    first = run(start + EVERY)
    assert (first.state, first.changed, len(first.notices)) == ("lost", True, 1)
    with app.app_context():
        row = db.session.get(AppHealth, watch.NAME)
        assert row.misconfigured
        assert row.error_message.startswith("no Page subscription; re-subscribing: Meta refused: (#2200) "
                                            "Callback verification failed")
    assert _subscription_posts(sandbox) == posts + 1
    assert run(start + EVERY + timedelta(minutes=1)).state == "skipped"  # not before the interval
    assert _subscription_posts(sandbox) == posts + 1
    again = run(start + 2 * EVERY)
    assert (again.state, again.changed, again.notices) == ("lost", False, ())  # no second notice
    assert _subscription_posts(sandbox) == posts + 2
    assert list(_told(app)) == ["webhooks_unsubscribed"]
    assert _outcomes(app) == [("meta.webhooks.unsubscribed", "failure"),
                              ("meta.webhooks.auto_resubscribe", "failure"),
                              ("meta.webhooks.auto_resubscribe", "failure")]

    back = run(start + 3 * EVERY, app.config)  # the callback answers again
    assert (back.state, back.changed, len(back.notices)) == ("restored", True, 1)
    assert [s["callback_url"] for s in _listed(sandbox) if s["object"] == "page"] == [f"{url}/webhooks/meta"]
    told = _told(app)
    assert set(told) == {"webhooks_unsubscribed", "webhooks_resubscribed"}
    with app.app_context():
        row = db.session.get(AppHealth, watch.NAME)
        assert not row.misconfigured
        assert told["webhooks_resubscribed"].since == iso(row.since.replace(microsecond=0))
        assert row.since == start + EVERY  # the episode began when it was first found lost


def test_a_subscription_sent_to_another_url_is_not_taken_over(healing, serve, sandbox):
    """Meta keeps one callback per object: one to another URL may be another deployment's (staging
    on the same app, the new host of a move); taking it back each interval would be a tug of war."""
    app, _, start = healing
    other_app, other_url = serve()  # another deployment of the same Meta app
    subscribe(sandbox, f"{other_url}/webhooks/meta")
    posts = _subscription_posts(sandbox)
    result = _check(app, start + EVERY)
    assert (result.state, result.changed, len(result.notices)) == ("lost", True, 1)
    assert _subscription_posts(sandbox) == posts  # nothing asked of Meta
    theirs = f"{other_url}/webhooks/meta"
    assert [s["callback_url"] for s in _listed(sandbox) if s["object"] == "page"] == [theirs]
    with app.app_context():
        row = db.session.get(AppHealth, watch.NAME)
        assert row.error_message == f"the Page subscription goes to {theirs}"
    assert _outcomes(app) == [("meta.webhooks.unsubscribed", "failure")]
    assert list(_told(app)) == ["webhooks_unsubscribed"]
    assert _check(other_app, start + EVERY).state == "ok"  # the owner's verdict


def test_a_subscription_here_without_leadgen_gets_it_back(healing, sandbox):
    app, url, start = healing
    _unsubscribe(sandbox)
    made = requests.post(f"{sandbox.url}/v25.0/{APP_ID}/subscriptions", data={  # this callback, messages only
        "object": "page", "callback_url": f"{url}/webhooks/meta", "fields": "messages",
        "verify_token": VERIFY_TOKEN, "access_token": f"{APP_ID}|{APP_SECRET}"}, timeout=10)
    assert made.status_code == 200, made.text
    result = _check(app, start + EVERY)
    assert (result.state, len(result.notices)) == ("restored", 2)
    [page] = [s for s in _listed(sandbox) if s["object"] == "page"]
    assert {f["name"] for f in page["fields"]} == {"leadgen", "messages"}
