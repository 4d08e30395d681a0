"""Graph nodes, fields, nested expansion, pagination, permissions, data access, proof."""

from __future__ import annotations

import time

import pytest

from meta_sandbox import USER_WITH_BUSINESSES, USER_WITHOUT_ASSETS, USER_WITHOUT_BUSINESSES

NESTED = (
    "id,name,owned_ad_accounts.limit(100){id,account_id,name,account_status,currency,timezone_name},"
    "client_ad_accounts.limit(100){id,account_id,name},owned_whatsapp_business_accounts{id,name}"
)


def _error(response, status=400):
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert {"message", "type", "code", "fbtrace_id", "is_transient"} <= set(err)
    return err


def test_me_returns_id_and_name_by_default(meta):
    token = meta.login()
    assert meta.graph("/me", token).json() == {"id": USER_WITH_BUSINESSES, "name": "María José Fernández"}
    assert meta.graph("/me", token, fields="first_name").json() == {
        "first_name": "María José",
        "id": USER_WITH_BUSINESSES,
    }


def test_token_accepted_as_access_token_parameter(meta):
    token = meta.login()
    response = meta.http.get(
        f"{meta.url}/{meta.version}/me", params={"access_token": token, "appsecret_proof": meta.proof(token)}
    )
    assert response.json()["id"] == USER_WITH_BUSINESSES


def test_missing_token_is_refused(meta):
    err = _error(meta.graph("/me", None))
    assert err["code"] == 2500


def test_appsecret_proof_is_required_and_checked(meta):
    token = meta.login()
    url = f"{meta.url}/{meta.version}/me"
    headers = {"Authorization": f"Bearer {token}"}
    missing = _error(meta.http.get(url, headers=headers))  # Meta's words when none is sent (G1)
    assert missing == {"message": "API calls from the server require an appsecret_proof argument",
                       "type": "GraphMethodException", "code": 100, "is_transient": False,
                       "fbtrace_id": missing["fbtrace_id"]}
    for params in ({"appsecret_proof": "0" * 64}, {"appsecret_proof": meta.proof(token + "x")}):
        err = _error(meta.http.get(url, params=params, headers=headers))
        assert err["code"] == 100
        assert err["message"] == "Invalid appsecret_proof provided in the API argument"


def test_timed_appsecret_proof(meta):
    token = meta.login()
    url = f"{meta.url}/{meta.version}/me"
    headers = {"Authorization": f"Bearer {token}"}
    now = int(time.time())
    ok = {"appsecret_proof": meta.proof(token, now), "appsecret_time": str(now)}
    assert meta.http.get(url, params=ok, headers=headers).status_code == 200
    old = now - 301
    stale = {"appsecret_proof": meta.proof(token, old), "appsecret_time": str(old)}
    assert _error(meta.http.get(url, params=stale, headers=headers))["code"] == 100
    wrong_time = {"appsecret_proof": meta.proof(token, now), "appsecret_time": str(now - 1)}
    assert _error(meta.http.get(url, params=wrong_time, headers=headers))["code"] == 100


