"""The contract's JSON endpoints after a real connection through the sandbox."""

import pytest

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, MetaConnection
from tests.helpers.users import PASSWORD, bearer


@pytest.fixture
def connected(meta_flow):
    response = meta_flow.connect()
    assert response.status_code == 200
    meta_flow.data = response.get_json()["data"]
    return meta_flow


def envelope_ok(response, status=200):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is True and body["timestamp"].endswith("Z")
    return body["data"]


def error_code(response, status):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is False and body["detail"] == body["error"]["message"]
    return body["error"]["code"]


def test_seed_example_disconnect(admin_client):
    response = admin_client.post("/crm/auth/meta/disconnect")
    assert response.status_code == 200
    assert response.get_json()["data"]["disconnected"] is True


def test_seed_example_auth_url_points_at_facebook(make_app, make_tenant):
    from config import TestingConfig
    from crm_meta.app import create_app

    app = create_app(TestingConfig(env={"META_MODE": "live"}, SQLALCHEMY_DATABASE_URI="sqlite://",
                                   RATELIMIT_ENABLED=False))
    with app.app_context():
        db.create_all()
    make_tenant("acme", app_=app)
    client = app.test_client()
    client.post("/login", data={"email": "admin@acme.test", "password": PASSWORD})
    response = client.get("/crm/auth/meta/url", headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200
    assert "auth_url" in response.get_json()["data"]
    assert response.get_json()["data"]["auth_url"].startswith("https://www.facebook.com")


def test_token_status_reads_storage_only(connected):
    before = len(connected.sandbox.calls())
    data = envelope_ok(connected.client.get("/crm/marketing/token-status"))
    assert len(connected.sandbox.calls()) == before
    assert data["connected"] is True and data["status"] == "connected"
    assert 55 <= data["days_left"] <= 60 and data["needs_reconnect"] is False
    assert data["business_managers"] == len(connected.data["business_managers"])
    assert data["ad_accounts"] > 100
    assert data["selected_ad_account"] is None
    assert data["connect_url"] == "/crm/marketing/meta/connect"
    for key in ("expires_at", "scopes", "missing_scopes"):
        assert key in data


def test_token_status_when_disconnected(admin_client):
    data = envelope_ok(admin_client.get("/crm/marketing/token-status"))
    assert (data["connected"], data["status"], data["business_managers"]) == (False, "disconnected", 0)


def test_test_connection_is_a_live_check(connected):
    data = envelope_ok(connected.client.get("/crm/auth/meta/test-connection"))
    assert data["valid"] is True and data["status"] == "connected"
    assert data["user_id"] and data["user_name"] and data["token_type"] == "USER"
    assert 0 < data["expires_in_seconds"] <= 60 * 86400
    assert data["data_access_expires_at"] and data["checked_at"]
    assert set(data) >= {"connected", "valid", "status", "user_id", "user_name", "token_type",
                         "expires_at", "expires_in_seconds", "data_access_expires_at", "scopes",
                         "missing_scopes", "checked_at"}


def test_test_connection_after_revocation_at_meta(connected, sandbox, app):
    with app.app_context():
        user_id = db.session.scalar(db.select(MetaConnection.meta_user_id))
    sandbox.post(f"users/{user_id}/invalidate", subcode=460)
    data = envelope_ok(connected.client.get("/crm/auth/meta/test-connection"))
    assert data["valid"] is False and data["status"] == "needs_reauth"
    status = envelope_ok(connected.client.get("/crm/marketing/token-status"))
    assert status["status"] == "needs_reauth" and status["needs_reconnect"] is True
    with app.app_context():  # the same transition the sweep makes: audited, announced
        event = db.session.scalar(db.select(AuditEvent).filter_by(action="meta.keepalive.status"))
        assert event.details["to"] == "needs_reauth" and event.outcome == "failure"
        row = db.session.scalar(db.select(MetaConnection))
        assert row.warnings_sent["state"] == "needs_reauth"


@pytest.mark.parametrize("fault, status, code", [
    ({"code": 613, "http_status": 400, "count": 5}, 429, "meta_throttled"),
    ({"code": 2, "http_status": 500, "count": 5}, 503, "meta_unavailable"),
    ({"http_status": 200, "malformed": True, "count": 5}, 503, "meta_unavailable"),
    # An error at the top level of debug_token is about the app's own credential, not the token.
    ({"code": 100, "http_status": 400, "count": 1}, 503, "meta_app_misconfigured"),
    ({"code": 190, "http_status": 400, "count": 1}, 503, "meta_app_misconfigured"),
])
def test_test_connection_maps_meta_failures(connected, fault, status, code):
    connected.sandbox.fault(path="/v25.0/debug_token", **fault)
    response = connected.client.get("/crm/auth/meta/test-connection")
    assert error_code(response, status) == code
    if status in (429, 503):
        assert int(response.headers["Retry-After"]) > 0


def test_debug_token_shows_only_a_masked_preview(connected, app):
    data = envelope_ok(connected.client.get("/crm/auth/meta/debug/token"))
    assert data["is_valid"] is True and data["type"] == "USER"
    assert "…" in data["token_preview"] and len(data["token_preview"]) <= 9
    with app.app_context():
        from crm_meta.runtime import runtime

        token = runtime().store.read(db.session.scalar(db.select(MetaConnection)))
    assert token not in connected.client.get("/crm/auth/meta/debug/token").get_data(as_text=True)


def test_portfolios_and_accounts(connected):
    portfolios = envelope_ok(connected.client.get("/crm/marketing/meta-portfolios"))
    assert [p["id"] for p in portfolios] == [b["id"] for b in connected.data["business_managers"]]
    first = portfolios[0]
    assert first["ad_accounts_count"] == len(first["ad_accounts"])
    accounts = envelope_ok(connected.client.get(f"/crm/marketing/meta-accounts?portfolio_id={first['id']}"))
    assert accounts == first["ad_accounts"]
    everything = envelope_ok(connected.client.get("/crm/marketing/meta-accounts"))
    assert len(everything) == len({a["id"] for p in portfolios for a in p["ad_accounts"]})


def test_portfolios_refresh_rediscovers(connected, sandbox):
    sandbox.post("config", businesses=1)
    portfolios = envelope_ok(connected.client.get("/crm/marketing/meta-portfolios?refresh=1"))
    assert len(portfolios) == 1


@pytest.mark.parametrize("portfolio_id", ["999999999", "../me", "1 OR 1=1", "act_1/../../x", "%2e%2e"])
def test_unknown_portfolio_is_refused_before_any_graph_call(connected, portfolio_id):
    before = len(connected.sandbox.calls())
    response = connected.client.get("/crm/marketing/meta-accounts",
                                    query_string={"portfolio_id": portfolio_id})
    assert error_code(response, 404) == "unknown_asset"
    assert len(connected.sandbox.calls()) == before


def test_select_an_account(connected, app, tenant):
    business = connected.data["business_managers"][0]
    account = business["ad_accounts"][3]
    data = envelope_ok(connected.client.post("/crm/marketing/connect", json={
        "account_id": account["account_id"], "business_id": business["id"]}))
    assert data == {"connected": True, "account_id": account["id"], "account_name": account["name"],
                    "business_id": business["id"]}
    status = envelope_ok(connected.client.get("/crm/marketing/token-status"))
    assert status["selected_ad_account"]["account_id"] == account["id"]
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).filter_by(action="meta.select_account"))


