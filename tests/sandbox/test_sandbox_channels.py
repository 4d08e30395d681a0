"""The sandbox's channels: JavaScript SDK codes, Page tokens, Instagram accounts, phone numbers,
`subscribed_apps` on Pages and WhatsApp accounts, and the faults that break them
(docs/meta-conformance.md, rows C1-C12)."""

from __future__ import annotations

PANEL_SCOPES = ("pages_show_list,pages_manage_metadata,pages_messaging,instagram_basic,"
                "instagram_manage_messages,business_management,whatsapp_business_management,"
                "whatsapp_business_messaging")
FIRST_PAGE = "1090000000000001"
WABA = "1150000000000001"
PHONE = "1160000000000001"


def sdk_code(meta, **params) -> str:
    """A code as the SDK gets it: the dialog returns to the SDK's xd_arbiter page."""
    redirect = f"{meta.url}/x/connect/xd_arbiter?origin=http%3A%2F%2Fcrm.test&nonce=n1"
    location = meta.approve(redirect_uri=redirect, scope=PANEL_SCOPES, response_type="code",
                            override_default_response_type="true", display="popup", **params)
    assert location.startswith(redirect + "&")
    return meta.query_of(location)["code"]


def page_token(meta, user_token: str, page_id: str = FIRST_PAGE) -> str:
    answer = meta.graph("/me/accounts", user_token, fields="id,access_token").json()
    return next(p["access_token"] for p in answer["data"] if p["id"] == page_id)


