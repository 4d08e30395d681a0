"""The sandbox sends webhooks as Meta does: the app's subscription (app token, callback verified),
and the Page's or WhatsApp account's own (`subscribed_apps`), entries batched, each delivery
signed over its exact bytes, failures retried with decreasing frequency on its clock for 36 hours
(7 days for WhatsApp), then dropped; an app failing for 8 hours is unsubscribed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from meta_sandbox.catalogue import PAGE_BASE, PHONE_BASE, WABA_BASE
from tests.helpers.settings import APP_ID, APP_SECRET

FORM_ID = "1250000000000001"
VERIFY = "vt-0123456789"


class Callback:
    """Meta's counterpart: answers the verification and records POSTs with a queued status."""

    def __init__(self, token=VERIFY, status=200):
        self.token, self.status, self.posts = token, status, []
        self.failing = None  # bytes that, when in a body, get a 500
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = parse_qs(urlsplit(self.path).query)
                ok = query.get("hub.verify_token") == [callback.token]
                body = (query.get("hub.challenge") or [""])[0].encode() if ok else b"no"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                callback.posts.append((dict(self.headers), body))
                failed = callback.failing is not None and callback.failing in body
                self.send_response(500 if failed else callback.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def callback():
    hook = Callback()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _subscribe(sandbox, url, token=VERIFY, obj="page", fields="leadgen,messages",
               access_token=f"{APP_ID}|{APP_SECRET}", assets=True):
    """The app-level subscription; with `assets`, the first Page and WhatsApp account have the
    app in their subscribed_apps too (as a Page admin's POST /{page-id}/subscribed_apps makes)."""
    if assets:
        for asset, subscribed in ((str(PAGE_BASE + 1), "leadgen,messages"), (str(WABA_BASE + 1), "messages")):
            requests.post(f"{sandbox.url}/_sandbox/subscriptions/{asset}", params={"fields": subscribed},
                          timeout=10).raise_for_status()
    return requests.post(f"{sandbox.url}/v25.0/{APP_ID}/subscriptions", data={
        "object": obj, "callback_url": url, "fields": fields, "verify_token": token,
        "access_token": access_token}, timeout=10)


def test_subscribing_needs_the_app_token_and_a_callback_that_verifies(sandbox, callback):
    user = sandbox.post("tokens")["access_token"]
    refused = _subscribe(sandbox, callback.url, access_token=user)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 15
    wrong = _subscribe(sandbox, callback.url, token="another-token")
    error = wrong.json()["error"]
    assert wrong.status_code == 400 and error["code"] == 2200 and error["type"] == "OAuthException"
    assert error["message"].startswith("(#2200) Callback verification failed with the following errors: "
                                       "HTTP Status Code = 403")
    assert _subscribe(sandbox, callback.url).json() == {"success": True}
    listed = requests.get(f"{sandbox.url}/v25.0/{APP_ID}/subscriptions",
                          params={"access_token": f"{APP_ID}|{APP_SECRET}"}, timeout=10).json()
    [page] = listed["data"]
    assert page["object"] == "page" and page["callback_url"] == callback.url
    assert {f["name"] for f in page["fields"]} == {"leadgen", "messages"}


def test_nothing_is_sent_without_a_subscription_for_the_field(sandbox, callback):
    assert sandbox.post("test-leads", form_id=FORM_ID)["webhook_queued"] is False
    _subscribe(sandbox, callback.url, fields="feed")
    assert sandbox.post("test-leads", form_id=FORM_ID, via="ad")["webhook_queued"] is False


def test_entries_are_batched_and_each_delivery_signed_over_its_exact_bytes(sandbox, callback):
    _subscribe(sandbox, callback.url)
    sandbox.post("config", webhook_autosend=False, webhook_batch_max=2)
    for _ in range(3):
        sandbox.post("test-leads", form_id=FORM_ID, via="ad")
    sandbox.post("webhooks/page-message", page_id=str(PAGE_BASE + 1), text="¿Horario?")
    assert sandbox.post("webhooks/run")["delivered"] == 2
    sizes = []
    for headers, body in callback.posts:
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == expected
        assert b"\\u00bf" in body or b"leadgen" in body  # non-ASCII escaped as Meta sends it
        payload = json.loads(body)
        assert payload["object"] == "page"
        sizes.append(len(payload["entry"]))
    assert sizes == [2, 2]
    [change] = json.loads(callback.posts[0][1])["entry"][0]["changes"]
    assert change["field"] == "leadgen" and set(change["value"]) >= {"leadgen_id", "form_id", "page_id",
                                                                      "ad_id", "created_time"}


@pytest.mark.parametrize("obj, days", [("page", 1.5), ("whatsapp_business_account", 7)])
def test_failed_deliveries_are_retried_less_and_less_often_then_dropped(sandbox, callback, obj, days):
    # One delivery keeps failing while the app answers the others (so it is never unsubscribed).
    callback.failing = b"FAILS"
    _subscribe(sandbox, callback.url, obj=obj, fields="leadgen,messages" if obj == "page" else "messages")
    sandbox.post("config", webhook_autosend=False)

    def event(text):
        if obj == "page":
            sandbox.post("webhooks/page-message", page_id=str(PAGE_BASE + 1), text=text)
        else:
            sandbox.post("webhooks/whatsapp-message", phone_number_id=str(PHONE_BASE + 1), text=text)

    event("FAILS")
    sandbox.post("webhooks/run")
    gaps, elapsed = [], 0.0
    while True:
        [delivery] = [d for d in sandbox.get("webhooks")["deliveries"]
                      if b"FAILS" in json.dumps(d["body"]).encode()]
        if delivery["state"] != "pending":
            break
        now = datetime.fromisoformat(sandbox.get("clock")["now"])
        wait = (datetime.fromisoformat(delivery["next_at"]) - now).total_seconds()
        gaps.append(round(wait))
        elapsed += wait
        sandbox.advance(wait + 1)
        event("answered")  # delivered in the same pass: the app is not failing throughout
        sandbox.post("webhooks/run")
    assert delivery["state"] == "dropped"
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]  # decreasing frequency
    assert elapsed <= days * 86400 < elapsed + 8 * 3600 + len(gaps) + 1
    assert len([b for _, b in callback.posts if b"FAILS" in b]) == len(gaps) + 1
    assert sandbox.get("webhooks")["alerts"] == []


