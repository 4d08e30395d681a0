"""The services' Graph proxy: the tenant's token added, Meta's answer passed back, refusals."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest

from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.meta import proxy
from crm_meta.meta.errors import TokenInvalidError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.keepalive import verdicts
from crm_meta.models import AuditEvent
from crm_meta.runtime import runtime
from meta_sandbox.tokens import token_id
from tests.helpers.graph import assert_graph_error, every_page
from tests.helpers.sandbox import ACCOUNT
from tests.tools.configs import meta_settings

PROXY = "/internal/meta/connections/{}/graph/{}"
OTHER_BUSINESS_ACCOUNT = "act_301000002000001"
PAGE = "1090000000000001"


def graph_calls(sandbox, fragment: str) -> list[dict]:
    return sandbox.calls(fragment)


def test_a_service_lists_campaigns_with_the_tenants_token_and_never_sees_it(app, client, connect,
                                                                           service, sandbox, stored_token):
    acme = connect("acme")
    token = stored_token(app, acme.tenant_id)
    response = client.get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers,
                          query_string={"fields": "name,status,objective", "access_token": "EAAforged",
                                        "appsecret_proof": "0" * 64})
    assert response.status_code == 200, response.get_data(as_text=True)
    campaigns = response.get_json()["data"]
    assert campaigns and {"id", "name", "status", "objective"} == set(campaigns[0])
    for header in ("x-app-usage", "x-business-use-case-usage", "x-ad-account-usage", "facebook-api-version"):
        assert header in response.headers, header
    assert response.headers["Cache-Control"] == "no-store"
    assert token not in response.get_data(as_text=True) and token not in str(response.headers)
    call = graph_calls(sandbox, "/campaigns")[-1]
    assert call["token_id"] == token_id(token) and call["status"] == 200  # the forged token was dropped


def test_paging_links_lead_back_through_the_proxy_without_token_or_proof(app, client, connect, service):
    connect("acme")
    url = PROXY.format("acme", f"v25.0/{ACCOUNT}/insights")
    response = client.get(url, headers=service.headers,
                          query_string={"date_preset": "last_14d", "time_increment": "1", "limit": "5",
                                        "fields": "spend"})

    def check(link):
        assert link.path == f"/internal/meta/connections/acme/graph/{ACCOUNT}/insights"
        assert not {"access_token", "appsecret_proof"} & set(parse_qs(link.query))

    assert len(every_page(response, lambda link: client.get(link, headers=service.headers), check)) == 14


def test_campaigns_are_created_updated_and_deleted_through_the_proxy(client, connect, service):
    connect("acme")
    created = client.post(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers,
                          json={"name": "Leads de invierno", "objective": "OUTCOME_LEADS",
                                "status": "PAUSED", "special_ad_categories": []})
    assert created.status_code == 200, created.get_data(as_text=True)
    campaign = created.get_json()["id"]
    updated = client.post(PROXY.format("acme", campaign), headers=service.headers,
                          data={"status": "ACTIVE", "name": "Leads de invierno 2"})
    assert updated.get_json() == {"success": True}
    read = client.get(PROXY.format("acme", campaign), headers=service.headers,
                      query_string={"fields": "name,status"}).get_json()
    assert read == {"name": "Leads de invierno 2", "status": "ACTIVE", "id": campaign}
    deleted = client.delete(PROXY.format("acme", campaign), headers=service.headers)
    assert deleted.get_json() == {"success": True}


def test_metas_errors_come_back_as_meta_sent_them(client, connect, service, sandbox):
    connect("acme")
    sandbox.fault(f"/v25.0/{ACCOUNT}/campaigns", code=100, message="(#100) Invalid parameter")
    response = client.get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == 100 and error["fbtrace_id"]
    bad = client.get(PROXY.format("acme", f"{ACCOUNT}/insights"), headers=service.headers,
                     query_string={"date_preset": "someday"})
    assert bad.status_code == 400 and "date_preset" in bad.get_json()["error"]["message"]


# Refused as Graph refuses (issue 19): status, Graph's code, and ours in error_data.reason.
@pytest.mark.parametrize(("method", "path", "status", "code", "reason"), [
    ("GET", "me", 403, 10, "path_not_allowed"),
    ("GET", "me/accounts", 403, 10, "path_not_allowed"),  # page tokens
    ("DELETE", "me/permissions", 403, 10, "path_not_allowed"),
    ("GET", "debug_token", 403, 10, "path_not_allowed"),
    ("GET", "oauth/access_token", 403, 10, "path_not_allowed"),
    ("GET", f"{ACCOUNT}/users", 403, 10, "path_not_allowed"),
    ("GET", "2010000000000001/system_users", 403, 10, "path_not_allowed"),
    ("GET", f"{ACCOUNT}/campaigns/extra", 403, 10, "path_not_allowed"),
    ("GET", "act_1%2F..%2Fme", 403, 10, "path_not_allowed"),
    ("GET", f"v24.0/{ACCOUNT}/campaigns", 400, 100, "version_not_allowed"),
    ("GET", f"{PAGE}?fields=name,access_token", 403, 10, "field_not_allowed"),
    ("PUT", f"{ACCOUNT}/campaigns", 400, 100, "method_not_allowed"),  # Graph: "Unsupported put request"
])
def test_paths_outside_the_allow_list_never_reach_meta(client, connect, service, sandbox,
                                                        method, path, status, code, reason):
    connect("acme")
    before = len(sandbox.calls())
    response = client.open(PROXY.format("acme", path), method=method, headers=service.headers)
    assert_graph_error(response, status, code, reason)
    assert len(sandbox.calls()) == before


def test_the_allow_list_is_a_setting(make_app, connect, make_key):
    app = make_app(META_PROXY_ALLOWED_PATHS=["ad_account/insights"])
    connect("acme", app_=app)
    service = make_key(app_=app)
    client = app.test_client()
    assert client.get(PROXY.format("acme", f"{ACCOUNT}/insights"), headers=service.headers).status_code == 200
    refused = client.get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers)
    assert refused.status_code == 403


def test_another_tenants_unusable_connection_is_refused_before_meta(app, client, connect, service, sandbox):
    connect("acme")
    beta = connect("beta", user_id="10160000000000002", account=None)
    with app.app_context():
        row = runtime().store.for_tenant(beta.tenant_id)
        row.status = "revoked"
        db.session.commit()
    before = len(sandbox.calls())
    refused = client.get(PROXY.format("beta", "act_309000000000001/campaigns"), headers=service.headers)
    assert assert_graph_error(refused, 401, 190, "revoked")["error_subcode"] == 458
    assert len(sandbox.calls()) == before
    mine = client.get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers)
    assert mine.status_code == 200


# -- token errors feed the connection's status (the keep-alive's rules) ------------------------
def test_token_errors_on_proxied_calls_count_like_the_sweeps(app, client, connect, service, sandbox, row_of):
    acme = connect("acme")
    sandbox.fault(f"/v25.0/{ACCOUNT}/campaigns", code=190, error_subcode=460, count=2)
    url = PROXY.format("acme", f"{ACCOUNT}/campaigns")
    first = client.get(url, headers=service.headers)
    assert first.status_code == 400 and first.get_json()["error"]["code"] == 190  # Meta's answer
    row = row_of(app, acme.tenant_id)
    assert (row.status, row.consecutive_failures) == ("connected", 1)  # one strike is not a verdict
    assert row.next_check_at - row.last_checked_at <= verdicts.CONFIRM_SOON  # the sweep confirms soon
    assert client.get(url, headers=service.headers).status_code == 400
    assert row_of(app, acme.tenant_id).status == "needs_reauth"
    before = len(sandbox.calls())
    refused = client.get(url, headers=service.headers)
    assert assert_graph_error(refused, 401, 190, "needs_reauth")["error_subcode"] == 460
    assert len(sandbox.calls()) == before
    with app.app_context():
        change = db.session.scalar(db.select(AuditEvent).filter_by(action="meta.keepalive.status"))
        assert change.details["to"] == "needs_reauth" and change.tenant_id == acme.tenant_id
    status = client.application.test_client().get(
        "/internal/meta/connections/acme/credentials", headers=service.headers)
    assert status.status_code == 409


def test_a_token_error_about_a_token_since_replaced_is_dropped(app, connect, sandbox, row_of):
    acme = connect("acme")
    error = TokenInvalidError("Error validating access token", code=190, subcode=460)
    with app.app_context():
        store, gateway = runtime().store, runtime().gateway
        row = store.for_tenant(acme.tenant_id)
        old, row_id = row.token_ciphertext, row.id
        store.write(row, sandbox.post("tokens")["access_token"])  # the tenant reconnected meanwhile
        db.session.commit()
        gateway.record_token_error(row_id, old, error)
        assert row_of(app, acme.tenant_id).consecutive_failures == 0
        current = store.for_tenant(acme.tenant_id).token_ciphertext
        gateway.record_token_error(row_id, current, error)
        assert row_of(app, acme.tenant_id).consecutive_failures == 1


def test_meta_unreachable_is_a_transient_503(make_app, connect, make_key):
    app = make_app()
    connect("acme", app_=app)
    service = make_key(app_=app)
    app.extensions["crm_meta"].graph.base_url = "http://127.0.0.1:9"  # nothing listens there
    response = app.test_client().get(PROXY.format("acme", f"{ACCOUNT}/campaigns"), headers=service.headers)
    assert assert_graph_error(response, 503, 2, "meta_unavailable")["is_transient"] is True
    assert response.headers["Retry-After"]


def test_metas_own_paging_links_lose_token_and_proof_on_the_way_back():
    graph = GraphClient(meta_settings(base_url="https://graph.facebook.com", version="v25.0", app_id="1",
                                      app_secret="s"))
    body = json.dumps({"data": [], "paging": {
        "next": "https://graph.facebook.com/v25.0/act_1/insights?access_token=EAAsecret&appsecret_proof=ab"
                "&limit=5&after=QQ",
        "previous": "https://evil.example/v25.0/act_1/insights?access_token=EAAsecret"},
        "nested": {"data": [], "paging": {"next": "https://graph.facebook.com/v25.0/1/leads?after=Z"}}}).encode()
    out = proxy.relinked(body, {"content-type": "application/json"}, graph, "https://crm/internal/x/graph/")
    assert b"EAAsecret" not in out and b"appsecret_proof" not in out and b"evil" not in out
    page = json.loads(out)
    assert page["paging"]["next"] == "https://crm/internal/x/graph/act_1/insights?limit=5&after=QQ"
    assert page["nested"]["paging"]["next"] == "https://crm/internal/x/graph/1/leads?after=Z"


def test_a_single_pages_answer_passes_as_meta_sent_it_and_an_escaped_link_is_still_relinked():
    """Paging with cursors only has no link to point back: Meta's bytes, not parsed and dumped
    again (its escapes kept); a link whose key is spelled with escapes is still found."""
    graph = GraphClient(meta_settings(base_url="https://graph.facebook.com", version="v25.0", app_id="1",
                                      app_secret="s"))
    json_type = {"content-type": "application/json"}
    one_page = b'{"data": [{"name": "Prospecci\\u00f3n"}], "paging": {"cursors": {"after": "QQ"}}}'
    assert proxy.relinked(one_page, json_type, graph, "https://crm/graph/v25.0/") is one_page
    escaped = (b'{"data": [], "paging": {"\\u006eext": '
               b'"https://graph.facebook.com/v25.0/act_1/campaigns?after=QQ&access_token=EAAx"}}')
    page = json.loads(proxy.relinked(escaped, json_type, graph, "https://crm/graph/v25.0/"))
    assert page["paging"]["next"] == "https://crm/graph/v25.0/act_1/campaigns?after=QQ"


def test_a_tenants_token_is_decrypted_once_per_ciphertext_and_kept_only_a_while(app, monkeypatch):
    """The proxy keeps a token it opened (with its proof) for the same ciphertext only: a new
    token (reconnect, refresh, re-encryption) is opened afresh, and nothing outlives `seconds`."""
    with app.app_context():
        rt = runtime()
        store, graph = rt.store, rt.graph
    opened = []
    monkeypatch.setattr(store, "read", lambda row: opened.append(row.token_ciphertext) or
                        type(store).read(store, row))
    gateway = proxy.Gateway(graph, store, rt.clock, rt.meta, rt.keepalive, on_notices=list)
    row = SimpleNamespace(tenant_id=7, token_ciphertext=None, key_id=None)
    store.write(row, "EAAfirst-token-0123456789")
    first = ("EAAfirst-token-0123456789", graph.proof("EAAfirst-token-0123456789"))
    assert gateway.token_of(row) == first and gateway.token_of(row) == first and len(opened) == 1
    store.write(row, "EAAsecond-token-0123456789")  # a reconnect: another ciphertext
    assert gateway.token_of(row)[0] == "EAAsecond-token-0123456789" and len(opened) == 2
    other_tenant = SimpleNamespace(tenant_id=8, token_ciphertext=row.token_ciphertext, key_id=None)
    with pytest.raises(CryptoError):  # bound to its tenant: never opened from another's entry
        gateway.token_of(other_tenant)
    brief = proxy.Gateway(graph, store, rt.clock, rt.meta, rt.keepalive, on_notices=list,
                          opened=proxy.Opened(seconds=-1))
    brief.token_of(row)
    brief.token_of(row)
    assert len(opened) == 5  # the failed one, then two reads: nothing kept past its time