def panel_token(meta) -> str:
    response = meta.exchange(sdk_code(meta), redirect_uri=None)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_the_sdk_and_its_return_page_are_served_with_the_sandbox_origin_inside(meta):
    script = meta.http.get(f"{meta.url}/en_US/sdk.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert f'"{meta.url}"' in script.text and "fbAsyncInit" in script.text
    assert "window.open(" in script.text
    page = meta.http.get(f"{meta.url}/x/connect/xd_arbiter?origin=x&nonce=y", timeout=10)
    assert page.status_code == 200 and "xd_arbiter.js" in page.text


def test_an_sdk_code_is_exchanged_without_a_redirect_uri_or_with_an_empty_one(meta):
    assert meta.exchange(sdk_code(meta), redirect_uri=None).status_code == 200
    assert meta.exchange(sdk_code(meta), redirect_uri="").status_code == 200


def test_a_code_refuses_a_redirect_uri_it_was_not_issued_with(meta):
    refused = meta.exchange(sdk_code(meta))  # the registered redirect URI, as CRM Ventas sends it
    assert refused.status_code == 400
    assert refused.json()["error"]["error_subcode"] == 36008
    dialog_code = meta.code()
    assert meta.exchange(dialog_code, redirect_uri="").json()["error"]["error_subcode"] == 36008


def test_the_dialog_accepts_the_panels_scopes_and_a_config_id_from_the_sdk(meta):
    page = meta.http.get(meta.dialog_url(scope=PANEL_SCOPES), timeout=10)
    assert page.status_code == 200
    assert "pages_messaging" in page.text and "instagram_manage_messages" in page.text
    code = sdk_code(meta, config_id="1234567890")
    token = meta.exchange(code, redirect_uri=None).json()["access_token"]
    assert meta.debug(token)["type"] == "SYSTEM_USER"


def test_pages_come_with_their_tokens_and_instagram_accounts_wabas_with_their_numbers(meta):
    token = panel_token(meta)
    fields = ("accounts{id,name,access_token,instagram_business_account{id,username,name}},"
              "businesses{owned_whatsapp_business_accounts{id,name,phone_numbers"
              "{id,display_phone_number,verified_name,quality_rating}}}")
    me = meta.graph("/me", token, fields=fields).json()
    first = next(p for p in me["accounts"]["data"] if p["id"] == FIRST_PAGE)
    assert first["access_token"].startswith("EAA")
    assert meta.debug(first["access_token"])["type"] == "PAGE"
    assert first["instagram_business_account"]["id"] and first["instagram_business_account"]["username"]
    wabas = me["businesses"]["data"][0]["owned_whatsapp_business_accounts"]["data"]
    phone = wabas[0]["phone_numbers"]["data"][0]
    assert (wabas[0]["id"], phone["id"]) == (WABA, PHONE)
    assert set(phone) == {"id", "display_phone_number", "verified_name", "quality_rating"}


def test_page_subscriptions_need_the_pages_own_token(meta):
    token = panel_token(meta)
    refused = meta.graph(f"/{FIRST_PAGE}/subscribed_apps", token, "POST", subscribed_fields="messages")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == 190
    assert error["message"] == "(#190) This method must be called with a Page Access Token"
    assert meta.graph(f"/{FIRST_PAGE}/subscribed_apps", token).json()["error"]["code"] == 190


def test_subscribe_read_and_unsubscribe_a_page(meta):
    token = page_token(meta, panel_token(meta))
    path = f"/{FIRST_PAGE}/subscribed_apps"
    assert meta.graph(path, token).json() == {"data": []}
    missing = meta.graph(path, token, "POST")
    assert missing.json()["error"]["message"] == "(#100) The parameter subscribed_fields is required"
    done = meta.graph(path, token, "POST", subscribed_fields="messages,messaging_postbacks,feed,mention")
    assert done.status_code == 200 and done.json() == {"success": True}
    apps = meta.graph(path, token).json()["data"]
    assert [a["id"] for a in apps] == [meta.app_id]
    assert apps[0]["subscribed_fields"] == ["messages", "messaging_postbacks", "feed", "mention"]
    assert meta.graph(path, token, "DELETE").json() == {"success": True}
    assert meta.graph(path, token).json() == {"data": []}


def test_a_field_without_its_permission_refuses_the_whole_subscription(meta):
    token = page_token(meta, panel_token(meta))  # the panel's grant has no leads_retrieval
    path = f"/{FIRST_PAGE}/subscribed_apps"
    refused = meta.graph(path, token, "POST", subscribed_fields="messages,leadgen")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == 200
    needed = "To subscribe to the leadgen field, one of these permissions is needed: leads_retrieval"
    assert needed in error["message"]
    assert meta.graph(path, token).json() == {"data": []}  # nothing was subscribed


def test_whatsapp_accounts_subscribe_with_the_user_token(meta):
    token = panel_token(meta)
    path = f"/{WABA}/subscribed_apps"
    assert meta.graph(path, token, "POST").json() == {"success": True}
    data = meta.graph(path, token).json()["data"]
    assert data[0]["whatsapp_business_api_data"]["id"] == meta.app_id
    assert meta.graph(path, token, "DELETE").json() == {"success": True}
    assert meta.graph(path, token).json()["data"] == []


def test_faults_drop_a_subscription_and_invalidate_a_pages_tokens(meta):
    user = panel_token(meta)
    token = page_token(meta, user)
    path = f"/{FIRST_PAGE}/subscribed_apps"
    meta.graph(path, token, "POST", subscribed_fields="messages")
    assert meta.control(f"subscriptions/{FIRST_PAGE}/drop")["dropped"] is True
    assert meta.graph(path, token).json() == {"data": []}
    assert meta.control(f"pages/{FIRST_PAGE}/invalidate-tokens")["invalidated"] == 1
    dead = meta.graph(path, token)
    assert dead.status_code == 400 and dead.json()["error"]["code"] == 190
    fresh = page_token(meta, user)  # asking again gives a new, working token
    assert fresh != token and meta.graph(path, fresh).status_code == 200


def test_the_page_edge_needs_pages_manage_metadata_even_to_read(meta):
    user = meta.mint(scopes=["pages_show_list", "pages_messaging"])
    token = page_token(meta, user)
    refused = meta.graph(f"/{FIRST_PAGE}/subscribed_apps", token)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == 200
