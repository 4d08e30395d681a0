"""CRM Ventas' panel routes, as MetaConnectionPanel.tsx calls and reads them."""

from __future__ import annotations

import pytest

from crm_meta.infra.database import db
from crm_meta.meta import channels
from crm_meta.meta.errors import PageTokenRequiredError, TokenInvalidError, classify
from crm_meta.models import MetaChannel, MetaConnection
from crm_meta.runtime import of
from tests.channels.conftest import FIRST_PAGE, INSTAGRAM, PHONE, SECOND_PAGE, WABA
from tests.helpers.database import audit_events, raw_rows
from tests.helpers.responses import assert_envelope
from tests.helpers.users import bearer

KINDS = {("facebook", "page"), ("instagram", "instagram_account"), ("whatsapp", "waba"),
         ("whatsapp", "phone_number")}


def page_tokens(app) -> dict[str, str]:
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        return channels.page_tokens(of(app).store, row)


def test_disconnected_status_has_every_field_the_panel_reads(panel):
    data = panel.status()
    assert data["connected"] is False and data["token_valid"] is False
    assert data["channels"] == {"facebook": False, "instagram": False, "whatsapp": False}
    assert data["assets"] == [] and data["bindings"] == []
    assert isinstance(data["token_expires_at"], int)


def test_an_sdk_code_connects_and_discovers_pages_instagram_and_whatsapp(app, panel, sandbox):
    response = panel.connect()
    assert response.status_code == 200, response.get_json()
    connected = response.get_json()["data"]
    assert connected["connected"] is True and connected["message"]
    assert "EAA" not in response.get_data(as_text=True)  # never a token in an answer
    data = panel.status()
    assert data["connected"] is True and data["token_valid"] is True
    assert isinstance(data["token_expires_at"], int) and data["token_expires_at"] > 0
    assert "pages_messaging" in data["token_scopes"]
    assets = {a["asset_id"]: a for a in data["assets"]}
    assert {(a["platform"], a["asset_type"]) for a in data["assets"]} == KINDS
    assert assets[FIRST_PAGE]["asset_type"] == "page" and assets[FIRST_PAGE]["asset_name"]
    assert assets[INSTAGRAM]["parent_asset_id"] == FIRST_PAGE
    phone = assets[PHONE]
    assert phone["parent_asset_id"] == WABA and phone["asset_name"] == "+34 600 000 001"
    assert set(phone["metadata"]) >= {"verified_name", "quality_rating", "display_phone_number"}
    assert all(isinstance(a["id"], int) and isinstance(a["asset_id"], str) for a in data["assets"])
    assert "EAA" not in str(data)
    # Page tokens are stored, encrypted: readable through the store, never in the table in clear.
    tokens = page_tokens(app)
    assert set(tokens) == {FIRST_PAGE, SECOND_PAGE} and all(t.startswith("EAA") for t in tokens.values())
    assert not any(t in str(raw_rows(app, "meta_channels")) for t in tokens.values())
    # The exchange is the SDK's: the sandbox refuses an SDK code sent with a redirect URI.
    assert [c["status"] for c in sandbox.calls("/oauth/access_token")][:1] == [200]


def test_selecting_subscribes_with_the_fields_the_grant_allows_and_replaces_the_set(app, panel, sandbox):
    panel.connect()
    response = panel.select([FIRST_PAGE, INSTAGRAM, int(PHONE)])  # ids as numbers are accepted
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["data"]
    assert "leadgen" in result["message"]  # the panel's grant lacks leads_retrieval: said, not hidden
    by_id = {s["asset_id"]: s for s in result["subscriptions"]}
    assert by_id[FIRST_PAGE]["subscribed_fields"] == ["messages", "messaging_postbacks", "feed", "mention"]
    assert by_id[FIRST_PAGE]["left_out_fields"] == ["leadgen"]
    assert by_id[WABA]["error"] is None
    held = sandbox.get("subscriptions")["data"]
    assert set(held) == {FIRST_PAGE, WABA}
    data = panel.status()
    assert data["channels"] == {"facebook": True, "instagram": True, "whatsapp": True}
    active = {b["asset_id"] for b in data["bindings"] if b["active"]}
    assert active == {FIRST_PAGE, INSTAGRAM, PHONE}
    # The panel sends the whole set again: what is left out is deactivated and unsubscribed.
    assert panel.select([PHONE]).status_code == 200
    assert set(sandbox.get("subscriptions")["data"]) == {WABA}
    data = panel.status()
    assert data["channels"] == {"facebook": False, "instagram": False, "whatsapp": True}
    assert {b["asset_id"]: b["active"] for b in data["bindings"]} == {
        FIRST_PAGE: False, INSTAGRAM: False, PHONE: True}
    assert audit_events(app, "meta.select_channels")


