"""The sandbox refuses what Meta refuses: reads by POST, batches without a top-level token; and
it can answer `null` inside a batch, issue both kinds of system-user token, grant some businesses."""

from __future__ import annotations

import json

import pytest

from meta_sandbox import schema
from meta_sandbox.fixtures import BUSINESS_BASE

FIRST_BUSINESS = str(BUSINESS_BASE + 1)
DAY = 86400
UNSUPPORTED_POST = ("Unsupported post request. Object with ID '{obj}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation. Please "
                    "read the Graph API documentation at https://developers.facebook.com/docs/graph-api")


def assert_unsupported_post(response, obj: str):
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")
    assert error["message"] == UNSUPPORTED_POST.format(obj=obj)


def test_debug_token_refuses_a_post_even_with_a_method_override(meta):
    token = meta.login()
    app_token = f"{meta.app_id}|{meta.app_secret}"
    for extra in ({}, {"method": "GET"}):
        response = meta.http.post(f"{meta.url}/{meta.version}/debug_token",
                                  data={"input_token": token, "access_token": app_token, **extra})
        assert_unsupported_post(response, "debug_token")
    assert meta.debug(token)["is_valid"] is True  # the GET works


@pytest.mark.parametrize("path", ["/me", "/me/businesses", f"/{FIRST_BUSINESS}/owned_ad_accounts"])
def test_get_only_nodes_and_edges_refuse_post(meta, path):
    token = meta.login()
    response = meta.graph(path, token, method="POST")
    assert_unsupported_post(response, path.split("/")[1])


def test_delete_me_permissions_is_still_allowed(meta):
    token = meta.login()
    assert meta.graph("/me/permissions", token, method="DELETE").json() == {"success": True}


def test_an_edge_can_declare_that_it_accepts_post(meta, monkeypatch):
    written = []

    def write(ctx, parent, method, params):
        written.append((parent["id"], method, params.get("name")))
        return {"id": "123"}

    edges = dict(schema.TYPES["Business"].edges)
    edges["sandbox_things"] = schema.Edge("Page", lambda c, p: [], (schema.BIZ,),
                                          methods=("GET", "POST"), write=write)
    monkeypatch.setitem(schema.TYPES, "Business", schema.NodeType(
        **{**vars(schema.TYPES["Business"]), "edges": edges}))
    token = meta.login()
    created = meta.graph(f"/{FIRST_BUSINESS}/sandbox_things", token, method="POST", name="x")
    assert created.status_code == 200 and created.json() == {"id": "123"}
    assert written == [(FIRST_BUSINESS, "POST", "x")]
    assert_unsupported_post(meta.graph(f"/{FIRST_BUSINESS}/owned_pages", token, method="POST"),
                            FIRST_BUSINESS)


def batch(meta, token, items, *, top_level=True, bearer=False):
    data = {"batch": json.dumps(items), "include_headers": "false",
            "appsecret_proof": meta.proof(token)}
    if top_level:
        data["access_token"] = token
    headers = {"Authorization": f"Bearer {token}"} if bearer else {}
    return meta.http.post(f"{meta.url}/{meta.version}/", data=data, headers=headers, timeout=10)


def test_a_batch_needs_its_access_token_as_a_top_level_parameter(meta):
    token = meta.login()
    items = [{"method": "GET", "relative_url": "me?fields=id"}]
    refused = batch(meta, token, items, top_level=False, bearer=True)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 104
    assert batch(meta, token, items).json()[0]["code"] == 200


def test_a_batch_null_fault_answers_null_for_that_item_only(meta):
    token = meta.login()
    meta.control("faults", path=f"/{meta.version}/me/businesses", batch_null=True, count=1)
    direct = meta.graph("/me/businesses", token)  # outside a batch the fault does not apply
    assert direct.status_code == 200
    items = [{"method": "GET", "relative_url": "me/businesses"},
             {"method": "GET", "relative_url": "me?fields=id"}]
    first, second = batch(meta, token, items).json()
    assert first is None and second["code"] == 200
    again = batch(meta, token, items).json()
    assert again[0]["code"] == 200  # count=1: used up


def test_inspect_error_fault_reports_the_token_problem_inside_data(meta):
    token = meta.login()
    meta.control("faults", path=f"/{meta.version}/debug_token", code=190, error_subcode=460,
                 inspect_error=True)
    data = meta.debug(token)  # HTTP 200
    assert data["is_valid"] is False and data["error"]["subcode"] == 460
    assert meta.debug(token)["is_valid"] is True


def test_login_for_business_issues_never_expiring_system_user_tokens_by_default(meta):
    body = meta.exchange(meta.code(config_id="998877", scope=None)).json()
    assert "expires_in" not in body
    data = meta.debug(body["access_token"])
    assert (data["type"], data["expires_at"]) == ("SYSTEM_USER", 0)
    refreshed = meta.extend(body["access_token"]).json()
    assert "expires_in" not in refreshed  # the never-expiring kind stays so


def test_expiring_system_user_tokens_refresh_for_sixty_days(meta):
    meta.control("config", system_user_expires_in=60 * DAY)
    token = meta.exchange(meta.code(config_id="998877", scope=None)).json()["access_token"]
    first = meta.debug(token)
    assert first["type"] == "SYSTEM_USER" and first["expires_at"] - first["issued_at"] == 60 * DAY
    meta.control("clock", advance_seconds=50 * DAY)
    plain = meta.extend(token).json()  # without the flag, the end does not move
    assert meta.debug(plain["access_token"])["expires_at"] == first["expires_at"]
    params = {"grant_type": "fb_exchange_token", "client_id": meta.app_id,
              "client_secret": meta.app_secret, "fb_exchange_token": token,
              "set_token_expires_in_60_days": "true"}
    refreshed = meta.http.get(f"{meta.url}/{meta.version}/oauth/access_token", params=params).json()
    assert refreshed["access_token"] != token and refreshed["expires_in"] == 60 * DAY
    assert meta.debug(refreshed["access_token"])["type"] == "SYSTEM_USER"


def test_a_user_can_share_only_some_businesses(meta):
    second = str(BUSINESS_BASE + 2)
    response = meta.consent(meta.dialog_url(), decision="approve", business_id=[FIRST_BUSINESS])
    code = meta.query_of(response.headers["Location"])["code"]
    token = meta.exchange(code).json()["access_token"]
    ids = [b["id"] for b in meta.graph("/me/businesses", token).json()["data"]]
    assert ids == [FIRST_BUSINESS]
    assert meta.graph(f"/{second}/owned_ad_accounts", token).status_code == 400
    granular = {g["scope"]: g.get("target_ids") for g in meta.debug(token)["granular_scopes"]}
    assert granular["business_management"] == [FIRST_BUSINESS]


def test_client_whatsapp_accounts_are_listed_beside_owned_ones(meta):
    token = meta.login()
    second = str(BUSINESS_BASE + 2)
    clients = meta.graph(f"/{second}/client_whatsapp_business_accounts", token).json()["data"]
    assert clients and all(set(w) >= {"id", "name"} for w in clients)
