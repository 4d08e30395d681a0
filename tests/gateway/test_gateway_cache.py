"""The gateway's credentials kept per process (issue 19's speed): a warm call sends nothing to
PostgreSQL, yet revoking a token or a key, rotating, disconnecting or losing the tenant
elsewhere refuses the very next call once the COMMIT's notification arrived; what bypasses
crm-meta (hand-written SQL on the credentials' tables) is seen within CACHE_SECONDS."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from crm_meta.auth import gateway_tokens
from crm_meta.infra import statuscache
from crm_meta.infra.database import db
from crm_meta.internal import keys
from tests.channels.conftest import FIRST_PAGE, Panel
from tests.helpers.settings import testing_config
from tests.helpers.waiting import wait_for
from tests.tools.wire import counting_connection

pytestmark = pytest.mark.postgres
CAMPAIGNS = "/graph/v25.0/act_301000001000001/campaigns"
TTL = 60.0


@pytest.fixture
def gateway(make_app, build_app, postgres_url, connect, make_key, gateway_token):
    """A PostgreSQL app with the cache on (what its driver sends is counted), a connected tenant,
    a proxy-only service's gateway token, and `elsewhere`: a second app on the same database,
    its own engine and cache, as another process would be."""
    connection_class, sent = counting_connection()
    options = dict(testing_config("", postgres_url).SQLALCHEMY_ENGINE_OPTIONS,
                   connect_args={"connection_factory": connection_class})
    app = make_app(database_url=postgres_url, STATUS_CACHE_SECONDS=TTL, SQLALCHEMY_ENGINE_OPTIONS=options)
    tenant = connect("acme", app_=app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=app)
    token = gateway_token("acme", service=service, app_=app)
    with app.app_context():
        cache = statuscache.for_engine(db.engine, TTL)
    wait_for(lambda: cache.generation() is not None, "the listener to be in place")
    elsewhere = build_app(postgres_url)
    yield app, tenant, token, cache, sent, elsewhere
    cache.close()


def call(app, token):
    return app.test_client().get(CAMPAIGNS, query_string={"access_token": token, "fields": "name"})


def warm(app, token, sent):
    assert call(app, token).status_code == 200  # read; its first use recorded
    assert call(app, token).status_code == 200  # read again (the last use changed), kept
    sent.clear()
    assert call(app, token).status_code == 200
    assert sent == []  # no round trip to PostgreSQL on a warm call


def refused_after(cache, before, app, token) -> dict:
    assert cache.wait_for_invalidation(before, timeout=30)  # the writer's NOTIFY arrived
    refused = call(app, token)
    assert refused.status_code == 401
    return refused.get_json()["error"]


def test_a_warm_call_costs_no_round_trip_and_a_wrong_token_still_fails(gateway):
    app, _tenant, token, _cache, sent, _elsewhere = gateway
    warm(app, token, sent)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # same prefix
    refused = call(app, forged)
    assert refused.status_code == 401 and refused.get_json()["error"]["error_subcode"] == 467


# What another process may do to a gateway token's credentials; each is refused at its COMMIT.
ELSEWHERE = {
    "token revoked": lambda app, tenant: gateway_tokens.revoke(tenant.tenant_id) == 1,
    "service key revoked": lambda app, tenant: keys.revoke("marketing") == 1,
    "token rotated": lambda app, tenant: len(
        gateway_tokens.rotate(tenant.tenant_id, app.config["SECRET_KEY"])) == 1,
}


@pytest.mark.parametrize("change", ELSEWHERE)
def test_a_credential_change_in_another_process_refuses_the_token_at_its_commit(gateway, change):
    app, tenant, token, cache, sent, elsewhere = gateway
    warm(app, token, sent)
    before = cache.generation()
    with elsewhere.app_context():
        assert ELSEWHERE[change](elsewhere, tenant)
    assert refused_after(cache, before, app, token)["error_subcode"] == 458


def test_a_disconnect_in_another_process_stops_the_calls(gateway):
    app, tenant, token, cache, sent, elsewhere = gateway
    warm(app, token, sent)
    before = cache.generation()
    with elsewhere.app_context():
        db.session.execute(text("UPDATE meta_tokens SET status = 'revoked' WHERE tenant_id = :id"),
                           {"id": tenant.tenant_id})
        db.session.commit()
    assert refused_after(cache, before, app, token)["code"] == 190


def test_a_revocation_in_this_process_is_seen_without_waiting(gateway):
    app, tenant, token, _cache, sent, _elsewhere = gateway
    warm(app, token, sent)
    with app.app_context():
        gateway_tokens.revoke(tenant.tenant_id)
    assert call(app, token).status_code == 401  # the commit itself cleared this process's copy


def test_a_hand_written_revocation_is_seen_within_the_bound(gateway, postgres_url, monkeypatch):
    """SQL that bypasses crm-meta announces nothing: the kept copy ends after CACHE_SECONDS."""
    app, tenant, token, _cache, sent, _elsewhere = gateway
    monkeypatch.setattr(gateway_tokens, "CACHE_SECONDS", 0.5)
    warm(app, token, sent)
    by_hand = create_engine(postgres_url)
    with by_hand.begin() as conn:
        conn.execute(text("UPDATE gateway_tokens SET revoked_at = now() WHERE tenant_id = :id"),
                     {"id": tenant.tenant_id})
    by_hand.dispose()
    wait_for(lambda: call(app, token).status_code == 401, "the kept copy to end", limit=10)


def test_a_token_error_on_a_warm_call_is_recorded_in_a_real_transaction(gateway, sandbox):
    """A warm call reads nothing, so nothing ended the request's autocommit reads
    (crm_meta.infra.dbreads) before Meta's 190: the fenced write must still get its transaction
    (its SELECT ... FOR UPDATE locks the row until the verdict is committed)."""
    app, _tenant, token, _cache, sent, _elsewhere = gateway
    warm(app, token, sent)
    sandbox.fault(f"/v25.0/{CAMPAIGNS.split('/')[3]}/campaigns", code=190, error_subcode=460, count=1)
    answered = call(app, token)
    assert answered.status_code == 400 and answered.get_json()["error"]["code"] == 190
    assert sent[:2] == ["BEGIN", "SELECT"] and "COMMIT" in sent


def test_a_page_send_on_a_warm_call_goes_with_the_pages_token(make_app, postgres_url, make_key,
                                                              make_tenant, sandbox, gateway_token):
    """The kept connection is detached (a warm call opens no session): a Page's channels are
    still read for a send on a discovered Page, and the send goes with the Page's own token."""
    app = make_app(database_url=postgres_url, STATUS_CACHE_SECONDS=TTL)
    tenant = make_tenant("acme", app_=app)
    panel = Panel(app.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect().status_code == 200 and panel.select([FIRST_PAGE]).status_code == 200
    token = gateway_token("acme", service=make_key("marketing", scopes=("graph:proxy",), app_=app), app_=app)
    with app.app_context():
        cache = statuscache.for_engine(db.engine, TTL)
    wait_for(lambda: cache.generation() is not None, "the listener to be in place")
    send = {"recipient": json.dumps({"id": "24000000000000001"}), "message": json.dumps({"text": "Hola"})}
    for _ in range(3):  # read, read again (its last use recorded), then kept
        sent = app.test_client().post(f"/graph/v25.0/{FIRST_PAGE}/messages",
                                      data={**send, "access_token": token})
        assert sent.status_code == 200 and sent.get_json()["recipient_id"] == "24000000000000001"
    cache.close()
