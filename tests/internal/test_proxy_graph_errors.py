"""The services' proxy refuses the way Graph does (issue 19, item 4), as the drop-in gateway does:
Meta's official SDK, pointed at /internal/meta/connections/<tenant>/graph with a service key,
classifies each refusal as it would Meta's (`api_error_code()`, `api_transient_error()`): a bad
or revoked key and an unusable connection #190, a refused path, field or scope #10, a governor
hold Meta's ad-account throttle (#613, transient, Retry-After). Never the product's envelope."""

from __future__ import annotations

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.user import User
from facebook_business.exceptions import FacebookRequestError

from tests.helpers.cli import invoke
from tests.helpers.graph import GRAPH_ERROR_KEYS, assert_graph_error, sdk
from tests.helpers.sandbox import ACCOUNT

PAGE = "1090000000000001"


def refusal(call) -> FacebookRequestError:
    """What the SDK raises for `call`, checked to be Graph's error body, not our envelope."""
    with pytest.raises(FacebookRequestError) as raised:
        call()
    body = raised.value.body()
    assert isinstance(body, dict) and "success" not in body, body
    assert set(body["error"]) >= GRAPH_ERROR_KEYS and isinstance(body["error"]["code"], int), body
    return raised.value


@pytest.fixture
def acme(connect):
    return connect("acme")


def through(live, service, tenant="acme"):
    """The SDK as a CRM service sets it up for the proxy: its base URL, the service key."""
    return sdk(live.proxy(tenant), None, headers=service.headers)


def test_a_bad_or_revoked_service_key_is_190(app, live, acme, service):
    for headers in ({"Authorization": "Bearer cms_" + "B" * 43}, {}):
        bad = refusal(lambda h=headers: AdAccount(ACCOUNT, api=sdk(live.proxy("acme"), None, headers=h))
                      .api_get(fields=["name"]))
        assert (bad.api_error_code(), bad.http_status(), bad.api_transient_error()) == (190, 401, False)
    invoke(app, ["services", "revoke", service.name])
    revoked = refusal(lambda: AdAccount(ACCOUNT, api=through(live, service)).api_get(fields=["name"]))
    assert (revoked.api_error_code(), revoked.api_error_subcode()) == (190, 458)


def test_a_refused_path_field_or_scope_is_a_permission_error(live, acme, service, make_key):
    api = through(live, service)
    for call in (lambda: User("me", api=api).get_accounts(),
                 lambda: Page(PAGE, api=api).api_get(fields=["name", "access_token"])):
        refused = refusal(call)
        assert (refused.api_error_code(), refused.http_status()) == (10, 403)
        assert refused.api_transient_error() is False and refused.api_error_type() == "OAuthException"
    reader = make_key("reader", scopes=("credentials:read",))  # no graph:proxy
    unscoped = refusal(lambda: AdAccount(ACCOUNT, api=through(live, reader)).api_get(fields=["name"]))
    assert (unscoped.api_error_code(), unscoped.http_status()) == (10, 403)


def test_an_unusable_connection_is_190_with_metas_subcode(app, live, acme, service, set_status):
    set_status(app, acme.tenant_id, status="needs_reauth")
    refused = refusal(lambda: AdAccount(ACCOUNT, api=through(live, service)).api_get(fields=["name"]))
    assert (refused.api_error_code(), refused.api_error_subcode(), refused.http_status()) == (190, 460, 401)


def test_an_unknown_tenant_is_graphs_unknown_object(live, service):
    refused = refusal(lambda: AdAccount(ACCOUNT, api=through(live, service, "nobody")).api_get())
    assert (refused.api_error_code(), refused.api_error_subcode()) == (100, 33)


def test_a_governor_hold_is_metas_ad_account_throttle_and_the_sdk_backs_off(live, acme, service, sandbox):
    """Code written for Meta: on a transient error, wait what Meta says (Retry-After), then retry.
    Waiting here is moving the sandbox's clock, which the proxy's holds follow."""
    account = AdAccount(ACCOUNT, api=through(live, service))
    sandbox.fault(f"/v25.0/{ACCOUNT}", code=80004, regain_minutes=5)  # Meta throttles the account
    metas = refusal(lambda: account.api_get(fields=["name"]))  # Meta's own, passed through
    assert metas.api_error_code() == 80004
    held = refusal(lambda: account.api_get(fields=["name"]))  # refused before Meta
    assert (held.api_error_code(), held.api_error_subcode(), held.http_status()) == (613, 1487742, 429)
    assert held.api_transient_error() is True
    wait = int(held.http_headers()["Retry-After"])
    assert 290 <= wait <= 300
    sandbox.advance(wait + 1)
    assert account.api_get(fields=["name"])["id"] == ACCOUNT


def test_only_the_graph_route_changes_shape(client, acme, service):
    """The proxy's refusals are Graph's; the same key's refusals elsewhere stay the envelope."""
    bad = {"Authorization": "Bearer cms_" + "B" * 43}
    proxied = client.get(f"/internal/meta/connections/acme/graph/{ACCOUNT}", headers=bad)
    error = assert_graph_error(proxied, 401, 190)
    assert error["fbtrace_id"] and 'OAuth "Facebook Platform"' in proxied.headers["WWW-Authenticate"]
    credentials = client.get("/internal/meta/connections/acme/credentials", headers=bad)
    assert credentials.status_code == 401 and credentials.get_json()["success"] is False