def test_disconnect_unsubscribes_before_it_revokes(app, panel, sandbox):
    panel.connect()
    panel.select([FIRST_PAGE, PHONE])
    response = panel.disconnect()
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["disconnected"] is True and data["revoked_at_meta"] is True and data["unsubscribed"] == 2
    assert sandbox.get("subscriptions")["data"] == {}
    deletes = [c["path"] for c in sandbox.calls() if c["method"] == "DELETE"]
    assert deletes[-1].endswith("/me/permissions")
    assert {p.split("/")[-2] for p in deletes[:-1]} == {FIRST_PAGE, WABA}
    assert panel.status()["connected"] is False
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(MetaChannel)) == 0


def test_the_wizard_and_the_panel_share_one_connection(app, panel, meta_flow, client, tenant):
    assert meta_flow.connect().status_code == 200
    assert panel.connect().status_code == 200  # the second replaces the first
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(MetaConnection)) == 1
    replaced = audit_events(app, "meta.connection_replaced")
    assert len(replaced) == 1 and replaced[0].details["via"] == "sdk"
    marketing = client.get("/crm/marketing/token-status", headers=bearer(tenant.tenant_id))
    assert marketing.get_json()["data"]["connected"] is True
    assert panel.status()["connected"] is True


def test_roles_and_authentication(panel, client):
    assert panel.status(role="professional")["connected"] is False  # members read
    assert_envelope(panel.select(["1"], role="secretary"), 403, "admin_required")
    assert_envelope(panel.disconnect(role="setter"), 403, "admin_required")
    assert_envelope(panel.connect(code="x", role="closer"), 403, "admin_required")
    assert_envelope(client.get("/admin/meta/status"), 401)
    assert_envelope(client.delete("/admin/meta/disconnect"), 401)


@pytest.mark.parametrize("body", [None, {}, {"code": ""}, {"code": 5}, {"code": "x" * 3000}])
def test_a_connect_without_a_code_is_refused_with_a_string_detail(panel, client, body):
    response = client.post("/admin/meta/connect", json=body, headers=panel.headers())
    assert_envelope(response, 422, "validation_error")


def test_select_refusals_carry_a_string_detail(panel, client):
    assert_envelope(panel.select([FIRST_PAGE]), 409, "not_connected")
    panel.connect()
    for bad in ([], "1", [True], [None], ["x" * 80]):
        assert_envelope(panel.select(bad), 422, "validation_error")
    body = assert_envelope(panel.select(["999"]), 404, "unknown_asset")
    assert "999" in body["detail"]


def test_a_used_or_unknown_code_is_refused_with_a_string_detail(panel):
    code = panel.sdk_code()
    assert panel.connect(code).status_code == 200
    assert_envelope(panel.connect(code), 400, "invalid_code")  # codes are single-use
    assert_envelope(panel.connect("0"), 400, "invalid_code")


def test_login_for_business_config_id_works_from_the_panel(make_app, make_tenant, sandbox):
    from tests.channels.conftest import Panel

    app = make_app(META_LOGIN_CONFIG_ID="1234567890123")
    tenant = make_tenant("lfb", app_=app)
    panel = Panel(app.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect(panel.sdk_code(config_id="1234567890123")).status_code == 200
    data = panel.status()
    assert data["connected"] and data["token_valid"] and data["token_expires_at"] == 0
    assert data["assets"]


def test_preflights_allow_delete_and_content_type(make_app):
    app = make_app(CRM_ORIGINS=["https://crm.example.com"])
    response = app.test_client().options("/admin/meta/disconnect", headers={
        "Origin": "https://crm.example.com", "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "content-type,x-tenant-id,x-admin-token,authorization"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://crm.example.com"
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_a_user_token_on_a_page_edge_is_not_a_dead_token():
    error = classify({"message": "(#190) This method must be called with a Page Access Token",
                      "type": "OAuthException", "code": 190}, 400)
    assert isinstance(error, PageTokenRequiredError) and not isinstance(error, TokenInvalidError)
    dead = classify({"message": "Error validating access token", "code": 190, "error_subcode": 463}, 400)
    assert isinstance(dead, TokenInvalidError)
