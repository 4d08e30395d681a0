"""Done-when, against the sandbox on a live port: a test lead reaches the CRM with its fields,
signed in the Standard Webhooks format and verified with the library; a delivery Meta retries
three times reaches the CRM once; a kill -9 between the 200 and the forwarding loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import requests
from standardwebhooks import Webhook

from crm_meta.models import WebhookInbox
from crm_meta.runtime import of
from tests.helpers.settings import APP_ID, APP_SECRET
from tests.helpers.waiting import wait_for
from tests.webhooks.conftest import FORM_ID, PAGE_ID, PHONE_ID, VERIFY_TOKEN, rows, subscribe

LEAD_FIELDS = {"created_time", "field_data", "form_id", "is_organic", "platform", "id"}


def _deliveries(sandbox) -> list[dict]:
    return sandbox.get("webhooks")["deliveries"]


def test_a_test_lead_reaches_the_crm_signed_with_its_fields(live_hook_app, sandbox, owner, crm):
    app, url = live_hook_app
    tenant_id = owner(app)
    crm.attach(app, tenant_id)
    subscribe(sandbox, f"{url}/webhooks/meta")
    app.config["WEBHOOK_WAKE"] = True  # this process routes and forwards as soon as it stored

    created = sandbox.post("test-leads", form_id=FORM_ID, field_data=[
        {"name": "full_name", "values": ["Íñigo Ruiz"]}, {"name": "email", "values": ["inigo@example.test"]}])
    assert created["webhook_queued"]

    wait_for(lambda: crm.sink.received, "the lead at the CRM")
    [(headers, body)] = crm.sink.received
    event = Webhook(crm.secret).verify(body, headers)  # the receiver's own check, with the library
    assert event["type"] == "meta.lead.created" and event["data"]["tenant_id"] == tenant_id
    lead = event["data"]["lead"]
    assert set(lead) >= LEAD_FIELDS and lead["id"] == created["lead_id"] and lead["form_id"] == FORM_ID
    assert lead["field_data"][0]["values"] == ["Íñigo Ruiz"] and lead["is_organic"] is True
    assert event["data"]["page_id"] == PAGE_ID and event["data"]["leadgen_id"] == created["lead_id"]
    [delivery] = _deliveries(sandbox)
    assert delivery["state"] == "delivered" and delivery["attempts"][0]["status"] == 200
    # The lead was read with the connection's token, with the documented fields.
    [read] = sandbox.calls(f"/{created['lead_id']}")
    assert read["method"] == "GET" and read["status"] == 200


def test_the_testing_tool_allows_one_test_lead_per_form(sandbox):
    sandbox.post("test-leads", form_id=FORM_ID)
    second = requests.post(f"{sandbox.url}/_sandbox/test-leads", json={"form_id": FORM_ID}, timeout=10)
    assert second.status_code == 400 and "delete it" in second.json()["error"]["message"]


def test_a_delivery_meta_retries_three_times_reaches_the_crm_once(live_hook_app, sandbox, owner, crm):
    app, url = live_hook_app
    crm.attach(app, owner(app))
    subscribe(sandbox, f"{url}/webhooks/meta")
    sandbox.post("config", webhook_autosend=False, webhook_ignore_acks=3)  # three answers lost

    sandbox.post("test-leads", form_id=FORM_ID, via="ad")
    assert sandbox.post("webhooks/run")["failed"] == 1
    for wait in (15, 60, 300):  # Meta's retries, further and further apart, on its clock
        assert sandbox.post("webhooks/run") == {"delivered": 0, "failed": 0, "dropped": 0}
        sandbox.advance(wait)
        sandbox.post("webhooks/run")
    [delivery] = _deliveries(sandbox)
    assert [a["status"] for a in delivery["attempts"]] == [200, 200, 200, 200]
    assert delivery["state"] == "delivered"
    assert len(rows(app, WebhookInbox)) == 4  # every copy stored

    of(app).webhooks.run_pass()
    assert len(crm.sink.received) == 1
    assert json.loads(crm.sink.received[0][1])["data"]["lead"]["ad_id"]


def test_whatsapp_messages_and_statuses_reach_the_crm(live_hook_app, sandbox, owner, crm):
    app, url = live_hook_app
    crm.attach(app, owner(app))
    subscribe(sandbox, f"{url}/webhooks/meta")
    sandbox.post("config", webhook_autosend=False)
    message = sandbox.post("webhooks/whatsapp-message", phone_number_id=PHONE_ID, text="Hola, ¿precio?")
    sandbox.post("webhooks/whatsapp-status", phone_number_id=PHONE_ID, message_id="wamid.OUT1", status="read")
    sandbox.post("webhooks/page-message", page_id=PAGE_ID, text="Info")
    counts = sandbox.post("webhooks/run")
    assert counts["delivered"] == 2  # one delivery per object: the WhatsApp entries batched

    of(app).webhooks.run_pass()
    got = {e["type"]: e["data"] for e in (Webhook(crm.secret).verify(b, h) for h, b in crm.sink.received)}
    assert got["meta.message.received"]
    assert got["meta.message.status"]["status"]["status"] == "read"
    texts = sorted(json.dumps(e["data"], ensure_ascii=False) for e in
                   (json.loads(b) for _, b in crm.sink.received) if e["type"] == "meta.message.received")
    assert len(texts) == 2 and any("Hola, ¿precio?" in t and message["id"] in t for t in texts)


def test_kill_9_between_the_200_and_the_forwarding_loses_nothing(make_app, sandbox_server, sandbox,
                                                                   owner, crm, tmp_path):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    app = make_app(database, META_VERIFY_TOKEN=VERIFY_TOKEN)
    crm.attach(app, owner(app))
    settings = {"SQLALCHEMY_DATABASE_URI": database, "META_APP_ID": APP_ID, "META_APP_SECRET": APP_SECRET,
                "META_MODE": "sandbox", "META_GRAPH_URL": sandbox_server.url,
                "META_DIALOG_URL": sandbox_server.url, "ENCRYPTION_KEY": app.config["ENCRYPTION_KEY"],
                "SECRET_KEY": "s" * 32, "JWT_SECRET_KEY": "j" * 32, "META_VERIFY_TOKEN": VERIFY_TOKEN,
                "WEBHOOK_WAKE": False}  # this process acknowledges, and dies before forwarding
    portfile = tmp_path / "port"
    server = subprocess.Popen([sys.executable, "-m", "tests.internal.server", json.dumps(settings),
                               str(portfile)], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        wait_for(lambda: portfile.exists() and portfile.read_text(), "the server's port")
        url = f"http://127.0.0.1:{portfile.read_text()}/webhooks/meta"
        subscribe(sandbox, url)
        sandbox.post("config", webhook_autosend=False)
        sandbox.post("test-leads", form_id=FORM_ID, via="ad")
        assert sandbox.post("webhooks/run")["delivered"] == 1  # Meta got its 200
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    assert server.returncode == -signal.SIGKILL
    assert crm.sink.received == []

    of(app).webhooks.run_pass()  # any other process's next pass (the job's, every 10 s)
    assert len(crm.sink.received) == 1
    assert json.loads(crm.sink.received[0][1])["data"]["lead"]["form_id"] == FORM_ID
    assert not +of(app).webhooks.run_pass()  # routed once: nothing left
    assert all(row.processed_at for row in rows(app, WebhookInbox))
