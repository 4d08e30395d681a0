"""Graph batches through the gateway (issue 19): `POST /graph/<version>/` with `batch=[...]`.
Each item is checked, sent and scrubbed as a lone call would be; a refused item answers in its
own slot with the Graph-shaped error, the others still run; references are refused; Page sends
go with the Page's token; no Meta token in any slot, body or header."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from tests.channels.conftest import FIRST_PAGE, PHONE, Panel
from tests.helpers.sandbox import ACCOUNT
from tests.internal.tokens import TOKEN_TEXT, token_keys

BATCH = "/graph/v25.0/"


def post(client, token: str, items, **extra):
    return client.post(BATCH, data={"batch": json.dumps(items), "access_token": token, **extra})


def slots(response, credential: str) -> list:
    """Each item's (code, body) or None; and the whole answer holds no Meta token anywhere (a
    paging link carries the caller's own gateway token, as a lone call's does)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert not TOKEN_TEXT.search(text) and not TOKEN_TEXT.search(str(dict(response.headers)))
    assert set(re.findall(r"access_token=([^&\"\\]+)", text)) <= {credential}
    assert "appsecret_proof=" not in text
    found = []
    for answer in response.get_json():
        if answer is None:
            found.append(None)
            continue
        body = json.loads(answer["body"])
        assert not token_keys(body) and not TOKEN_TEXT.search(json.dumps(answer.get("headers", [])))
        found.append((answer["code"], body))
    return found


