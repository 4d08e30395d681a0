"""Every refusal of the gateway reads like a Graph error, and Meta's own SDK classifies it as it
would Meta's: a throttle transient, a refused path a permission error, a bad credential #190."""

from __future__ import annotations

import json

import pytest
from flask import Response

from crm_meta.http.graph_errors import reshape
from tests.helpers.cli import invoke
from tests.helpers.graph import as_sdk_sees_it, assert_graph_error
from tests.helpers.sandbox import ACCOUNT

CAMPAIGNS = f"/graph/v25.0/{ACCOUNT}/campaigns"


@pytest.mark.parametrize("credential", [None, "cmg_" + "A" * 43, "EAAnot-ours", "cms_" + "B" * 43])
def test_a_missing_or_wrong_credential_is_190(client, credential):
    query = {"access_token": credential} if credential else {}
    response = client.get(CAMPAIGNS, query_string=query)
    error = assert_graph_error(response, 401, 190)
    assert error["is_transient"] is False and error["type"] == "OAuthException"
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert (credential or "-") not in response.get_data(as_text=True)
    sdk = as_sdk_sees_it(response)
    assert sdk.api_error_code() == 190 and sdk.api_transient_error() is False


def test_revoked_rotated_and_key_revoked_credentials_are_refused(app, client, connect, gateway_token,
                                                                 proxy_service):
    connect("acme")
    token = gateway_token("acme")
    assert client.get(CAMPAIGNS, query_string={"access_token": token}).status_code == 200
    assert token not in invoke(app, ["gateway", "list"]).output
    invoke(app, ["gateway", "rotate", "acme"])
    assert_graph_error(client.get(CAMPAIGNS, query_string={"access_token": token}), 401, 190)
    rotated = gateway_token("acme")
    assert rotated != token
    assert client.get(CAMPAIGNS, query_string={"access_token": rotated}).status_code == 200
    invoke(app, ["gateway", "revoke", "acme"])
    assert_graph_error(client.get(CAMPAIGNS, query_string={"access_token": rotated}), 401, 190)
    fresh = gateway_token("acme")  # the service asks again: a new one
    assert client.get(CAMPAIGNS, query_string={"access_token": fresh}).status_code == 200
    invoke(app, ["services", "revoke", "marketing"])  # the key goes: its tokens with it
    assert_graph_error(client.get(CAMPAIGNS, query_string={"access_token": fresh}), 401, 190)


def test_a_refused_path_is_a_permission_error(client, connect, gateway_token):
    connect("acme")
    response = client.get("/graph/v25.0/me/accounts", query_string={"access_token": gateway_token("acme")})
    assert assert_graph_error(response, 403, 10)["type"] == "OAuthException"
    sdk = as_sdk_sees_it(response)
    assert sdk.api_error_code() == 10 and not sdk.api_transient_error()


def test_an_unusable_connection_is_190_with_metas_subcode(app, client, connect, gateway_token, set_status):
    acme = connect("acme")
    token = gateway_token("acme")
    set_status(app, acme.tenant_id, status="needs_reauth")
    error = assert_graph_error(client.get(CAMPAIGNS, query_string={"access_token": token}), 401, 190)
    assert error["error_subcode"] == 460


def test_a_retired_version_names_the_version_to_use(client, connect, gateway_token):
    connect("acme")
    token = gateway_token("acme")
    # CRM Ventas' default (v21.0): the Marketing API retired it on 2025-09-09.
    response = client.get(f"/graph/v21.0/{ACCOUNT}/insights", query_string={"access_token": token})
    error = assert_graph_error(response, 400, 2635)
    assert "Please update to the latest version: v27.0" in error["message"]
    unknown = client.get("/graph/v99.0/1090000000000001", query_string={"access_token": token})
    assert "use v26.0" in assert_graph_error(unknown, 400, 12)["message"]
    # Every version Meta still serves for that kind of call is accepted.
    for version in ("v25.0", "v26.0"):
        answer = client.get(f"/graph/{version}/{ACCOUNT}/campaigns", query_string={"access_token": token})
        assert answer.status_code == 200, (version, answer.get_data(as_text=True))


def test_the_gateways_own_limit_is_metas_user_throttle_per_service_and_tenant(make_app, make_key, connect,
                                                                                gateway_token):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_GRAPH_GATEWAY="3/minute")
    connect("acme", app_=app)
    connect("beta", app_=app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=app)
    acme, beta = (gateway_token(slug, service=service, app_=app) for slug in ("acme", "beta"))
    client = app.test_client()
    for _ in range(3):
        assert client.get(CAMPAIGNS, query_string={"access_token": acme}).status_code == 200
    held = client.get(CAMPAIGNS, query_string={"access_token": acme})
    error = assert_graph_error(held, 429, 17)
    assert error["error_subcode"] == 2446079 and error["is_transient"] is True
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    sdk = as_sdk_sees_it(held)
    assert sdk.api_transient_error() is True and sdk.api_error_code() == 17
    # Another tenant's budget is its own.
    assert client.get(CAMPAIGNS, query_string={"access_token": beta}).status_code == 200


def test_a_governor_hold_is_metas_ad_account_throttle(client, connect, gateway_token, sandbox):
    connect("acme")
    token = gateway_token("acme")
    sandbox.fault(f"/v25.0/{ACCOUNT}/campaigns", code=80004, regain_minutes=5)
    metas = client.get(CAMPAIGNS, query_string={"access_token": token})  # Meta's own, passed through
    assert metas.status_code == 400 and metas.get_json()["error"]["code"] == 80004
    held = client.get(CAMPAIGNS, query_string={"access_token": token})  # refused before Meta
    error = assert_graph_error(held, 429, 613)
    assert error["is_transient"] is True and 290 <= int(held.headers["Retry-After"]) <= 300
    assert as_sdk_sees_it(held).api_transient_error() is True


def test_no_refusal_echoes_the_credential(client, connect, gateway_token):
    connect("acme")
    token = gateway_token("acme")
    for response in (client.get("/graph/v25.0/me", query_string={"access_token": token}),
                     client.get(f"/graph/v19.0/{ACCOUNT}", query_string={"access_token": token}),
                     client.post(CAMPAIGNS, data="{" * 10, content_type="application/json",
                                 headers={"Authorization": f"OAuth {token}"})):
        assert response.status_code >= 400
        assert token not in response.get_data(as_text=True)
        assert token not in json.dumps(dict(response.headers))


def test_a_method_graph_does_not_serve_is_graphs_unsupported_request(client):
    """No route matched (405): still the gateway's refusal, Graph-shaped (crm_meta.http.graph_errors)."""
    response = client.put(CAMPAIGNS)
    assert assert_graph_error(response, 400, 100, "method_not_allowed")["error_subcode"] == 33


@pytest.mark.parametrize("text", ['[{"error": 1}]', '"gone"', '{"error": {"code": 100, "message": "x"}}'])
def test_metas_own_answers_of_any_json_shape_pass_untouched(text):
    response = reshape(Response(text, status=400, mimetype="application/json"))
    assert (response.status_code, response.get_data(as_text=True)) == (400, text)
