"""App-wide failures are not the tenants' (a reset app secret strikes nobody), expiring
system-user tokens are refreshed, and a live check is fenced like the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_meta.auth.principal import mint_jwt
from crm_meta.infra.database import db
from crm_meta.meta import tokens
from crm_meta.meta.keepalive import deadlines, verdicts
from crm_meta.meta.keepalive.probing import Probe
from crm_meta.models import AppHealth, AuditEvent, MetaConnection, NotificationOutbox
from crm_meta.runtime import of, runtime
from tests.helpers.keepalive import Connections, sweep
from tests.helpers.users import PASSWORD

DAY = 86400
SECRET = "webhook-secret-for-tests"
WRONG = "a-secret-reset-at-meta-000000"


def second_process(make_app, app, **overrides):
    """Another process on the same database (e.g. after META_APP_SECRET was changed)."""
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], schema=False, **overrides)


def metric(app, name: str) -> str:
    body = app.test_client().get("/metrics").get_data(as_text=True)
    return next(line for line in body.splitlines() if line.startswith(name + " "))


def test_a_wrong_app_secret_stops_the_sweep_and_strikes_nobody(make_app, sandbox, webhook_sink, debug_calls):
    app = make_app(NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_WEBHOOK_SECRET=SECRET)
    connections = Connections(app, sandbox)
    conns = [connections.add() for _ in range(3)]
    # One check at a time, so that "the sweep stops at the first refusal" is exact (with more
    # workers, the checks already in flight end the same way: no verdict, no strike).
    broken = second_process(make_app, app, META_APP_SECRET=WRONG, KEEPALIVE_CONCURRENCY=1,
                            NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_WEBHOOK_SECRET=SECRET)

    first, second = sweep(broken), sweep(broken, row_ids=[c.row_id for c in conns], forced=True)

    for report in (first, second):  # the first refusal stops the sweep: one debug_token each
        assert [o.kind for o in report.outcomes if o.kind != "skipped"] == ["app_misconfigured"]
    assert sum(debug_calls().values()) == 2
    for conn in conns:  # reproduced before: two sweeps marked every tenant needs_reauth
        row = connections.row(conn)
        assert (row.status, row.consecutive_failures, row.last_error) == ("connected", 0, None)
        assert row.claimed_by is None
    with broken.app_context():
        health = db.session.get(AppHealth, "meta_app")
        assert health.misconfigured and health.error_code == "190"
        assert WRONG not in (health.error_message or "")
        events = db.session.scalars(db.select(AuditEvent.action).where(
            AuditEvent.action.like("meta.app.%"))).all()
        assert events == ["meta.app.misconfigured"]  # told once, however many sweeps
        [queued] = db.session.scalars(db.select(NotificationOutbox)).all()
        assert queued.tenant_id is None and queued.event == "app_misconfigured"
    assert of(broken).notifier.flush(timeout=30)
    [payload] = webhook_sink.payloads()
    assert payload["event"] == "meta.app.misconfigured" and payload["tenant"]["id"] is None
    worker = second_process(make_app, app, META_APP_SECRET=WRONG)  # another worker, same config
    for process in (broken, worker):  # every process reports it (stored, not in memory)
        assert metric(process, "meta_app_misconfigured") == "meta_app_misconfigured 1.0"
    # A process already given the right secret does not inherit a verdict about the wrong one.
    assert metric(app, "meta_app_misconfigured") == "meta_app_misconfigured 0.0"

    # Meta accepts that credential again (here: the right one checks, then the verdict is read
    # by credential): a check that Meta answers clears the stored verdict for it.
    with broken.app_context():
        db.session.execute(db.update(AppHealth).values(credential=app.extensions["crm_meta"].graph.credential))
        db.session.commit()
    assert metric(app, "meta_app_misconfigured") == "meta_app_misconfigured 1.0"
    sweep(app, row_ids=[conns[0].row_id], forced=True)
    assert metric(app, "meta_app_misconfigured") == "meta_app_misconfigured 0.0"
    with app.app_context():
        assert db.session.scalars(db.select(AuditEvent.action).where(
            AuditEvent.action == "meta.app.recovered")).all() == ["meta.app.recovered"]


def login(app, email):
    client = app.test_client()
    client.post("/login", data={"email": email, "password": PASSWORD})
    return client


def test_the_hub_tells_admins_and_test_connection_names_it(make_app, sandbox, make_tenant):
    app = make_app()
    tenant = make_tenant("acme", app_=app)
    Connections(app, sandbox)  # nothing stored yet for acme: connect it through the store
    minted = sandbox.post("tokens", user_id="7000999")
    with app.app_context():
        row = MetaConnection(tenant_id=tenant.tenant_id, warnings_sent={}, status="connected",
                        scopes=list(app.config["META_SCOPES"]), meta_user_id="7000999")
        runtime().store.replace(row, minted["access_token"])
        db.session.add(row)
        db.session.commit()
    broken = second_process(make_app, app, META_APP_SECRET=WRONG)
    token = mint_jwt(broken.config["JWT_SECRET_KEY"], tenant_id=tenant.tenant_id, sub="1", role="admin")
    response = broken.test_client().get("/crm/auth/meta/test-connection",
                                        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "meta_app_misconfigured"
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection.status)) == "connected"
    admin_page = login(broken, tenant.admin_email).get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="app-misconfigured"' in admin_page
    assert "The Meta app is misconfigured" in admin_page
    member_page = login(broken, tenant.member_email).get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="app-misconfigured"' not in member_page
    # The right credential (this process) does not see a verdict about the wrong one.
    right_page = login(app, tenant.admin_email).get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="app-misconfigured"' not in right_page


def test_expiring_system_user_tokens_are_refreshed_ahead_of_their_end(app, sandbox, debug_calls):
    connections = Connections(app, sandbox)
    expiring = connections.add(type="SYSTEM_USER", expires_in=5 * DAY)
    never = connections.add(type="SYSTEM_USER")  # expires_in 0: never expires

    report = sweep(app)

    assert report.counts()["extended"] == 1
    row = connections.row(expiring)
    assert connections.token(expiring) != expiring.token
    with app.app_context():
        from crm_meta.runtime import now

        left = row.expires_at - now()
    assert timedelta(days=59) < left <= timedelta(days=60)  # a new 60-day token
    assert row.token_type == "SYSTEM_USER" and row.token_generation == 1
    assert connections.token(never) == never.token and connections.row(never).expires_at is None
    assert debug_calls()[never.token_id] == 1  # checked, never exchanged


def test_a_reconnect_during_a_live_check_drops_its_verdict(app, sandbox, monkeypatch):
    connections = Connections(app, sandbox)
    conn = connections.add()
    fresh = sandbox.post("tokens", user_id=conn.user_id)["access_token"]
    sandbox.fault("/v25.0/debug_token", code=190, error_subcode=460, inspect_error=True)
    graph = app.extensions["crm_meta"].graph
    original = graph.get

    def get_then_reconnect(path, **kwargs):
        answer = original(path, **kwargs)
        if path == "debug_token":  # the tenant reconnects while Meta answers about the old token
            with app.app_context():
                row = db.session.get(MetaConnection, conn.row_id)
                runtime().store.replace(row, fresh)
                db.session.commit()
        return answer

    monkeypatch.setattr(graph, "get", get_then_reconnect)
    with app.app_context():
        from crm_meta.runtime import now

        row = db.session.get(MetaConnection, conn.row_id)
        with pytest.raises(verdicts.ConnectionChanged):
            verdicts.check_now(graph, runtime().store, row, now(),
                                verdicts.Settings.from_config(app.config))
    row = connections.row(conn)
    assert (row.status, row.consecutive_failures, row.token_generation) == ("connected", 0, 1)
    assert connections.token(conn) == fresh
    assert connections.audit("meta.keepalive.status") == []


def test_two_checks_deciding_the_same_change_queue_one_notice(make_app, sandbox):
    app = make_app(NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/hook", NOTIFY_WEBHOOK_SECRET=SECRET)
    conn = Connections(app, sandbox).add()
    settings = verdicts.Settings.from_config(app.config)
    info = tokens.TokenInfo(is_valid=False, token_type="USER", user_id=conn.user_id,
                                      expires_at=None, data_access_expires_at=None, issued_at=None,
                                      scopes=[], error_code=190, error_subcode=460)
    verdict = Probe("invalid", info=info)
    with app.app_context():
        from crm_meta.runtime import now

        moment = now()
        # Both read the row before either writes, as two concurrent checks do.
        with app.app_context():
            first = db.session.get(MetaConnection, conn.row_id)
            with app.app_context():
                second = db.session.get(MetaConnection, conn.row_id)
                contact = deadlines.contacts([conn.tenant_id])[conn.tenant_id]
                how = verdicts.Recording(moment, settings, runtime().store, contact, confirmed=True)
                verdicts.apply(second, verdict, how)
                db.session.commit()
            verdicts.apply(first, verdict, how)
            db.session.commit()
        outbox = db.session.scalars(db.select(NotificationOutbox)).all()
    assert [(n.event, n.payload["status"]) for n in outbox] == [("status_changed", "needs_reauth")]
