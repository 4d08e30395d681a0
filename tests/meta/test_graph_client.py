"""GraphClient: proof, secrets out of URLs, retries for transient errors only, error taxonomy."""

import json

import pytest
import requests

from crm_meta.meta.errors import (
    BadRequestError,
    PermissionMissingError,
    ThrottledError,
    TokenInvalidError,
    TransientError,
)
from crm_meta.meta.graph import GraphClient, appsecret_proof, endpoint_label
from tests.tools.configs import meta_settings

BASE = "https://graph.test"
TOKEN = "EAAsecrettoken"


@pytest.fixture
def graph():
    sleeps = []
    client = GraphClient(meta_settings(base_url=BASE, version="v25.0", app_id="42", app_secret="shh",
                                       http_retries=3), sleep=sleeps.append)
    client.sleeps = sleeps
    return client


def error_body(code, subcode=None, transient=False, message="boom"):
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_subcode": subcode, "fbtrace_id": "TRACE1", "is_transient": transient}}


def test_token_goes_in_header_with_appsecret_proof(graph, requests_mock):
    requests_mock.get(f"{BASE}/v25.0/me", json={"id": "1", "name": "Ana"})
    assert graph.get("me", token=TOKEN, fields="id,name") == {"id": "1", "name": "Ana"}
    sent = requests_mock.last_request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in sent.url
    assert sent.qs["appsecret_proof"] == [appsecret_proof("shh", TOKEN)]


def test_debug_token_is_a_get_with_the_app_token_in_the_header(graph, requests_mock):
    # Meta documents debug_token as GET only and refuses a POST (code 100, subcode 33): no
    # `method=GET` override. The secret-looking query is kept out of logs by crm_meta.ops.redaction.
    requests_mock.get(f"{BASE}/v25.0/debug_token", json={"data": {"is_valid": True}})
    graph.get("debug_token", token=graph.app_token, input_token=TOKEN)
    sent = requests_mock.last_request
    assert sent.method == "GET" and sent.qs["input_token"] == [TOKEN.lower()]
    assert sent.headers["Authorization"] == "Bearer 42|shh"
    assert "shh" not in sent.url and "method" not in sent.qs and not sent.body
    assert "appsecret_proof" not in sent.qs  # the app token needs no proof


def test_posts_carry_their_parameters_in_the_body(graph, requests_mock):
    requests_mock.post(f"{BASE}/v25.0/oauth/access_token", json={"access_token": "EAAnew"})
    graph.call("POST", "oauth/access_token", params={**graph.client_params(), "code": "AQcode"})
    sent = requests_mock.last_request
    assert "shh" not in sent.url and "AQcode" not in sent.url
    assert dict(p.split("=", 1) for p in sent.text.split("&"))["client_secret"] == "shh"


def test_a_refusal_with_code_1_is_permanent(graph, requests_mock):
    # code 1 + OAuthException + HTTP 4xx (e.g. "Error validating client secret.") is a refusal.
    requests_mock.get(f"{BASE}/v25.0/me", status_code=400, json=error_body(1))
    with pytest.raises(BadRequestError):
        graph.get("me", token=TOKEN)
    assert requests_mock.call_count == 1 and graph.sleeps == []


@pytest.mark.parametrize("status, body", [
    (500, error_body(2, transient=True)),
    (503, {"error": {"message": "down"}}),
    (500, error_body(1)),
    (400, {"error": {**error_body(1)["error"], "type": "GraphMethodException"}}),
    (400, error_body(100, transient=True)),
])
def test_transient_errors_are_retried_with_backoff(graph, requests_mock, status, body):
    requests_mock.get(f"{BASE}/v25.0/me", [{"status_code": status, "json": body},
                                           {"json": {"id": "1"}}])
    assert graph.get("me", token=TOKEN) == {"id": "1"}
    assert requests_mock.call_count == 2
    assert len(graph.sleeps) == 1 and 0 < graph.sleeps[0] <= 8


