"""The login dialog: validation, consent page, redirects, declined scopes, config_id, no PKCE."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

import pytest

from meta_sandbox import USER_WITH_BUSINESSES, USER_WITHOUT_BUSINESSES, create_sandbox_app


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"client_id": "999"}, 400, "Invalid App ID"),
        ({"client_id": None}, 400, "app_id is required"),
        ({"redirect_uri": "http://evil.example/cb"}, 400, "URL blocked"),
        ({"redirect_uri": "http://localhost:8000/crm/auth/meta/callback/"}, 400, "URL blocked"),
        ({"redirect_uri": None}, 400, "URL blocked"),
        ({"scope": "ads_management,made_up_scope"}, 400, "Invalid Scopes: made_up_scope"),
        ({"response_type": "token"}, 400, "response_type=code"),
    ],
)
def test_dialog_refuses_bad_requests_with_an_error_page_and_no_redirect(meta, params, status, text):
    for method in ("GET", "POST"):
        response = meta.http.request(method, meta.dialog_url(**params), allow_redirects=False)
        assert response.status_code == status
        assert "Location" not in response.headers
        assert text in response.text
        assert "Meta sandbox" in response.text


@pytest.mark.parametrize("version", ["v99.0", "latest", "v25"])
def test_dialog_refuses_unknown_versions(meta, version):
    response = meta.http.get(meta.dialog_url(version=version), allow_redirects=False)
    assert response.status_code == 404
    assert "Location" not in response.headers


@pytest.mark.parametrize("version", ["v21.0", "v26.0", "v19.0", "v20.0"])
def test_dialog_accepts_current_and_retired_versions(meta, version):
    assert meta.http.get(meta.dialog_url(version=version)).status_code == 200


def test_consent_page_lists_app_permissions_users_and_buttons(meta):
    url = meta.dialog_url()
    html = meta.http.get(url).text
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "Meta sandbox" in title and "not Facebook" in title
    assert meta.app_id in html and "CRM Meta (sandbox)" in html
    for scope in (
        "ads_management",
        "business_management",
        "whatsapp_business_management",
        "pages_read_engagement",
        "read_insights",
    ):
        assert f'<input type="checkbox" name="granted" value="{scope}" checked>' in html
    radios = re.findall(r'<input type="radio" name="user_id" value="(\d+)"', html)
    assert radios[0] == USER_WITH_BUSINESSES and len(radios) >= 3
    assert 'name="decision" value="approve"' in html
    assert 'name="decision" value="cancel"' in html
    action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
    assert action.replace("&amp;", "&") == url.removeprefix(meta.url)
    assert "María José Fernández" in html


def test_approve_redirects_with_code_state_and_fragment(meta):
    location = meta.approve()
    assert location.startswith(meta.redirect_uri + "?")
    assert location.endswith("#_=_")
    params = meta.query_of(location)
    assert set(params) == {"code", "state"}
    assert params["state"] == "st-123"


def test_cancel_redirects_with_metas_exact_denial_shape(meta):
    response = meta.consent(meta.dialog_url(state="abc"), decision="cancel")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        meta.redirect_uri + "?error=access_denied&error_code=200&error_description=Permissions+error"
        "&error_reason=user_denied&state=abc#_=_"
    )


def test_return_scopes_adds_granted_and_denied(meta):
    location = meta.approve(return_scopes="true", granted=["ads_management", "business_management"])
    params = meta.query_of(location)
    assert params["granted_scopes"] == "ads_management,business_management,public_profile"
    assert params["denied_scopes"] == ("pages_read_engagement,read_insights,whatsapp_business_management")


def test_post_without_user_id_acts_as_first_test_user(meta):
    token = meta.login()
    assert meta.debug(token)["user_id"] == USER_WITH_BUSINESSES


def test_chosen_user_is_the_token_owner(meta):
    token = meta.login(user_id=USER_WITHOUT_BUSINESSES)
    assert meta.graph("/me", token).json()["id"] == USER_WITHOUT_BUSINESSES


def test_unknown_user_id_is_refused(meta):
    response = meta.consent(meta.dialog_url(), decision="approve", user_id="1")
    assert response.status_code == 400


def test_unchecked_scopes_are_declined_and_really_missing(meta):
    token = meta.login(granted=["ads_management"])
    data = meta.debug(token)
    assert data["scopes"] == ["ads_management", "public_profile"]
    perms = {p["permission"]: p["status"] for p in meta.graph("/me/permissions", token).json()["data"]}
    assert perms["business_management"] == "declined"
    assert perms["ads_management"] == "granted"
    denied = meta.graph("/me/businesses", token)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == 200


def test_declined_scopes_stay_declined_until_rerequest(meta):
    meta.login(granted=["ads_management"])
    again = meta.login(granted=["ads_management", "business_management"])
    assert "business_management" not in meta.debug(again)["scopes"]
    rerequested = meta.login(auth_type="rerequest", granted=["ads_management", "business_management"])
    assert "business_management" in meta.debug(rerequested)["scopes"]
    assert meta.graph("/me/businesses", rerequested).status_code == 200


def test_config_id_gives_a_never_expiring_system_user_token(meta):
    code = meta.code(config_id="998877", scope=None)
    body = meta.exchange(code).json()
    assert "expires_in" not in body
    data = meta.debug(body["access_token"])
    assert data["type"] == "SYSTEM_USER"
    assert data["expires_at"] == 0
    assert {
        "ads_management",
        "business_management",
        "whatsapp_business_management",
        "pages_read_engagement",
        "read_insights",
    } <= set(data["scopes"])


def test_consent_page_for_config_id_names_the_configuration(meta):
    html = meta.http.get(meta.dialog_url(config_id="998877", scope=None)).text
    assert "998877" in html and "system-user" in html


def test_reauthorize_is_accepted(meta):
    assert meta.http.get(meta.dialog_url(auth_type="reauthorize")).status_code == 200
    assert meta.login(auth_type="reauthorize").startswith("EAA")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


PKCE_REFUSED = "code_verifier param is provided without a code_challenge in authorization request."


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_the_dialog_silently_drops_a_pkce_challenge(meta, method):
    # Meta's web dialog accepts code_challenge and forgets it (NangoHQ/nango PR #7156):
    # an exchange without a verifier then works, as if no challenge had been sent.
    pkce = {"code_challenge": _challenge("v" * 50), "code_challenge_method": method}
    location = meta.approve(**pkce)
    assert "code_challenge" not in location
    assert meta.exchange(meta.query_of(location)["code"]).status_code == 200


@pytest.mark.parametrize("with_challenge", [True, False])
def test_any_code_verifier_is_refused_with_metas_error(meta, with_challenge):
    verifier = "v" * 50
    pkce = {"code_challenge": _challenge(verifier), "code_challenge_method": "S256"} if with_challenge else {}
    code = meta.code(**pkce)
    refused = meta.exchange(code, code_verifier=verifier)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["message"], error["type"], error["code"]) == (PKCE_REFUSED, "OAuthException", 1)
    assert error["is_transient"] is False and error["fbtrace_id"]
    assert meta.exchange(code).status_code == 200  # the refusal did not use the code up


def test_a_verifier_is_refused_on_a_post_exchange_too(meta):
    data = {"client_id": meta.app_id, "client_secret": meta.app_secret,
            "redirect_uri": meta.redirect_uri, "code": meta.code(), "code_verifier": "x" * 43,
            "grant_type": "authorization_code"}
    refused = meta.http.post(f"{meta.url}/{meta.version}/oauth/access_token", data=data, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["message"] == PKCE_REFUSED


def test_redirect_uri_with_its_own_query_keeps_it():
    app = create_sandbox_app("77", "s", ["http://localhost/cb?tenant=7"])
    response = app.test_client().post(
        "/v25.0/dialog/oauth?client_id=77&redirect_uri=http%3A%2F%2Flocalhost%2Fcb%3Ftenant%3D7"
    )
    location = response.headers["Location"]
    assert location.startswith("http://localhost/cb?tenant=7&code=")
    assert urlsplit(location).fragment == "_=_"


def test_unversioned_dialog_path_works(meta, client):
    response = client.get(f"/dialog/oauth?client_id={meta.app_id}&redirect_uri={meta.redirect_uri}")
    assert response.status_code == 200