def error_of(slot) -> tuple:
    code, body = slot
    error = body["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error)  # Graph's error shape
    return code, error["code"], error.get("error_subcode")


def test_each_item_is_checked_as_a_lone_call_and_refused_in_its_own_slot(client, connect, gateway_token):
    connect("acme")
    token = gateway_token("acme")
    items = [
        {"method": "GET", "relative_url": f"{ACCOUNT}?fields=name,currency"},
        {"method": "GET", "relative_url": "me/accounts"},  # a page list: tokens
        {"method": "GET", "relative_url": f"v25.0/{ACCOUNT}?fields=name,x:owned_pages{{access_token}}"},
        {"method": "GET", "relative_url": f"{ACCOUNT}/campaigns?fields=name&limit=2"},
        {"method": "GET", "relative_url": "?ids=act_1,act_2&fields=name"},
        {"method": "GET", "relative_url": f"{ACCOUNT}/campaigns?access_token=cmg_someone_else"},
        {"method": "PATCH", "relative_url": ACCOUNT},
        {"method": "POST", "relative_url": f"{ACCOUNT}/campaigns", "body": "name=X&batch=[]"},
    ]
    found = slots(post(client, token, items), token)
    assert found[0][0] == 200 and found[0][1]["id"] == ACCOUNT
    assert error_of(found[1])[:2] == (403, 10)  # as a lone call: a permission error
    assert error_of(found[2])[:2] == (403, 10)  # a token field, under an alias
    assert found[3][0] == 200 and len(found[3][1]["data"]) == 2
    next_link = found[3][1]["paging"]["next"]
    assert "/graph/v25.0/" in next_link and f"access_token={token}" in next_link  # the caller's own
    assert error_of(found[4])[:2] == (403, 10)  # no node: nothing the allow-list opens
    assert error_of(found[5])[:2] == (401, 190)  # one credential, one tenant
    assert error_of(found[6])[1] == 100
    assert error_of(found[7])[1] == 100  # no batch inside a batch
    lone = client.get(f"/graph/v25.0/{ACCOUNT}", query_string={"fields": "name,currency",
                                                               "access_token": token})
    assert found[0][1] == lone.get_json()


def test_references_are_refused_and_dependencies_answer_as_meta(client, connect, gateway_token):
    connect("acme")
    token = gateway_token("acme")
    items = [
        {"method": "GET", "name": "acct", "relative_url": f"{ACCOUNT}?fields=id"},
        {"method": "GET", "depends_on": "acct", "relative_url": f"{ACCOUNT}/campaigns?fields=name"},
        {"method": "GET", "relative_url": "{result=acct:$.id}/campaigns"},
        {"method": "GET", "relative_url": f"{ACCOUNT}/campaigns?fields={{result=acct:$.id}}"},
        {"method": "POST", "relative_url": f"{ACCOUNT}/campaigns", "body": "name={result=acct:$.id}"},
        {"method": "GET", "name": "bad", "relative_url": "me/accounts"},
        {"method": "GET", "depends_on": "bad", "relative_url": ACCOUNT},
        {"method": "GET", "name": "kept", "omit_response_on_success": False, "relative_url": ACCOUNT},
        {"method": "GET", "depends_on": "kept", "relative_url": ACCOUNT},
    ]
    found = slots(post(client, token, items, include_headers="false"), token)
    assert found[0] is None  # a successful dependency is omitted (conformance B2)
    assert found[1][0] == 200 and found[1][1]["data"]
    for refused in found[2:5]:  # a reference could name any node: never resolved here
        assert error_of(refused)[:2] == (400, 100)
        assert "reference" in refused[1]["error"]["message"]
    assert error_of(found[5])[1] == 10 and found[6] is None  # a failed parent's dependent: null
    assert found[7][0] == 200 and found[8][0] == 200
    answered = post(client, token, items, include_headers="false").get_json()
    assert all("headers" not in a for a in answered if a)


def test_a_batch_meta_would_refuse_whole_is_refused_whole_in_graphs_shape(client, connect, gateway_token):
    connect("acme")
    token = gateway_token("acme")
    unresolved = post(client, token, [{"method": "GET", "depends_on": "nobody", "relative_url": ACCOUNT}])
    assert unresolved.status_code == 400
    error = unresolved.get_json()["error"]
    assert (error["type"], error["code"]) == ("GraphBatchException", 100)
    assert "Requests can only depend on preceding requests" in error["message"]
    too_many = post(client, token, [{"method": "GET", "relative_url": ACCOUNT}] * 51)
    assert too_many.status_code == 400 and too_many.get_json()["error"]["code"] == 100
    for raw in ("not json", "[]", "{}"):
        bad = client.post(BATCH, data={"batch": raw, "access_token": token})
        assert bad.status_code == 400 and bad.get_json()["error"]["code"] == 100
    stranger = post(client, "cmg_" + "x" * 40, [{"method": "GET", "relative_url": ACCOUNT}])
    assert stranger.status_code == 401 and stranger.get_json()["error"]["code"] == 190


def test_page_sends_in_a_batch_go_with_the_pages_token(app, make_tenant, sandbox, gateway_token):
    tenant = make_tenant("acme")
    panel = Panel(app.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect().status_code == 200
    assert panel.select([FIRST_PAGE, PHONE]).status_code == 200
    token = gateway_token("acme")
    page_send = urlencode({"recipient": json.dumps({"id": "24000000000000001"}),
                           "message": json.dumps({"text": "Hola"})})
    whatsapp_send = urlencode({"messaging_product": "whatsapp", "to": "+34600000002", "type": "text",
                               "text": json.dumps({"body": "Hola"})})
    items = [
        {"method": "POST", "relative_url": f"{FIRST_PAGE}/messages", "body": page_send},
        {"method": "POST", "relative_url": f"{PHONE}/messages", "body": whatsapp_send},
        {"method": "GET", "relative_url": f"{FIRST_PAGE}?fields=access_token"},
    ]
    found = slots(post(app.test_client(), token, items), token)
    assert found[0][0] == 200 and found[0][1]["recipient_id"] == "24000000000000001"  # Page token only
    assert found[1][0] == 200 and found[1][1]["messages"][0]["id"].startswith("wamid.")
    assert error_of(found[2])[1] in (10, 100)  # a Page's token is never read through the gateway
