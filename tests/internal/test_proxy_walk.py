"""Walk every node type and edge the sandbox serves (from its own tables, meta_sandbox/served.py),
plain and with field expansion, through the proxy as a `graph:proxy` caller: no answer holds a
token (issue 19, item 1). The same walk straight at the sandbox with the tenant's token does
find page tokens, so the walk would see one if the proxy let it through."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
import requests

from meta_sandbox.auth import proof_for
from meta_sandbox.served import served
from tests.helpers.sandbox import ACCOUNT, BUSINESS
from tests.helpers.settings import APP_SECRET
from tests.internal.tokens import PROXY, TOKEN_KEY, TOKEN_TEXT, token_keys, tokens_in

USER = "10160000000000001"
PAGE = "1090000000000001"
SCOPES = ("ads_management,business_management,whatsapp_business_management,pages_show_list,"
          "pages_read_engagement,read_insights,pages_manage_ads,leads_retrieval")
# Node types a CRM service reads through the default allow-list: each must answer at least once.
OPEN_TYPES = {"AdAccount", "Campaign", "AdSet", "Ad", "AdReportRun", "Page", "LeadgenForm", "Lead",
              "WhatsAppBusinessAccount"}


def expansion(catalogue, type_name: str, drop_tokens: bool) -> str:
    """Every field of a type, each edge expanded with every field of what it lists."""
    def keep(name: str) -> bool:
        return not (drop_tokens and (TOKEN_KEY.search(name) or name in {"accounts", "owned_pages"}))

    served_type = catalogue[type_name]
    parts = [f for f in sorted(served_type.fields) if keep(f) and f not in served_type.edges]
    for edge, target in sorted(served_type.edges.items()):
        if not keep(edge):
            continue
        children = sorted(f for f in catalogue.get(target, served_type).fields if keep(f))
        parts.append(f"{edge}.limit(2){{{','.join(children)}}}" if children else f"{edge}.limit(2)")
    return ",".join(parts)


def walk(catalogue):
    """(path, query) of every call of the walk."""
    for type_name, served_type in sorted(catalogue.items()):
        ids = list(dict.fromkeys([i for i in (ACCOUNT, BUSINESS, USER, PAGE) if i in served_type.ids]
                                 + served_type.ids[:2]))
        if type_name == "User":
            ids.append("me")
        for node in ids:
            yield node, {}
            for drop in (False, True):
                yield node, {"fields": expansion(catalogue, type_name, drop)}
            for edge, target in sorted(served_type.edges.items()):
                yield f"{node}/{edge}", {}
                if target in catalogue and catalogue[target].fields:
                    yield f"{node}/{edge}", {"fields": ",".join(sorted(catalogue[target].fields))}


@pytest.fixture
def walk_app(make_app):
    return make_app(META_SCOPES=SCOPES.split(","))


def test_no_node_or_edge_the_sandbox_serves_gives_a_token_to_a_proxy_caller(
        walk_app, connect, make_key, sandbox, sandbox_server):
    connect("acme", app_=walk_app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=walk_app)
    client = walk_app.test_client()
    started = client.post(PROXY.format("acme", f"{ACCOUNT}/insights"), headers=service.headers,
                          data={"level": "ad", "fields": "ad_id,spend"})  # an async report run to walk too
    assert started.status_code == 200, started.get_data(as_text=True)
    catalogue = served(sandbox_server.server.app.extensions["meta_sandbox"])
    answered, leaks, calls = set(), [], 0
    for path, query in walk(catalogue):
        response = client.get(PROXY.format("acme", path), headers=service.headers, query_string=query)
        calls += 1
        assert response.status_code < 500, (path, query, response.get_data(as_text=True))
        found = tokens_in(response)
        if found:
            leaks.append((path, query, found[:2]))
        if response.status_code == 200:
            node = path.split("/")[0]
            answered |= {name for name, t in catalogue.items() if node in t.ids}
    assert not leaks, leaks
    assert calls > 100
    assert answered >= OPEN_TYPES, OPEN_TYPES - answered


def test_the_walk_finds_the_page_tokens_when_asked_with_the_real_token(walk_app, connect, sandbox,
                                                                        sandbox_server, stored_token):
    acme = connect("acme", app_=walk_app)
    token = stored_token(walk_app, acme.tenant_id)
    catalogue = served(sandbox_server.server.app.extensions["meta_sandbox"])
    found = []
    for path, query in walk(catalogue):
        if path.split("/")[0] not in (USER, BUSINESS, PAGE):
            continue
        response = requests.get(f"{sandbox.url}/v25.0/{path}",
                                params={**query, "appsecret_proof": proof_for(APP_SECRET, token)},
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        found += [path] if "access_token" in response.text and "EAA" in response.text else []
    assert {f"{USER}/accounts", f"{BUSINESS}/owned_pages", USER, BUSINESS} <= set(found)


def test_the_walk_in_gateway_batches_gives_no_token_either(walk_app, connect, make_key, sandbox,
                                                           sandbox_server):
    """The same walk as Graph batches of 50 through the drop-in gateway (`POST /graph/v25.0/`,
    headers included): no slot, body or header holds a Meta token."""
    connect("acme", app_=walk_app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=walk_app)
    client = walk_app.test_client()
    gateway = client.get("/internal/meta/connections/acme/credentials", headers=service.headers,
                         query_string={"format": "crm-ventas"}).get_json()["data"]["META_USER_LONG_TOKEN"]
    catalogue = served(sandbox_server.server.app.extensions["meta_sandbox"])
    calls = [{"method": "GET", "relative_url": f"{path}?{urlencode(query)}" if query else path}
             for path, query in walk(catalogue)]
    leaks, answered = [], 0
    for start in range(0, len(calls), 50):
        response = client.post("/graph/v25.0/", data={"batch": json.dumps(calls[start:start + 50]),
                                                      "access_token": gateway, "include_headers": "true"})
        assert response.status_code == 200, response.get_data(as_text=True)
        text = response.get_data(as_text=True)
        leaks += TOKEN_TEXT.findall(text) + TOKEN_TEXT.findall(str(dict(response.headers)))
        leaks += [v for v in re.findall(r"access_token=([^&\"\\]+)", text) if v != gateway]
        leaks += ["appsecret_proof"] if "appsecret_proof=" in text else []
        for call, slot in zip(calls[start:start + 50], response.get_json(), strict=True):
            assert slot is not None and slot["code"] < 500, (call, slot)
            leaks += [(call["relative_url"], k) for k in token_keys(json.loads(slot["body"]))]
            answered += slot["code"] == 200
    assert not leaks, leaks[:5]
    assert len(calls) > 100 and answered > 50
