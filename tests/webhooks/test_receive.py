"""Meta's webhook requests at the edge: verification, the signature on the raw bytes, stored
then acknowledged, the body limit, no CSRF and no X-Admin-Token, production's verify token."""

from __future__ import annotations

import json

import pytest

from config import ConfigError, ProductionConfig
from crm_meta.models import WebhookInbox
from tests.helpers.settings import GOOD_PRODUCTION
from tests.webhooks.conftest import VERIFY_TOKEN, leadgen, rows, signed

PATHS = ("/webhooks/meta", "/webhooks/meta/7", "/webhooks/meta/leadgen")


@pytest.mark.parametrize("path", PATHS)
def test_verification_echoes_the_challenge_only_for_our_token(hook_client, path):
    ok = hook_client.get(path, query_string={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                             "hub.verify_token": VERIFY_TOKEN})
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444"
    for query in ({"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN + "x"},
                  {"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": VERIFY_TOKEN},
                  {"hub.challenge": "1"}):
        assert hook_client.get(path, query_string=query).status_code == 403


def test_without_a_verify_token_nothing_verifies(make_app):
    client = make_app(META_VERIFY_TOKEN="").test_client()
    answer = client.get("/webhooks/meta", query_string={"hub.mode": "subscribe", "hub.challenge": "1",
                                                        "hub.verify_token": ""})
    assert answer.status_code == 403


@pytest.mark.parametrize("path", PATHS)
def test_a_signed_delivery_is_stored_as_received_then_acknowledged(hook_app, hook_client, path):
    # Non-ASCII escaped the way Meta sends it, ids as numbers: the bytes are what is signed.
    raw = b'{"object":"page","entry":[{"id":1090000000000001,"time":1765000000,"changes":[{"field":"feed",' \
          b'"value":{"message":"Jos\\u00e9 \\/ Nu\\u00f1ez"}}]}]}'
    body, headers = signed(raw)
    answer = hook_client.post(path, data=body, headers=headers)
    assert answer.status_code == 200
    [row] = rows(hook_app, WebhookInbox)
    assert row.body == raw and row.processed_at is None


@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sha1=abc", "", "sha256=zz"])
def test_a_forged_or_missing_signature_stores_nothing(hook_app, hook_client, header):
    body = json.dumps(leadgen()).encode()
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    answer = hook_client.post("/webhooks/meta", data=body, headers=headers)
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "invalid_signature"
    assert rows(hook_app, WebhookInbox) == []


def test_a_body_signed_with_another_secret_or_altered_after_signing_is_refused(hook_app, hook_client):
    body, headers = signed(leadgen(), secret="not-the-app-secret")
    assert hook_client.post("/webhooks/meta", data=body, headers=headers).status_code == 401
    body, headers = signed(leadgen())
    assert hook_client.post("/webhooks/meta", data=body + b" ", headers=headers).status_code == 401
    assert rows(hook_app, WebhookInbox) == []


def test_malformed_json_with_a_good_signature_is_stored_and_flagged_never_a_500(hook_app, hook_client):
    for raw in (b"{not json", b"[1, 2]", b'{"object": "page", "entry": [3]}', "ñ".encode("latin-1")):
        body, headers = signed(raw)
        assert hook_client.post("/webhooks/meta", data=body, headers=headers).status_code == 200
    counts = hook_app.extensions["crm_meta"].webhooks.run_pass()
    assert counts["malformed"] == 4
    assert all(row.malformed and row.processed_at for row in rows(hook_app, WebhookInbox))


def test_the_body_limit_is_metas_largest_payload(hook_app, hook_client):
    entry = {"id": "1", "time": 1, "changes": [{"field": "feed", "value": {"pad": "x" * (2 * 1024 * 1024)}}]}
    body, headers = signed({"object": "page", "entry": [entry]})  # 2 MB: over the API's 1 MB limit
    assert hook_client.post("/webhooks/meta", data=body, headers=headers).status_code == 200
    body, headers = signed(b"x" * (3 * 1024 * 1024 + 1))
    assert hook_client.post("/webhooks/meta", data=body, headers=headers).status_code == 413
    assert len(rows(hook_app, WebhookInbox)) == 1


def test_no_csrf_and_no_admin_token_for_meta(make_app):
    app = make_app(META_VERIFY_TOKEN=VERIFY_TOKEN, WEBHOOK_WAKE=False, WTF_CSRF_ENABLED=True,
                   CRM_ADMIN_TOKEN="crm-admin-token-0123456789")
    body, headers = signed(leadgen())
    assert app.test_client().post("/webhooks/meta", data=body, headers=headers).status_code == 200


def test_webhooks_off_answers_404(make_app):
    client = make_app(META_WEBHOOKS_ENABLED=False).test_client()
    body, headers = signed(leadgen())
    assert client.post("/webhooks/meta", data=body, headers=headers).status_code == 404


@pytest.mark.parametrize("token, fragment", [
    (None, "is missing"), ("token_aleatorio_para_webhooks", "published example"),
    ("short-token", "weak"), ("a" * 40, "weak")])
def test_production_refuses_webhooks_with_a_missing_or_weak_verify_token(token, fragment):
    env = {**GOOD_PRODUCTION, "META_WEBHOOKS_ENABLED": "1"}
    if token is not None:
        env["META_VERIFY_TOKEN"] = token
    with pytest.raises(ConfigError, match=f"META_VERIFY_TOKEN.*{fragment}"):
        ProductionConfig(env).validate()


def test_production_with_a_strong_token_or_webhooks_off_starts():
    ProductionConfig({**GOOD_PRODUCTION, "META_VERIFY_TOKEN": "Xq7-pL2v9-Rt4w8-Zk1m5-Hc3n6"}).validate()
    ProductionConfig(dict(GOOD_PRODUCTION)).validate()  # no token: webhooks are off by default
    assert not ProductionConfig(dict(GOOD_PRODUCTION)).META_WEBHOOKS_ENABLED
