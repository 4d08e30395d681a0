"""Code exchange, long-lived exchange, client credentials and debug_token shapes."""

from __future__ import annotations

import pytest

from meta_sandbox import USER_WITH_BUSINESSES

SIXTY_DAYS = 60 * 86400


def _error(response, status=400):
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_code_exchange_returns_a_bearer_token(meta):
    body = meta.exchange(meta.code()).json()
    assert body["access_token"].startswith("EAA")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 5183944


def test_code_exchange_also_accepts_a_post_form(meta):
    response = meta.http.post(
        f"{meta.url}/{meta.version}/oauth/access_token",
        data={
            "grant_type": "authorization_code",
            "client_id": meta.app_id,
            "client_secret": meta.app_secret,
            "redirect_uri": meta.redirect_uri,
            "code": meta.code(),
        },
    )
    assert response.status_code == 200 and response.json()["access_token"].startswith("EAA")


def test_codes_are_single_use(meta):
    code = meta.code()
    assert meta.exchange(code).status_code == 200
    err = _error(meta.exchange(code))
    assert (err["code"], err["error_subcode"]) == (100, 36009)
    assert err["message"] == "This authorization code has been used."
    assert err["type"] == "OAuthException" and err["fbtrace_id"]


def test_codes_expire_after_ten_minutes(meta):
    code = meta.code()
    meta.control("clock", advance_seconds=601)
    err = _error(meta.exchange(code))
    assert (err["code"], err["error_subcode"]) == (100, 36007)
    assert err["message"] == "This authorization code has expired."


def test_code_still_valid_just_under_ten_minutes(meta):
    code = meta.code()
    meta.control("clock", advance_seconds=590)
    assert meta.exchange(code).status_code == 200


def test_redirect_uri_must_match_the_dialogs(meta):
    err = _error(meta.exchange(meta.code(), redirect_uri=meta.redirect_uri + "?x=1"))
    assert (err["code"], err["error_subcode"]) == (100, 36008)


def test_wrong_secret_is_code_1(meta):
    err = _error(meta.exchange(meta.code(), client_secret="nope"))
    assert err["code"] == 1
    assert err["message"] == "Error validating client secret."


def test_wrong_client_id_is_code_101(meta):
    assert _error(meta.exchange(meta.code(), client_id="1"))["code"] == 101


def test_unknown_code_is_refused(meta):
    assert _error(meta.exchange("AQnot-a-code"))["code"] == 100


def test_short_lived_code_token_exchanges_for_a_sixty_day_token(meta):
    meta.control("config", code_token_expires_in=7200)
    body = meta.exchange(meta.code()).json()
    assert body["expires_in"] == 7200
    extended = meta.extend(body["access_token"]).json()
    assert extended["access_token"] != body["access_token"]
    assert extended["access_token"].startswith("EAA")
    assert extended["token_type"] == "bearer"
    assert SIXTY_DAYS - 60 <= extended["expires_in"] <= SIXTY_DAYS
    data = meta.debug(extended["access_token"])
    assert data["is_valid"] and data["type"] == "USER"


def test_exchanging_a_long_lived_token_does_not_push_expiry_out(meta):
    token = meta.login()
    before = meta.debug(token)["expires_at"]
    meta.control("clock", advance_seconds=86400 * 3)
    again = meta.extend(token).json()
    assert again["access_token"] != token
    assert meta.debug(again["access_token"])["expires_at"] == before


def test_extend_long_lived_setting_extends_to_sixty_days_from_now(meta):
    meta.control("config", extend_long_lived=True)
    token = meta.login()
    before = meta.debug(token)["expires_at"]
    meta.control("clock", advance_seconds=86400 * 3)
    new = meta.extend(token).json()["access_token"]
    after = meta.debug(new)["expires_at"]
    assert after - before >= 86400 * 3 - 120
    assert meta.http.get(f"{meta.url}/_sandbox/clock").json()["offset_seconds"] == 86400 * 3


def test_expired_token_cannot_be_exchanged(meta):
    token = meta.mint(expires_in=3600)
    meta.control("clock", advance_seconds=3601)
    err = _error(meta.extend(token))
    assert (err["code"], err["error_subcode"]) == (190, 463)