def test_a_page_without_the_app_in_its_subscribed_apps_sends_nothing(sandbox, callback):
    _subscribe(sandbox, callback.url, assets=False)  # the app-level subscription alone
    assert sandbox.post("test-leads", form_id=FORM_ID)["webhook_queued"] is False
    page = str(PAGE_BASE + 1)
    requests.post(f"{sandbox.url}/_sandbox/subscriptions/{page}", params={"fields": "messages"},
                  timeout=10).raise_for_status()
    assert sandbox.post("test-leads", form_id=FORM_ID, via="ad")["webhook_queued"] is False  # not leadgen
    assert sandbox.post("webhooks/page-message", page_id=page, text="hola")["webhook_queued"] is True
    assert sandbox.post("webhooks/whatsapp-message", phone_number_id=str(PHONE_BASE + 1),
                        text="hola")["webhook_queued"] is False  # the WhatsApp account has no app


def test_an_app_failing_for_8_hours_is_warned_then_unsubscribed(sandbox, callback):
    callback.status = 500
    _subscribe(sandbox, callback.url)
    sandbox.post("config", webhook_autosend=False)
    sandbox.post("webhooks/page-message", page_id=str(PAGE_BASE + 1), text="hola")
    sandbox.post("webhooks/run")
    sandbox.advance(16 * 60)
    sandbox.post("webhooks/page-message", page_id=str(PAGE_BASE + 1), text="otra")
    sandbox.post("webhooks/run")
    [warning] = sandbox.get("webhooks")["alerts"]
    assert warning["kind"] == "warning" and warning["object"] == "page"
    for _ in range(12):  # the retries (further and further apart) fail on, past 8 hours of failing
        sandbox.advance(3600)
        sandbox.post("webhooks/run")
    log = sandbox.get("webhooks")
    assert [a["kind"] for a in log["alerts"]] == ["warning", "unsubscribed"]
    assert [s["object"] for s in log["subscriptions"]] == []  # the app-level subscription is gone
    assert {d["state"] for d in log["deliveries"]} == {"dropped"}
    sent = len(callback.posts)
    queued = sandbox.post("webhooks/page-message", page_id=str(PAGE_BASE + 1), text="x")["webhook_queued"]
    assert queued is False
    sandbox.advance(3600)
    sandbox.post("webhooks/run")
    assert len(callback.posts) == sent