def test_proof_can_be_switched_off(meta):
    token = meta.login()
    meta.control("config", require_appsecret_proof=False)
    response = meta.http.get(f"{meta.url}/{meta.version}/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_nested_expansion_returns_each_edge_as_data_and_paging(meta):
    token = meta.login()
    body = meta.graph("/me/businesses", token, fields=NESTED).json()
    assert len(body["data"]) == 3
    big = body["data"][0]
    assert set(big) == {"id", "name", "owned_ad_accounts", "client_ad_accounts",
                        "owned_whatsapp_business_accounts"}  # fmt: skip
    owned = big["owned_ad_accounts"]
    assert len(owned["data"]) == 100
    assert owned["paging"]["next"].startswith(f"{meta.url}/{meta.version}/{big['id']}/owned_ad_accounts?")
    account = owned["data"][0]
    assert set(account) == {"id", "account_id", "name", "account_status", "currency", "timezone_name"}
    assert account["id"] == f"act_{account['account_id']}"
    assert big["owned_whatsapp_business_accounts"]["data"][0]["name"]
    small = body["data"][2]["owned_ad_accounts"]
    assert "next" not in small["paging"]


def test_nested_next_link_continues_the_listing(meta):
    token = meta.login()
    body = meta.graph("/me/businesses", token, fields=NESTED).json()
    owned = body["data"][0]["owned_ad_accounts"]
    ids = [a["id"] for a in owned["data"]]
    response = meta.http.get(owned["paging"]["next"], headers={"Authorization": f"Bearer {token}"},
                             params={"appsecret_proof": meta.proof(token)})  # fmt: skip
    rest = response.json()
    assert set(rest["data"][0]) == {"id", "account_id", "name", "account_status", "currency", "timezone_name"}
    ids += [a["id"] for a in rest["data"]]
    assert "next" not in rest["paging"]
    assert len(ids) == len(set(ids)) == 130


def test_walking_every_page_yields_every_account_exactly_once(meta):
    meta.control("config", require_appsecret_proof=False)
    token = meta.login()
    business = meta.graph("/me/businesses", token).json()["data"][0]["id"]
    url = (
        f"{meta.url}/{meta.version}/{business}/owned_ad_accounts?limit=30&fields=id,name&access_token={token}"
    )
    seen, pages = [], 0
    while url:
        body = meta.http.get(url).json()
        seen += [a["id"] for a in body["data"]]
        pages += 1
        url = body["paging"].get("next")
    assert pages == 5
    assert len(seen) == len(set(seen)) == 130


def test_before_cursor_and_previous_link(meta):
    token = meta.login()
    business = meta.graph("/me/businesses", token).json()["data"][0]["id"]
    first = meta.graph(f"/{business}/owned_ad_accounts", token, limit=10).json()
    assert "previous" not in first["paging"]
    second = meta.graph(
        f"/{business}/owned_ad_accounts", token, limit=10, after=first["paging"]["cursors"]["after"]
    ).json()
    assert "previous" in second["paging"]
    back = meta.graph(
        f"/{business}/owned_ad_accounts", token, limit=10, before=second["paging"]["cursors"]["before"]
    ).json()
    assert back["data"] == first["data"]


def test_default_page_size_and_cap(meta):
    token = meta.login()
    business = meta.graph("/me/businesses", token).json()["data"][0]["id"]
    assert len(meta.graph(f"/{business}/owned_ad_accounts", token).json()["data"]) == 25
    assert len(meta.graph(f"/{business}/owned_ad_accounts", token, limit=500).json()["data"]) == 100


def test_bad_cursor_and_bad_fields_are_code_100(meta):
    token = meta.login()
    assert _error(meta.graph("/me/businesses", token, after="zzz"))["code"] == 100
    assert _error(meta.graph("/me", token, fields="id,nope"))["code"] == 100
    assert _error(meta.graph("/me/businesses", token, fields="id,owned_ad_accounts{id"))["code"] == 100
    assert _error(meta.graph("/me/nothing", token))["code"] == 100


def test_fixtures_cover_every_status_and_several_currencies(meta):
    token = meta.login()
    business = meta.graph("/me/businesses", token).json()["data"][0]["id"]
    body = meta.graph(
        f"/{business}/owned_ad_accounts", token, limit=100, fields="account_status,currency,timezone_name"
    ).json()
    statuses = {a["account_status"] for a in body["data"]}
    assert statuses == {1, 2, 3, 7, 8, 9, 100, 101}
    adaccounts = meta.graph("/me/adaccounts", token, limit=100, fields="currency").json()["data"]
    currencies = {a["currency"] for a in body["data"] + adaccounts}
    assert {"EUR", "USD"} <= currencies and len(currencies) >= 4


def test_client_ad_accounts(meta):
    token = meta.login()
    businesses = meta.graph("/me/businesses", token).json()["data"]
    clients = meta.graph(f"/{businesses[0]['id']}/client_ad_accounts", token, fields="id,business").json()
    assert len(clients["data"]) == 2
    assert clients["data"][0]["business"]["name"].startswith("Agencia Externa")


def test_user_without_businesses_has_personal_ad_accounts(meta):
    token = meta.login(user_id=USER_WITHOUT_BUSINESSES)
    assert meta.graph("/me/businesses", token).json() == {"data": []}
    accounts = meta.graph("/me/adaccounts", token).json()["data"]
    assert len(accounts) == 3
    assert set(accounts[0]) == {"account_id", "id"}


def test_user_without_assets_sees_empty_lists(meta):
    token = meta.login(user_id=USER_WITHOUT_ASSETS)
    for path in ("/me/businesses", "/me/adaccounts", "/me/accounts"):
        assert meta.graph(path, token).json() == {"data": []}


def test_me_accounts_lists_pages_with_page_tokens(meta):
    meta.control("config", require_appsecret_proof=False)
    token = meta.login(scope="pages_show_list,business_management")
    pages = meta.graph("/me/accounts", token).json()["data"]
    assert len(pages) == 2
    page = pages[0]
    assert {"id", "name", "category", "access_token", "tasks"} <= set(page)
    assert "MANAGE" in page["tasks"]
    data = meta.debug(page["access_token"])
    assert data["type"] == "PAGE" and data["expires_at"] == 0 and data["profile_id"] == page["id"]
    me = meta.http.get(f"{meta.url}/{meta.version}/me", params={"access_token": page["access_token"]}).json()
    assert me == {"name": page["name"], "id": page["id"]}


@pytest.mark.parametrize(
    ("scope", "path", "code"),
    [
        ("ads_management", "/me/businesses", 200),
        ("business_management", "/me/adaccounts", 200),
        ("business_management", "/me/accounts", 10),
        ("business_management", "/{biz}/owned_whatsapp_business_accounts", 200),
        ("business_management", "/{biz}/owned_ad_accounts", 200),
    ],
)
def test_missing_permission_fails_like_meta(meta, scope, path, code):
    business = f"{2010000000000001}"
    token = meta.login(scope=scope)
    err = _error(meta.graph(path.format(biz=business), token), 403 if code == 200 else 400)
    assert err["code"] == code


def test_nested_edge_without_permission_fails_the_whole_call(meta):
    token = meta.login(scope="business_management,ads_management")
    err = _error(meta.graph("/me/businesses", token, fields=NESTED), 403)
    assert "whatsapp_business_management" in err["message"]


def test_objects_of_others_are_unsupported_get_requests(meta):
    token = meta.login(user_id=USER_WITHOUT_BUSINESSES)
    err = _error(meta.graph("/2010000000000001", token))
    assert (err["code"], err["error_subcode"]) == (100, 33)
    owner = meta.login()
    assert meta.graph("/act_301000001000001", owner, fields="name,currency").status_code == 200


def test_data_access_expiry_breaks_whatsapp_but_not_the_token(meta):
    token = meta.mint(expires_in=200 * 86400)
    path = "/2010000000000001/owned_whatsapp_business_accounts"
    assert meta.graph(path, token).status_code == 200
    meta.control("clock", advance_seconds=91 * 86400)
    err = _error(meta.graph(path, token), 403)
    assert err["code"] == 200 and err["error_user_title"] == "Data access expired"
    assert _error(meta.graph("/1150000000000001", token), 403)["code"] == 200
    assert meta.graph("/2010000000000001/owned_ad_accounts", token).status_code == 200
    assert meta.graph("/me", token).status_code == 200
    data = meta.debug(token)
    assert data["is_valid"] is True and data["data_access_expires_at"] < data["expires_at"]
    listed = meta.graph("/me/permissions", token).json()["data"]
    statuses = {p["permission"]: p["status"] for p in listed}
    assert statuses["whatsapp_business_management"] == "expired"
    assert statuses["ads_management"] == "granted"
    renewed = meta.login(auth_type="reauthorize")
    assert meta.graph(path, renewed).status_code == 200


def test_data_access_expiry_with_a_still_valid_token(meta):
    meta.control("config", code_token_expires_in=200 * 86400)
    token = meta.login()
    meta.control("clock", advance_seconds=91 * 86400)
    assert meta.debug(token)["is_valid"] is True
    assert meta.graph("/2010000000000001/owned_whatsapp_business_accounts", token).status_code == 403
    meta.login(auth_type="reauthorize")  # renews data access for the user's grant
    assert meta.graph("/2010000000000001/owned_whatsapp_business_accounts", token).status_code == 200


def test_delete_one_permission(meta):
    token = meta.login()
    assert meta.graph("/me/permissions/business_management", token, method="DELETE").json() == {
        "success": True
    }
    assert meta.graph("/me/businesses", token).status_code == 403


def test_app_token_cannot_ask_about_me(meta):
    response = meta.http.get(f"{meta.url}/{meta.version}/me", params={"access_token": "424242424242424|x"})
    assert response.status_code == 400


def test_summary_total_count(meta):
    token = meta.login()
    body = meta.graph("/2010000000000001/owned_ad_accounts", token, summary="true", limit=1).json()
    assert body["summary"] == {"total_count": 130}


def test_batch_requests(meta):
    token = meta.login()
    batch = '[{"method":"GET","relative_url":"me?fields=id"},{"method":"GET","relative_url":"me/nope"}]'
    response = meta.http.post(
        f"{meta.url}/{meta.version}/",
        data={
            "access_token": token,
            "appsecret_proof": meta.proof(token),
            "batch": batch,
            "include_headers": "true",
        },
    )
    assert response.status_code == 200
    first, second = response.json()
    assert first["code"] == 200
    assert {"name": "facebook-api-version", "value": meta.version} in first["headers"]
    assert '"id": "10160000000000001"' in first["body"]
    assert second["code"] == 400 and '"code": 100' in second["body"]
    auth = {"access_token": token, "appsecret_proof": meta.proof(token)}
    plain = meta.http.post(
        f"{meta.url}/{meta.version}/", data={**auth, "batch": batch, "include_headers": "false"}
    ).json()
    assert "headers" not in plain[0]
    paths = [c["path"] for c in meta.calls()]
    assert paths.count(f"/{meta.version}/me") == 2


def test_empty_first_page_quirk_still_walks_every_item(meta):
    meta.control("config", empty_first_page=True, require_appsecret_proof=False)
    token = meta.login()
    url = f"{meta.url}/{meta.version}/me/businesses?access_token={token}"
    first = meta.http.get(url).json()
    assert first["data"] == [] and first["paging"]["next"]
    seen = []
    while url:
        body = meta.http.get(url).json()
        seen += [b["id"] for b in body["data"]]
        url = body.get("paging", {}).get("next")
    assert len(seen) == len(set(seen)) == 3
    assert meta.graph("/me/adaccounts", meta.login(user_id="10160000000000003")).json() == {"data": []}


def test_personal_ad_accounts_are_only_the_ones_outside_businesses(meta):
    solo = meta.graph("/me/personal_ad_accounts", meta.login(user_id="10160000000000002")).json()
    assert [a["id"] for a in solo["data"]] == [
        "act_309000000000001", "act_309000000000002", "act_309000000000003"]
    assert meta.graph("/me/personal_ad_accounts", meta.login()).json() == {"data": []}