def test_retries_stop_after_the_budget(graph, requests_mock):
    requests_mock.get(f"{BASE}/v25.0/me", status_code=500, json=error_body(2, transient=True))
    with pytest.raises(TransientError) as caught:
        graph.get("me", token=TOKEN)
    assert requests_mock.call_count == 4
    assert caught.value.fbtrace_id == "TRACE1"
    assert len(graph.sleeps) == 3


@pytest.mark.parametrize("code, subcode, kind", [
    (190, 463, TokenInvalidError), (102, None, TokenInvalidError),
    (10, None, PermissionMissingError), (200, None, PermissionMissingError),
    (100, None, BadRequestError), (368, None, BadRequestError),
])
def test_permanent_errors_are_not_retried(graph, requests_mock, code, subcode, kind):
    requests_mock.get(f"{BASE}/v25.0/me", status_code=400, json=error_body(code, subcode))
    with pytest.raises(kind) as caught:
        graph.get("me", token=TOKEN)
    assert requests_mock.call_count == 1
    assert (caught.value.code, caught.value.subcode) == (code, subcode)


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80004])
def test_rate_limits_become_throttled_with_retry_after(graph, requests_mock, code):
    usage = {"123": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 7}]}
    requests_mock.get(f"{BASE}/v25.0/me", status_code=400, json=error_body(code),
                      headers={"x-business-use-case-usage": json.dumps(usage)})
    with pytest.raises(ThrottledError) as caught:
        graph.get("me", token=TOKEN)
    assert caught.value.retry_after == 7 * 60
    assert requests_mock.call_count == 1


def test_timeouts_and_garbage_are_transient_and_name_no_url(graph, requests_mock):
    requests_mock.get(f"{BASE}/v25.0/me", exc=requests.ConnectTimeout)
    with pytest.raises(TransientError) as caught:
        graph.get("me", token=TOKEN)
    assert BASE not in str(caught.value)
    requests_mock.get(f"{BASE}/v25.0/me", text="<html>oops</html>", status_code=200)
    with pytest.raises(TransientError, match="not JSON"):
        graph.get("me", token=TOKEN)


def test_code_exchange_is_never_retried(graph, requests_mock):
    requests_mock.post(f"{BASE}/v25.0/oauth/access_token", status_code=500,
                       json=error_body(2, transient=True))
    with pytest.raises(TransientError):
        graph.call("POST", "oauth/access_token", retry=False, params={"code": "abc"})
    assert requests_mock.call_count == 1


def test_usage_headers_are_remembered(graph, requests_mock):
    requests_mock.get(f"{BASE}/v25.0/me", json={"id": "1"},
                      headers={"x-app-usage": json.dumps({"call_count": 85, "total_time": 10})})
    graph.get("me", token=TOKEN)
    assert graph.last_app_usage == 85


def test_paging_links_are_followed_without_their_token(graph):
    next_url = f"{BASE}/v25.0/me/adaccounts?access_token={TOKEN}&appsecret_proof=p&after=X&limit=1"
    path, params = graph.next_page_params({"data": [], "paging": {"next": next_url}})
    assert (path, params) == ("/me/adaccounts", {"after": "X", "limit": "1"})
    assert graph.next_page_params({"data": [], "paging": {"cursors": {"after": "X"}}}) is None


def test_paging_links_elsewhere_are_refused(graph):
    with pytest.raises(Exception, match="outside"):
        graph.next_page_params({"paging": {"next": "https://evil.test/v25.0/me?after=1"}})


@pytest.mark.parametrize("path, label", [
    ("me/adaccounts", "/me/adaccounts"), ("/v25.0/123456/owned_ad_accounts", "/{id}/owned_ad_accounts"),
    ("act_99/insights", "/{id}/insights"), ("", "/"),
])
def test_metric_labels_hide_ids(path, label):
    assert endpoint_label(path) == label


def test_app_level_throttling_stops_further_calls(graph, requests_mock):
    requests_mock.get(f"{BASE}/v25.0/me", status_code=400, json=error_body(4))
    with pytest.raises(ThrottledError):
        graph.get("me", token=TOKEN)
    with pytest.raises(ThrottledError) as caught:
        graph.get("me", token=TOKEN)
    assert requests_mock.call_count == 1  # the second call never left the process
    assert caught.value.retry_after > 0


