"""From the inbox to the CRM in one process: events and their keys, routing by asset, parked
entries, duplicates forwarded once, lead-access refusals, retries for 24 hours then a dead
letter, `flask webhooks list/replay/parked`, `flask leads backfill`."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import requests

from crm_meta.infra.database import db
from crm_meta.meta import channels
from crm_meta.meta.store import TokenStore
from crm_meta.meta.webhooks import events
from crm_meta.models import MetaChannel, MetaConnection, NotificationOutbox, WebhookParked
from crm_meta.runtime import of
from meta_sandbox import USER_WITH_BUSINESSES
from meta_sandbox.tokens import token_id
from tests.helpers.cli import invoke, ok
from tests.helpers.settings import APP_SECRET
from tests.helpers.users import bearer
from tests.webhooks.conftest import (
    FORM_ID,
    LEAD_SCOPES,
    PAGE_ID,
    PHONE_ID,
    WABA_ID,
    leadgen,
    rows,
    signed,
)
from tests.webhooks.conftest import events as forwarded


def _post(client, payload):
    body, headers = signed(payload)
    assert client.post("/webhooks/meta", data=body, headers=headers).status_code == 200


def _wa(statuses=(), messages=(), phone=PHONE_ID, waba=WABA_ID):
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone},
             "statuses": list(statuses), "messages": list(messages)}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [
        {"field": "messages", "value": value}]}]}


def test_event_keys_identify_what_meta_sends_again():
    [lead] = events.parse(json.dumps(leadgen("444", time=1)).encode())
    [again] = events.parse(json.dumps(leadgen(444, time=2)).encode())  # a number this time
    assert lead.key == again.key == "leadgen:444" and lead.assets == (("page", PAGE_ID),)
    both = _wa(messages=[{"id": "wamid.A", "type": "text"}], statuses=[{"id": "wamid.B", "status": "read"}])
    [message, status] = events.parse(json.dumps(both).encode())
    assert message.key == "wamid:wamid.A" and status.key == "wastatus:wamid.B:read"
    assert message.assets == (("phone_number", PHONE_ID), ("whatsapp_business_account", WABA_ID))
    feed = {"object": "page",
            "entry": [{"id": 5, "time": 9, "changes": [{"field": "feed", "value": {"a": 1}}]}]}
    [change] = events.parse(json.dumps(feed).encode())
    assert change.key.startswith("5:feed:9:") and change.type == "meta.change"
    insta = {"object": "instagram", "entry": [{"id": "178", "time": 3, "messaging": [
        {"sender": {"id": "1"}, "message": {"mid": "m_1", "text": "hi"}}]}]}
    [dm] = events.parse(json.dumps(insta).encode())
    assert dm.key == "mid:m_1" and dm.assets == (("instagram", "178"),)
    with pytest.raises(events.Malformed):
        events.parse(b'{"object": "page"}')


def test_routed_to_the_owner_and_duplicates_forwarded_once(hook_app, hook_client, owner, crm, sandbox):
    tenant_id = owner(hook_app)
    crm.attach(hook_app, tenant_id)
    lead = sandbox.post("test-leads", form_id=FORM_ID, via="ad")["lead_id"]
    for _ in range(3):  # Meta's retries and a duplicate delivery of the same lead
        _post(hook_client, leadgen(lead))
    _post(hook_client, _wa(statuses=[{"id": "wamid.X", "status": "sent"}]))
    _post(hook_client, _wa(statuses=[{"id": "wamid.X", "status": "sent"}]))
    counts = of(hook_app).webhooks.run_pass()
    assert counts["queued"] == 5 and counts["delivered"] == 2
    assert [e.tenant_id for e in forwarded(hook_app)] == [tenant_id, tenant_id]
    assert sorted(json.loads(b)["type"] for _, b in crm.sink.received) == ["meta.lead.created",
                                                                         "meta.message.status"]


def test_an_entry_no_tenant_owns_is_parked_listed_and_rerouted(hook_app, hook_client, owner, crm):
    _post(hook_client, leadgen("555", page_id="1090000000000009"))
    assert of(hook_app).webhooks.run_pass()["parked"] == 1
    [parked] = rows(hook_app, WebhookParked)
    assert parked.asset_id == "1090000000000009" and parked.field == "leadgen"
    listing = ok(invoke(hook_app, ["webhooks", "parked"]))
    assert "page=1090000000000009" in listing and "1 parked entry" in listing

    tenant_id = owner(hook_app)
    crm.attach(hook_app, tenant_id)
    with hook_app.app_context():  # the tenant's connection now sees that Page
        row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))
        row.pages = [*row.pages, {"id": "1090000000000009"}]
        db.session.commit()
    assert "rerouted=1" in ok(invoke(hook_app, ["webhooks", "parked", "--reroute"]))
    assert [e.tenant_id for e in forwarded(hook_app)] == [tenant_id]
    assert "0 parked entries" in ok(invoke(hook_app, ["webhooks", "parked"]))


def test_a_lead_access_refusal_marks_the_connection_and_tells_the_tenant(hook_app, hook_client, owner,
                                                                        crm, sandbox):
    tenant_id = owner(hook_app)
    crm.attach(hook_app, tenant_id)
    sandbox.post("config", leads_access_blocked=True)
    lead = sandbox.post("test-leads", form_id=FORM_ID)
    _post(hook_client, leadgen(lead["lead_id"]))
    counts = of(hook_app).webhooks.run_pass()
    assert counts["retrying"] == 1 and crm.sink.received == []
    with hook_app.app_context():
        row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))
        assert row.leads_access == "blocked" and "Leads Access Manager" in row.leads_access_error
        notices = db.session.scalars(db.select(NotificationOutbox).filter_by(event="leads_access")).all()
        assert len(notices) == 1 and notices[0].tenant_id == tenant_id
    [event] = forwarded(hook_app)
    assert event.last_outcome == "crm=lead_access:blocked"
    shown = hook_client.get("/crm/auth/meta/test-connection", headers=bearer(tenant_id, role="member"))
    access = shown.get_json()["data"]["leads_access"]
    assert access["state"] == "blocked" and access["missing_scopes"] == []
    for path in ("/crm/marketing/token-status", "/admin/meta/status"):  # from storage, as the CRM reads
        stored = hook_client.get(path, headers=bearer(tenant_id, role="member")).get_json()["data"]
        assert stored["leads_access"]["state"] == "blocked", path
        assert "Leads Access Manager" in stored["leads_access"]["error"]

    sandbox.post("config", leads_access_blocked=False)  # the Page's admin gave access
    with hook_app.app_context():
        db.session.execute(db.update(NotificationOutbox).values(next_attempt_at=of(hook_app).clock.now()))
        db.session.commit()
    assert of(hook_app).webhooks.run_pass()["delivered"] == 1
    with hook_app.app_context():
        assert db.session.scalar(db.select(MetaConnection.leads_access)) == "ok"
    stored = hook_client.get("/crm/marketing/token-status", headers=bearer(tenant_id, role="member"))
    assert stored.get_json()["data"]["leads_access"]["state"] == "ok"


def test_forwarding_retries_for_a_day_then_dead_letters_and_replay_sends_again(hook_app, hook_client,
                                                                               owner, crm, sandbox):
    crm.attach(hook_app, owner(hook_app))
    crm.sink.status = 503
    _post(hook_client, _wa(messages=[{"id": "wamid.M", "type": "text", "text": {"body": "hola"}}]))
    webhooks = of(hook_app).webhooks
    assert webhooks.run_pass()["retrying"] == 1
    waits = []
    for _ in range(40):
        [event] = forwarded(hook_app)
        if event.next_attempt_at is None:
            break
        waits.append((event.next_attempt_at - of(hook_app).clock.now()).total_seconds())
        sandbox.advance(waits[-1] + 1)
        webhooks.run_pass()
    assert event.next_attempt_at is None and event.delivered_at is None  # dead-lettered, kept
    assert waits[1] > waits[0] and max(waits) <= 3600  # backoff, capped
    assert (event.created_at + _hours(24)) <= of(hook_app).clock.now()
    assert "dead" in ok(invoke(hook_app, ["webhooks", "list", "--state", "dead"]))

    crm.sink.status = 200
    assert "1 event(s) queued again" in ok(invoke(hook_app, ["webhooks", "replay", "--dead"]))
    webhooks.flush()
    webhooks.run_pass()
    assert len(crm.sink.received) == 1
    assert "delivered" in ok(invoke(hook_app, ["webhooks", "list"]))


def _hours(n):
    return timedelta(hours=n)


def test_leads_backfill_reads_the_forms_since_a_moment_and_skips_what_was_forwarded(hook_app, owner, crm,
                                                                                   sandbox):
    tenant_id = owner(hook_app)
    crm.attach(hook_app, tenant_id)
    result = ok(invoke(hook_app, ["leads", "backfill", "--tenant", str(tenant_id), "--since", "36h"]))
    # The Page's two forms: a lead every 7 hours on one (5 in 36 hours), 3 in the last day on the other.
    queued = int(result.split(" lead(s)")[0])
    assert 7 <= queued <= 8 and f"{queued} queued" in result  # 8, or 7 if one turns 36 h old meanwhile
    calls = sandbox.calls("/leads")
    assert calls and all(c["status"] == 200 for c in calls)
    again = ok(invoke(hook_app, ["leads", "backfill", "--tenant", str(tenant_id), "--since", "36h"]))
    assert "0 queued" in again
    of(hook_app).webhooks.run_pass()
    # A pass the backfill woke in the background may hold some of the events: wait for it too.
    assert of(hook_app).webhooks.flush()
    assert len(crm.sink.received) == queued
    assert all(json.loads(b)["data"]["lead"]["field_data"] for _, b in crm.sink.received)


def test_channels_route_first_and_the_pages_own_token_reads_the_lead(hook_app, hook_client, owner, crm,
                                                                     sandbox):
    """After the channels work: a tenant that chose the Page as a channel gets its leads, even
    when another tenant's older discovery also lists that Page, and the lead is read with the
    Page's own token (Meta: a Page or user token can read a lead)."""
    other = owner(hook_app, slug="other-co")  # its discovery lists the Page too
    chosen = owner(hook_app, slug="chosen-co")
    crm.attach(hook_app, chosen)
    user_token = sandbox.post("tokens", user_id=USER_WITH_BUSINESSES, scopes=LEAD_SCOPES)["access_token"]
    accounts = requests.get(f"{sandbox.url}/v25.0/me/accounts", timeout=10, params={
        "fields": "id,access_token", "access_token": user_token,
        "appsecret_proof": hmac.new(APP_SECRET.encode(), user_token.encode(), hashlib.sha256).hexdigest()})
    page_token = next(p["access_token"] for p in accounts.json()["data"] if p["id"] == PAGE_ID)
    with hook_app.app_context():
        connection = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=chosen))
        channel = MetaChannel(tenant_id=chosen, connection_id=connection.id, platform="facebook",
                              asset_type="page", asset_id=PAGE_ID, asset_name="Page", active=True)
        channels.write_page_token(TokenStore(of(hook_app).cipher), channel, page_token)
        db.session.add(channel)
        db.session.commit()
    lead = sandbox.post("test-leads", form_id=FORM_ID)["lead_id"]
    _post(hook_client, leadgen(lead))
    assert of(hook_app).webhooks.run_pass()["delivered"] == 1
    assert [e.tenant_id for e in forwarded(hook_app)] == [chosen] and other != chosen
    [read] = sandbox.calls(f"/{lead}")
    assert read["token_id"] == token_id(page_token)