@pytest.mark.parametrize("body, status, code", [
    ({"account_id": "act_123"}, 404, "unknown_asset"),
    ({"account_id": "not-an-id"}, 404, "unknown_asset"),
    ({}, 422, "validation_error"),
    ({"account_id": "act_1", "account_name": 42}, 422, "validation_error"),
    ([1, 2], 422, "validation_error"),
])
def test_select_refuses_bad_input(connected, body, status, code):
    assert error_code(connected.client.post("/crm/marketing/connect", json=body), status) == code


def test_select_refuses_an_account_of_another_business(connected):
    first, second = connected.data["business_managers"][:2]
    response = connected.client.post("/crm/marketing/connect", json={
        "account_id": second["ad_accounts"][0]["id"], "business_id": first["id"]})
    assert error_code(response, 404) == "unknown_asset"


def test_disconnect_revokes_at_meta_and_is_idempotent(connected, app, tenant):
    data = envelope_ok(connected.client.post("/crm/auth/meta/disconnect"))
    assert data == {"disconnected": True, "revoked_at_meta": True}
    assert connected.sandbox.calls("/me/permissions")[-1]["method"] == "DELETE"
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is None
    again = envelope_ok(connected.client.post("/crm/auth/meta/disconnect"))
    assert again == {"disconnected": True, "revoked_at_meta": False}


def test_disconnect_still_works_when_meta_is_down(connected, app):
    connected.sandbox.fault(path="/v25.0/me/permissions", code=2, http_status=500, count=10)
    data = envelope_ok(connected.client.post("/crm/auth/meta/disconnect"))
    assert data == {"disconnected": True, "revoked_at_meta": False}
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is None


def test_members_read_but_do_not_change(connected, app, tenant):
    member = app.test_client()
    member.post("/login", data={"email": tenant.member_email, "password": PASSWORD})
    assert member.get("/crm/marketing/token-status").status_code == 200
    assert member.get("/crm/marketing/meta-portfolios").status_code == 200
    assert member.get("/crm/auth/meta/test-connection").status_code == 200
    for method, path in [("get", "/crm/auth/meta/url"), ("post", "/crm/auth/meta/disconnect"),
                         ("get", "/crm/auth/meta/debug/token"), ("post", "/crm/marketing/connect")]:
        response = getattr(member, method)(path, json={"account_id": "act_1"})
        assert error_code(response, 403) == "admin_required"


def test_anonymous_callers_get_401(client):
    for path in ("/crm/marketing/token-status", "/crm/auth/meta/url", "/crm/marketing/meta-accounts"):
        assert error_code(client.get(path), 401) == "not_authenticated"


def test_jwt_callers_use_the_same_api(connected, tenant):
    headers = bearer(tenant.tenant_id, role="ceo")  # META_ADMIN_ROLES includes ceo
    client = connected.client.application.test_client()
    data = envelope_ok(client.get("/crm/marketing/token-status", headers=headers))
    assert data["status"] == "connected"
    assert client.get("/crm/auth/meta/url", headers=headers).status_code == 200
    member = bearer(tenant.tenant_id, role="member")
    assert error_code(client.post("/crm/auth/meta/disconnect", headers=member), 403) == "admin_required"


def test_disconnect_deletes_a_token_that_no_longer_decrypts(connected, app):
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        row.token_ciphertext = row.token_ciphertext[:-4] + "AAAA"  # corrupted at rest
        db.session.commit()
    data = envelope_ok(connected.client.post("/crm/auth/meta/disconnect"))
    assert data == {"disconnected": True, "revoked_at_meta": False}
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is None


def test_an_unreadable_token_is_a_clear_409_not_a_500(connected, app):
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        row.token_ciphertext = row.token_ciphertext[:-4] + "AAAA"
        db.session.commit()
    response = connected.client.get("/crm/auth/meta/test-connection")
    assert error_code(response, 409) == "token_unreadable"