def test_usage_at_the_budget_stops_further_calls(graph, requests_mock):
    requests_mock.get(f"{BASE}/v25.0/me", json={"id": "1"},
                      headers={"x-app-usage": json.dumps({"call_count": 100})})
    graph.get("me", token=TOKEN)
    with pytest.raises(ThrottledError):
        graph.get("me", token=TOKEN)
    assert requests_mock.call_count == 1


def test_a_batch_carries_its_token_as_a_top_level_body_parameter(graph, requests_mock):
    answers = [{"code": 200, "body": json.dumps({"id": "1"})}, None]
    requests_mock.post(f"{BASE}/v25.0/", json=answers)
    results = graph.batch([{"relative_url": "me"}, {"relative_url": "me/businesses"}], token=TOKEN)
    assert results == [{"id": "1"}, None]  # null: timed out inside the batch, to be asked again
    sent = requests_mock.last_request
    body = dict(p.split("=", 1) for p in sent.text.split("&"))
    assert body["access_token"] == TOKEN and body["appsecret_proof"] == appsecret_proof("shh", TOKEN)
    assert "Authorization" not in sent.headers and TOKEN not in sent.url


def test_the_environments_proxy_settings_are_read_once_per_session(monkeypatch):
    from crm_meta.meta.graph import GraphClient

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    graph = GraphClient(meta_settings(base_url="https://graph.facebook.com", version="v26.0", app_id="1",
                                      app_secret="s"))
    session = graph.session
    assert session.proxies.get("https") == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/certs/ca-certificates.crt" and session.trust_env is False


def test_pass_through_calls_go_to_the_hosts_own_pool_or_through_the_proxy(monkeypatch):
    """The proxy's calls: straight to Meta's host's pool, found once per base URL (its path kept
    in the target, TLS settings for https only), or through the environment's proxy."""
    import urllib3

    from crm_meta.meta import passthrough

    made, sent = [], []

    class Pool:
        def urlopen(self, method, target, **options):
            sent.append((method, target))

    monkeypatch.setattr(urllib3, "connection_from_url", lambda url, **kw: made.append((url, kw)) or Pool())
    pools = passthrough.Pools(None, "/ca.pem")
    pools.urlopen("GET", "https://graph.example/prefix", "/v25.0/act_1?x=1")
    pools.urlopen("GET", "https://graph.example/prefix", "/v25.0/act_2")
    pools.urlopen("GET", "http://127.0.0.1:9", "/v25.0/me")
    assert made == [("https://graph.example/prefix", {"maxsize": 32, "ca_certs": "/ca.pem"}),
                    ("http://127.0.0.1:9", {"maxsize": 32})]
    assert sent == [("GET", "/prefix/v25.0/act_1?x=1"), ("GET", "/prefix/v25.0/act_2"), ("GET", "/v25.0/me")]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    proxied = passthrough.pool_for("https://graph.facebook.com")
    monkeypatch.setattr(proxied.proxied, "urlopen", lambda method, url, **options: sent.append((method, url)))
    proxied.urlopen("GET", "https://graph.facebook.com", "/v25.0/me")
    assert sent[-1] == ("GET", "https://graph.facebook.com/v25.0/me") and len(made) == 2


def test_metas_auto_upgrade_warning_is_logged_naming_the_version_to_use(sandbox, caplog):
    from crm_meta.meta.graph import GraphClient
    from tests.helpers.sandbox import ACCOUNT
    from tests.helpers.settings import APP_ID, APP_SECRET

    token = sandbox.post("tokens")["access_token"]
    graph = GraphClient(meta_settings(base_url=sandbox.url, version="v24.0", app_id=APP_ID,
                                      app_secret=APP_SECRET))
    assert graph.get(f"{ACCOUNT}/campaigns", token=token)["data"]
    [line] = [r.getMessage() for r in caplog.records if "auto-upgraded" in r.getMessage()]
    assert "v24.0 has been deprecated" in line and "set META_GRAPH_API_VERSION to v26.0" in line
