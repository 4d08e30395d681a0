"""No Meta token leaves the proxy (issue 19, item 1): a `graph:proxy` caller cannot read a page,
user or any other token through an edge, a field expansion (nested, aliased, with modifiers) or
Meta's answer itself; the typed allow-list opens the kinds a CRM reads and not the person's user
node or business nodes by bare id."""

from __future__ import annotations

import pytest

from crm_meta.meta import exposure
from tests.helpers.graph import assert_graph_error
from tests.helpers.sandbox import ACCOUNT, BUSINESS
from tests.internal.tokens import PROXY, tokens_in

USER = "10160000000000001"  # the sandbox's user with businesses (the connection's Meta user)
PAGE = "1090000000000001"
CAMPAIGN = "23850000000000001"


@pytest.fixture
def proxy_only(make_key):
    return make_key("marketing", scopes=("graph:proxy",))


# Each of these read page tokens through today's proxy (`*` opened user and business nodes, and
# only the literal `fields=...access_token...` was refused).
LEAKS = [
    (f"{BUSINESS}", {"fields": "owned_pages"}),
    (f"{BUSINESS}", {"fields": "id,name,owned_pages{name,access_token}"}),
    (f"{USER}", {"fields": "accounts"}),
    (f"{USER}", {"fields": "accounts.limit(1)"}),
    (f"{USER}", {"fields": "name,accounts.limit(1).as(x)"}),
    (f"{USER}", {"fields": "businesses{owned_pages.limit(5){id,name}}"}),
    (f"{USER}", {"fields": "businesses.limit(2){client_pages}"}),
    (f"{USER}", {"fields": "assigned_pages"}),
    (f"{USER}/accounts", {}),
    ("me/accounts", {"fields": "name"}),
    (f"{BUSINESS}/owned_pages", {}),
    (f"{BUSINESS}/client_pages", {}),
    (f"{USER}/assigned_pages", {}),
    (f"{ACCOUNT}", {"fields": "name,business{owned_pages}"}),
    (f"{ACCOUNT}/campaigns", {"fields": "name,account{accounts{access_token}}"}),
    (f"{PAGE}", {"fields": "name,access_token"}),
    (f"{PAGE}", {"fields": "name,ACCESS_TOKEN"}),
    (f"{PAGE}", {"fields": "name.as(page_access_token)"}),
    (f"{PAGE}", {"fields": "id , access_token . as ( x )"}),
    (f"{CAMPAIGN}", {"fields": "id,owned_pages{access_token}"}),
    (f"{ACCOUNT}/insights", {"fields": "spend", "metadata": "1"}),
    (f"{ACCOUNT}/campaigns", {"fields": "name{"}),  # not Graph's grammar: never guessed at
]


@pytest.mark.parametrize(("path", "query"), LEAKS)
def test_token_returning_edges_and_expansions_never_reach_meta(client, connect, proxy_only, sandbox,
                                                               path, query):
    connect("acme")
    before = len(sandbox.calls())
    response = client.get(PROXY.format("acme", path), headers=proxy_only.headers, query_string=query)
    assert response.status_code in (400, 403), response.get_data(as_text=True)
    error = response.get_json()["error"]  # Graph's: a permission error or a bad parameter
    assert (error["code"], error["error_data"]["reason"]) in {
        (10, "path_not_allowed"), (10, "field_not_allowed"), (100, "param_not_allowed")}, error
    assert not tokens_in(response)
    assert len(sandbox.calls()) == before


def test_fields_posted_in_a_form_are_read_too(client, connect, proxy_only, sandbox):
    connect("acme")
    before = len(sandbox.calls())
    response = client.post(PROXY.format("acme", CAMPAIGN), headers=proxy_only.headers,
                           data={"fields": "id,accounts{access_token}", "method": "GET"})
    assert_graph_error(response, 403, 10, "field_not_allowed")
    assert not tokens_in(response)
    assert len(sandbox.calls()) == before


def test_the_user_node_and_business_nodes_are_not_open_by_bare_id(client, connect, proxy_only, sandbox):
    connect("acme")
    for path in (USER, BUSINESS, "me", f"{BUSINESS}/system_users", f"{USER}/businesses"):
        response = client.get(PROXY.format("acme", path), headers=proxy_only.headers)
        assert_graph_error(response, 403, 10, "path_not_allowed")
    owned = client.get(PROXY.format("acme", f"{BUSINESS}/owned_ad_accounts"), headers=proxy_only.headers,
                       query_string={"fields": "id,name,account_status"})
    assert owned.status_code == 200 and owned.get_json()["data"]
    assert not tokens_in(owned)


def test_each_kind_allows_the_methods_meta_gives_it(client, connect, proxy_only, sandbox):
    connect("acme")
    before = len(sandbox.calls())
    for method, path in (("DELETE", PAGE), ("POST", PAGE), ("POST", f"{PAGE}/leadgen_forms"),
                         ("DELETE", ACCOUNT), ("POST", f"{BUSINESS}/owned_ad_accounts")):
        response = client.open(PROXY.format("acme", path), method=method, headers=proxy_only.headers)
        assert response.status_code == 403, (method, path)
    assert len(sandbox.calls()) == before
    page = client.get(PROXY.format("acme", PAGE), headers=proxy_only.headers,
                      query_string={"fields": "id,name"})
    assert page.status_code == 200 and page.get_json()["name"]


def test_what_meta_still_sends_is_stripped(client, connect, proxy_only, sandbox, monkeypatch):
    """The second line of defence: with the refusals switched off, Meta's page tokens (a page
    node's access_token, a business's page list) still never come back."""
    connect("acme")
    monkeypatch.setattr(exposure, "check_params", lambda method, params: None)
    monkeypatch.setattr(exposure.Known, "of", classmethod(lambda cls, row: cls()))  # ids unknown
    calls = [(PAGE, {"fields": "id,name,access_token"}),
             (BUSINESS, {"fields": "id,owned_pages{id,name,access_token}"}),
             (BUSINESS, {"fields": "id,owned_pages.limit(1).as(p)"})]
    for path, query in calls:
        before = len(sandbox.calls())
        response = client.get(PROXY.format("acme", path), headers=proxy_only.headers, query_string=query)
        assert len(sandbox.calls()) == before + 1  # this time Meta answered
        assert response.status_code == 200, response.get_data(as_text=True)
        assert not tokens_in(response), response.get_data(as_text=True)
    pages = response.get_json()
    assert pages["owned_pages"]["data"][0]["name"]  # the rest of the answer is intact


@pytest.mark.parametrize("entry", ["business/owned_pages", "user/accounts", "user", "business",
                                   "act_*", "*", "page/leadgen_forms:DELETE", "ad_account/nonsense"])
def test_the_allow_list_setting_cannot_open_tokens_or_unknown_kinds(make_app, entry):
    from config import ConfigError

    with pytest.raises(ConfigError, match="META_PROXY_ALLOWED_PATHS"):
        make_app(META_PROXY_ALLOWED_PATHS=[entry])
