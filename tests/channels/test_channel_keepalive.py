"""The keep-alive sweep watches the chosen channels: a dropped subscription and a Page token Meta
no longer accepts are each warned once (banner, webhook, e-mail through the outbox) and recover
when the admin chooses the channel again or reconnects."""

from __future__ import annotations

from crm_meta.infra.database import db
from crm_meta.models import MetaChannel, MetaConnection, NotificationOutbox
from crm_meta.runtime import of
from tests.channels.conftest import FIRST_PAGE, PHONE, WABA, Panel
from tests.helpers.database import audit_events
from tests.helpers.keepalive import sweep
from tests.notify.conftest import FakeSMTP

SECRET = "channel-webhook-secret-0123456789"


def channel(app, asset_id: str) -> MetaChannel:
    with app.app_context():
        found = db.session.scalar(db.select(MetaChannel).filter_by(asset_id=asset_id))
        db.session.expunge(found)
        return found


def check(app):
    with app.app_context():
        row_id = db.session.scalar(db.select(MetaConnection.id))
    return sweep(app, row_ids=[row_id], forced=True)


def test_lost_subscriptions_and_dead_page_tokens_are_warned_once_and_recover(
        make_app, make_tenant, sandbox, webhook_sink):
    app = make_app(NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_WEBHOOK_SECRET=SECRET)
    tenant = make_tenant("chan", app_=app)
    panel = Panel(app.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect().status_code == 200
    assert panel.select([FIRST_PAGE, PHONE]).status_code == 200
    assert check(app).channel_notices == []  # all well: nothing said

    sandbox.post(f"subscriptions/{WABA}/drop")  # someone removed the app from the WhatsApp account
    report = check(app)
    assert [(n.event, n.kind, n.asset_id) for n in report.channel_notices] == [
        ("channel_lost", "subscription_lost", WABA)]
    assert check(app).channel_notices == []  # warned once
    assert channel(app, WABA).trouble == "subscription_lost"
    assets = {a["asset_id"]: a for a in panel.status()["assets"]}
    assert assets[WABA]["metadata"]["trouble"] == "subscription_lost"  # the panel can show it

    sandbox.post(f"pages/{FIRST_PAGE}/invalidate-tokens")  # the Page's tokens die
    report = check(app)
    assert [(n.kind, n.asset_id) for n in report.channel_notices] == [("token_invalid", FIRST_PAGE)]
    assert check(app).channel_notices == []
    assert of(app).notifier.flush(timeout=30)
    kinds = sorted(p["kind"] for p in webhook_sink.payloads())
    assert kinds == ["subscription_lost", "token_invalid"]
    assert all(p["event"] == "meta.channel.lost" for p in webhook_sink.payloads())
    assert len(audit_events(app, "meta.keepalive.channel_lost")) == 2
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(NotificationOutbox)) == 2

    # The admin chooses the same channels again: a new Page token, both subscribed again.
    assert panel.select([FIRST_PAGE, PHONE]).status_code == 200
    held = sandbox.get("subscriptions")["data"]
    assert set(held) == {FIRST_PAGE, WABA}
    assert (channel(app, FIRST_PAGE).trouble, channel(app, WABA).trouble) == (None, None)
    assert check(app).channel_notices == []

    # Lost again later: warned again (a new episode); a reconnect repairs it by itself.
    sandbox.post(f"subscriptions/{FIRST_PAGE}/drop")
    assert [n.asset_id for n in check(app).channel_notices] == [FIRST_PAGE]
    assert panel.connect().status_code == 200
    assert FIRST_PAGE in sandbox.get("subscriptions")["data"]
    assert channel(app, FIRST_PAGE).trouble is None
    assert check(app).channel_notices == []


def test_a_lost_channel_is_e_mailed_to_the_tenants_admins(make_app, make_tenant, sandbox):
    """The e-mail path on its own: the channel's notice goes through the outbox to the tenant's
    admins over SMTP (a stand-in server), naming the channel and how to mend it."""
    app = make_app(SMTP_HOST="smtp.example", SMTP_FROM="crm@example.com")
    FakeSMTP.sent = []
    of(app).notifier.smtp_factory = FakeSMTP
    tenant = make_tenant("mail", app_=app)
    panel = Panel(app.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect().status_code == 200
    assert panel.select([FIRST_PAGE]).status_code == 200

    sandbox.post(f"subscriptions/{FIRST_PAGE}/drop")
    [notice] = check(app).channel_notices
    assert notice.recipients == (tenant.admin_email,)
    assert of(app).notifier.flush(timeout=30)
    [(server, message)] = FakeSMTP.sent
    assert server.tls  # STARTTLS before anything is sent
    assert message["To"] == tenant.admin_email
    assert message["Subject"].startswith("A Meta channel stopped working")
    body = message.get_content()
    assert "lost its webhook subscription at Meta" in body and "choose it again" in body
    with app.app_context():
        [row] = db.session.scalars(db.select(NotificationOutbox)).all()
        assert row.delivered_at is not None and row.channels_done == ["email"]
