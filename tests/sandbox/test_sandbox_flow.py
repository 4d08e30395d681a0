"""End to end as against Meta, the blueprint under a prefix, and the live server itself."""

from __future__ import annotations

import hashlib
import hmac
import re
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from flask import Flask

from meta_sandbox import Sandbox, create_blueprint, create_sandbox_app, serve_in_thread
from meta_sandbox.server import TEMPLATES_DIR


def _submit_consent_like_a_browser(http: requests.Session, dialog_url: str) -> str:
    """Load the consent page, fill the form as shown, press Continue; return Location."""
    page = http.get(dialog_url, timeout=10)
    assert page.status_code == 200
    html = page.text
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', html).group(1))
    fields: list[tuple[str, str]] = []
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or " disabled" in tag:
            continue
        kind = re.search(r'type="([^"]+)"', tag).group(1)
        if kind in ("checkbox", "radio") and " checked" not in tag:
            continue
        fields.append((name.group(1), unescape(value.group(1) if value else "on")))
    fields.append(("decision", "approve"))
    response = http.post(urljoin(dialog_url, action), data=fields, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    return response.headers["Location"]


def test_whole_flow_with_plain_requests_as_against_meta(meta):
    """dialog -> code -> long-lived -> debug_token -> businesses, no sandbox shortcuts."""
    base, version = meta.url, "v25.0"
    app_id, secret, redirect_uri = meta.app_id, meta.app_secret, meta.redirect_uri
    meta.control("config", code_token_expires_in=7200)  # get a short-lived token first
    with requests.Session() as http:
        dialog = f"{base}/{version}/dialog/oauth?" + urlencode(
            {
                "client_id": app_id,
                "redirect_uri": redirect_uri,
                "state": "s-42",
                "response_type": "code",
                "scope": "ads_management,business_management,whatsapp_business_management,"
                "pages_read_engagement,read_insights",
            }
        )
        location = _submit_consent_like_a_browser(http, dialog)
        assert location.startswith(redirect_uri) and location.endswith("#_=_")
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == ["s-42"]

        short = http.get(
            f"{base}/{version}/oauth/access_token",
            params={
                "client_id": app_id,
                "redirect_uri": redirect_uri,
                "client_secret": secret,
                "code": query["code"][0],
            },
        ).json()
        assert short["expires_in"] == 7200

        long = http.get(
            f"{base}/{version}/oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": app_id,
                "client_secret": secret,
                "fb_exchange_token": short["access_token"],
            },
        ).json()
        token = long["access_token"]
        assert token.startswith("EAA") and long["expires_in"] > 59 * 86400

        info = http.get(
            f"{base}/{version}/debug_token",
            params={"input_token": token, "access_token": f"{app_id}|{secret}"},
        ).json()["data"]
        assert info["app_id"] == app_id and info["is_valid"] and info["type"] == "USER"

        proof = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        fields = (
            "id,name,owned_ad_accounts.limit(100){id,account_id,name,account_status,currency,"
            "timezone_name},client_ad_accounts.limit(100){id,account_id,name},"
            "owned_whatsapp_business_accounts{id,name}"
        )
        response = http.get(
            f"{base}/{version}/me/businesses",
            params={"fields": fields, "appsecret_proof": proof},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert response.headers["facebook-api-version"] == version
        businesses = response.json()["data"]
        accounts = []
        for business in businesses:
            edge = business["owned_ad_accounts"]
            accounts += edge["data"]
            while edge["paging"].get("next"):
                edge = http.get(
                    edge["paging"]["next"],
                    params={"appsecret_proof": proof},
                    headers={"Authorization": f"Bearer {token}"},
                ).json()
                accounts += edge["data"]
        assert len(accounts) == len({a["id"] for a in accounts}) == 130 + 6 + 4


@pytest.fixture
def mounted():
    """The blueprint inside another app under /sandbox/meta, served live."""
    app = Flask("host_app", template_folder=str(TEMPLATES_DIR))
    sandbox = Sandbox("111", "secret-111", ["http://localhost/cb"], require_appsecret_proof=False)
    app.register_blueprint(create_blueprint(sandbox), url_prefix="/sandbox/meta")
    other = Sandbox("222", "secret-222", ["http://localhost/cb2"])
    app.register_blueprint(create_blueprint(other, name="sandbox_two"), url_prefix="/other")
    server = serve_in_thread(app)
    yield server.url + "/sandbox/meta", sandbox
    server.shutdown()


def test_blueprint_works_under_a_url_prefix(mounted):
    base, sandbox = mounted
    dialog = f"{base}/v25.0/dialog/oauth?client_id=111&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&state=x"
    with requests.Session() as http:
        html = http.get(dialog).text
        assert 'action="/sandbox/meta/v25.0/dialog/oauth?' in html
        assert 'href="/sandbox/meta/_sandbox/sandbox.css"' in html
        css = http.get(f"{base}/_sandbox/sandbox.css")
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
        token = sandbox.mint_token(None)
        body = http.get(
            f"{base}/v25.0/2010000000000001/owned_ad_accounts", params={"access_token": token}
        ).json()
        assert body["paging"]["next"].startswith(f"{base}/v25.0/2010000000000001/owned_ad_accounts?")
        assert http.get(body["paging"]["next"]).status_code == 200
        assert http.post(f"{base}/_sandbox/reset").json() == {"success": True}
        assert http.get(base + "/").json()["app_id"] == "111"


def test_each_call_builds_a_new_blueprint():
    sandbox = Sandbox("1", "s", ["http://localhost/cb"])
    assert create_blueprint(sandbox) is not create_blueprint(sandbox)


def test_standalone_app_exposes_its_sandbox_and_an_index(sandbox_app, client):
    assert isinstance(sandbox_app.extensions["meta_sandbox"], Sandbox)
    index = client.get("/").get_json()
    assert index["dialog"].endswith("/v25.0/dialog/oauth")
    assert len(index["users"]) >= 3


def test_live_server_reports_url_and_port_and_shuts_down():
    server = serve_in_thread(create_sandbox_app("9", "s", "http://localhost/cb"))
    assert server.url == f"http://127.0.0.1:{server.port}"
    with requests.Session() as http:
        assert http.get(server.url + "/_sandbox/clock").status_code == 200
    server.shutdown()
    assert not server.thread.is_alive()
    with pytest.raises(requests.ConnectionError), requests.Session() as http:
        http.get(server.url + "/_sandbox/clock", timeout=2)


def test_concurrent_minting_and_inspection(meta):
    def one(_):
        with requests.Session() as http:
            token = http.post(f"{meta.url}/_sandbox/tokens", json={}).json()["access_token"]
            data = http.get(
                f"{meta.url}/v25.0/debug_token",
                params={"input_token": token, "access_token": f"{meta.app_id}|{meta.app_secret}"},
            ).json()["data"]
            return token, data["is_valid"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(40)))
    assert all(valid for _, valid in results)
    assert len({token for token, _ in results}) == 40
    assert len([c for c in meta.calls() if c["path"] == "/v25.0/debug_token"]) == 40


def test_no_token_secret_or_code_reaches_the_logs(meta, caplog):
    caplog.set_level("DEBUG")
    code = meta.code()
    token = meta.exchange(code).json()["access_token"]
    meta.graph("/me", token)
    meta.debug(token)
    # The client's own urllib3 debug lines are the test's, not the sandbox's.
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    for secret in (token, code, meta.app_secret):
        assert secret not in text
