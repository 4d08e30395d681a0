"""The connect flow against the sandbox as Meta behaves: no PKCE, documented methods, batches with
a top-level token and `null` items, Pages only with pages_show_list, client WhatsApp accounts,
granular scopes."""

from __future__ import annotations

import requests

from crm_meta import jobs
from crm_meta.infra.database import db
from crm_meta.meta.assets import me_fields
from crm_meta.models import MetaConnection, OAuthState
from meta_sandbox.fixtures import BUSINESS_BASE, USER_WITH_BUSINESSES

FIRST_BUSINESS = str(BUSINESS_BASE + 1)
SECOND_BUSINESS = str(BUSINESS_BASE + 2)
# The only writes of a connect: the code exchange and the batch (Meta's batch endpoint is a POST).
POST_PATHS = {"/v25.0/oauth/access_token", "/v25.0/"}


def stored(app) -> MetaConnection:
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        db.session.expunge(row)
        return row


def test_a_connect_sends_no_pkce_and_no_post_to_a_read_endpoint(app, meta_flow, sandbox):
    response = meta_flow.connect()  # the sandbox refuses any code_verifier, as Meta does
    assert response.status_code == 200, response.get_json()
    calls = sandbox.calls()
    assert {c["path"] for c in calls if c["method"] == "POST"} <= POST_PATHS
    assert [c["method"] for c in calls if c["path"].endswith("/debug_token")] == ["GET"]
    assert all(c["status"] == 200 for c in calls)
    assert "code_verifier" not in OAuthState.__table__.columns


def count_batches(app, monkeypatch) -> list:
    graph = app.extensions["crm_meta"].graph
    rounds, original = [], graph.batch

    def batch(requests_, *, token):
        answers = original(requests_, token=token)
        # The nulls of the pages asked as Meta linked them (a chained page after one is null too).
        rounds.append(sum(answer is None and "{result=" not in request["relative_url"]
                          for request, answer in zip(requests_, answers, strict=True)))
        return answers

    monkeypatch.setattr(graph, "batch", batch)
    return rounds


def test_batch_items_answered_null_are_asked_again(app, meta_flow, sandbox, monkeypatch):
    rounds = count_batches(app, monkeypatch)
    # The first business's second page of ad accounts times out inside two batches in a row.
    sandbox.fault(f"/v25.0/{FIRST_BUSINESS}/owned_ad_accounts", batch_null=True, count=2)
    response = meta_flow.connect()
    assert response.status_code == 200, response.get_json()
    # The connect's round budget (2 batches: issue 23) ends with that page still unread...
    assert rounds == [1, 1] and stored(app).discovery_pending_since is not None
    jobs.discovery_tick(app)  # ...and the discovery job reads it after the answer
    assert rounds == [1, 1, 0]
    row = stored(app)
    [first] = [b for b in row.business_managers if b["id"] == FIRST_BUSINESS]
    assert len(first["ad_accounts"]) == 132  # 130 owned + 2 of clients: nothing lost
    assert row.discovery_pending_since is None


def test_a_page_that_keeps_timing_out_leaves_the_discovery_pending(app, meta_flow, sandbox,
                                                                       monkeypatch):
    rounds = count_batches(app, monkeypatch)
    sandbox.fault(f"/v25.0/{FIRST_BUSINESS}/owned_ad_accounts", batch_null=True, count=10)
    response = meta_flow.connect()
    assert response.status_code == 200  # within its round budget: the rest is the job's
    assert rounds == [1, 1]
    jobs.discovery_tick(app)  # the job's own discovery: the first round and three retries
    assert rounds == [1, 1, 1, 1, 1, 1]  # bounded, then it gives up as transient...
    assert stored(app).discovery_pending_since is not None  # ...and keeps the marker


def test_pages_are_requested_only_with_pages_show_list():
    assert "accounts" not in me_fields({"pages_read_engagement", "business_management"})
    assert "accounts.limit(100)" in me_fields({"pages_show_list"})


def test_whatsapp_accounts_shared_by_clients_are_discovered(app, meta_flow):
    assert meta_flow.connect().status_code == 200
    row = stored(app)
    [second] = [b for b in row.business_managers if b["id"] == SECOND_BUSINESS]
    assert [w["relationship"] for w in second["whatsapp_business_accounts"]] == ["client"]
    [first] = [b for b in row.business_managers if b["id"] == FIRST_BUSINESS]
    assert [w["relationship"] for w in first["whatsapp_business_accounts"]] == ["owned"]
    assert row.pages  # pages_show_list is among the default scopes


def test_granular_scopes_are_recorded_and_the_hub_names_the_shared_business(app, meta_flow,
                                                                            sandbox, client):
    started = meta_flow.start()
    form = {"decision": "approve", "business_id": [FIRST_BUSINESS]}
    response = requests.post(started["auth_url"], data=form, allow_redirects=False, timeout=10)
    assert meta_flow.callback(response.headers["Location"]).status_code == 200
    row = stored(app)
    granted = {g["scope"]: g.get("target_ids") for g in row.granular_scopes}
    assert granted["business_management"] == [FIRST_BUSINESS]
    assert [b["id"] for b in row.business_managers] == [FIRST_BUSINESS]
    page = client.get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="granted-businesses"' in page
    assert "Distribuidora Andina S.A." in page.split('data-testid="granted-businesses"')[1][:200]


def test_pages_beyond_the_first_come_in_one_chained_batch(app, meta_flow, sandbox, monkeypatch):
    """Issue 23 item 4: 352 Pages are four pages of `/me/accounts`; the three after the first come
    in ONE batch (each page's `after` a reference to the page before), not three rounds."""
    rounds = count_batches(app, monkeypatch)
    sandbox.post("config", extra_pages=350)
    response = meta_flow.connect()
    assert response.status_code == 200, response.get_json()
    row = stored(app)
    assert len(row.pages) == 352 and len({p["id"] for p in row.pages}) == 352
    assert rounds == [0]  # one batch round, no page asked twice
    # Sized by /me's accounts.summary(total_count): exactly the three pages, none past the end.
    assert len(sandbox.calls(f"{USER_WITH_BUSINESSES}/accounts")) == 3


def test_a_chained_page_answered_null_is_asked_again_from_the_last_page_read(app, meta_flow,
                                                                             sandbox, monkeypatch):
    rounds = count_batches(app, monkeypatch)
    sandbox.post("config", extra_pages=350)
    sandbox.fault(f"/v25.0/{USER_WITH_BUSINESSES}/accounts", batch_null=True, count=1)
    response = meta_flow.connect()
    assert response.status_code == 200, response.get_json()
    assert len({p["id"] for p in stored(app).pages}) == 352  # nothing lost, nothing twice
    assert rounds == [1, 0]