def test_client_credentials_gives_an_app_token_usable_for_debug_token(meta):
    response = meta.http.get(
        f"{meta.url}/{meta.version}/oauth/access_token",
        params={
            "grant_type": "client_credentials",
            "client_id": meta.app_id,
            "client_secret": meta.app_secret,
        },
    )
    app_token = response.json()["access_token"]
    assert app_token.startswith(f"{meta.app_id}|")
    user_token = meta.mint()
    data = meta.http.get(
        f"{meta.url}/{meta.version}/debug_token",
        params={"input_token": user_token, "access_token": app_token},
    ).json()["data"]
    assert data["is_valid"] is True


def test_debug_token_full_shape_for_a_valid_user_token(meta):
    token = meta.login()
    data = meta.debug(token)
    assert set(data) == {
        "app_id",
        "type",
        "application",
        "data_access_expires_at",
        "expires_at",
        "is_valid",
        "issued_at",
        "scopes",
        "granular_scopes",
        "user_id",
    }
    assert data["app_id"] == meta.app_id
    assert data["type"] == "USER" and data["is_valid"] is True
    assert data["user_id"] == USER_WITH_BUSINESSES
    assert data["expires_at"] - data["issued_at"] == 5183944
    assert data["data_access_expires_at"] - data["issued_at"] == pytest.approx(90 * 86400, abs=5)
    granular = {g["scope"]: g.get("target_ids") for g in data["granular_scopes"]}
    assert all(isinstance(i, str) for ids in granular.values() if ids for i in ids)
    assert granular["business_management"] == [
        b["id"] for b in meta.graph("/me/businesses", token).json()["data"]
    ]
    assert "301000001000001" in granular["ads_management"]
    assert granular["whatsapp_business_management"]
    assert granular["read_insights"] is None


def test_debug_token_of_an_expired_token(meta):
    token = meta.mint(expires_in=60)
    meta.control("clock", advance_seconds=61)
    data = meta.debug(token)
    assert data["is_valid"] is False
    assert data["error"]["code"] == 190 and data["error"]["subcode"] == 463
    assert "expired" in data["error"]["message"]


def test_debug_token_of_a_revoked_token(meta):
    token = meta.login()
    revoke = meta.graph("/me/permissions", token, method="DELETE")
    assert revoke.json() == {"success": True}
    data = meta.debug(token)
    assert data["is_valid"] is False and data["error"]["subcode"] == 458
    err = _error(meta.graph("/me", token))
    assert (err["code"], err["error_subcode"]) == (190, 458)


def test_debug_token_after_password_change(meta):
    token = meta.login()
    meta.control(f"users/{USER_WITH_BUSINESSES}/invalidate", subcode=460)
    data = meta.debug(token)
    assert data["is_valid"] is False and data["error"]["subcode"] == 460
    assert _error(meta.graph("/me", token))["error_subcode"] == 460
    fresh = meta.login()
    assert meta.debug(fresh)["is_valid"] is True


@pytest.mark.parametrize("token", ["EAAnot-a-real-token", "garbage"])
def test_debug_token_of_an_unknown_token_is_200_and_invalid(meta, token):
    data = meta.debug(token)
    assert data["is_valid"] is False
    assert data["error"]["code"] == 190 and data["error"]["subcode"] == 467


def test_debug_token_of_a_system_user_token(meta):
    token = meta.mint(type="SYSTEM_USER")
    data = meta.debug(token)
    assert data["type"] == "SYSTEM_USER"
    assert data["expires_at"] == 0 and data["is_valid"] is True


def test_debug_token_needs_an_app_token(meta):
    token = meta.mint()
    url = f"{meta.url}/{meta.version}/debug_token"
    no_app = meta.http.get(url, params={"input_token": token})
    assert no_app.status_code == 400
    bad_secret = meta.http.get(url, params={"input_token": token, "access_token": f"{meta.app_id}|x"})
    assert bad_secret.status_code == 400 and bad_secret.json()["error"]["code"] == 190
    no_input = meta.http.get(url, params={"access_token": f"{meta.app_id}|{meta.app_secret}"})
    assert no_input.status_code == 400 and no_input.json()["error"]["code"] == 100


def test_minted_tokens_start_with_eaa_and_report_expiry(meta):
    minted = meta.control("tokens", user_id=USER_WITH_BUSINESSES, scopes=["ads_read"], expires_in=100)
    assert minted["access_token"].startswith("EAA")
    data = meta.debug(minted["access_token"])
    assert data["expires_at"] == minted["expires_at"]
    assert data["scopes"] == ["ads_read", "public_profile"]
